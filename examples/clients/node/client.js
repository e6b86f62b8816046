// A faultline register client for target-node's HTTP API, in Node.js
// (18 or later: built-in fetch; no packages). docs/client-protocol.md.
//
// Ops go to the node believed primary (the bound node at first); a
// `not-primary` answer naming another primary is retried there once.
// Definite errors (not-primary, cas-mismatch, bad-request, a refused
// connection) are `fail`; a timeout or lost answer is `info`, except for
// reads, which change nothing (`fail`).
"use strict";
const readline = require("node:readline");

const DEFINITE = new Set(["not-primary", "cas-mismatch", "bad-request"]);
let nodes = [];
let primary = null;

const urlOf = (id) => nodes[Number(String(id).replace(/^n/, "")) - 1];

function request(op) {
  const path = `/kv/${op.key}`;
  if (op.f === "read") return ["GET", path, undefined];
  if (op.f === "write") return ["PUT", path, op.value];
  return ["POST", `${path}/cas`, { from: op.value[0], to: op.value[1] }];
}

async function call(node, [method, path, body]) {
  const init = { method, signal: AbortSignal.timeout(5000) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "content-type": "application/json" };
  }
  const answer = await fetch(node + path, init);
  const text = await answer.text();
  return { status: answer.status, body: text ? JSON.parse(text) : null };
}

async function perform(op) {
  const read = op.f === "read";
  let target = op.node || primary;
  for (let attempt = 0; attempt < 2; attempt++) {
    let reply;
    try {
      reply = await call(target, request(op));
    } catch (e) {
      const refused = e.cause && e.cause.code === "ECONNREFUSED";
      primary = nodes[(nodes.indexOf(target) + 1) % nodes.length];
      const type = refused || read ? "fail" : "info";
      return { id: op.id, type, error: refused ? "unreachable" : "no-answer" };
    }
    if (reply.status < 400) {
      const value = read ? reply.body : op.value;
      return { id: op.id, type: "ok", value, node: target };
    }
    const kind = (reply.body && reply.body.error) || "unknown";
    const hinted = reply.body && reply.body.primary && urlOf(reply.body.primary);
    if (kind === "not-primary" && hinted && hinted !== target && attempt === 0) {
      primary = target = hinted;
      continue;
    }
    const type = DEFINITE.has(kind) || read ? "fail" : "info";
    return { id: op.id, type, error: kind, node: target };
  }
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const message = JSON.parse(line);
    let answer;
    if (message.type === "init") {
      nodes = message.nodes;
      primary = message.node;
      answer = { type: "init_ok" };
    } else {
      answer = await perform(message);
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
}

main();
