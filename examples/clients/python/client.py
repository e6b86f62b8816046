#!/usr/bin/env python3
"""A faultline client for target-node's HTTP API, in plain Python 3.

faultline starts one of these per worker and speaks to it in JSON lines
(docs/client-protocol.md): an init line, then one op per line on stdin,
one answer per line on stdout. Register, set and append workloads.

Routing: ops go to the node this client believes is primary (at first the
bound node from init); a `not-primary` answer names the primary (an id
`nK`, the K-th URL of init's `nodes`) and is retried there once. Pinned
ops (final reads, with `node`) go to that node only.

Errors: target-node's `not-primary`, `cas-mismatch`, `bad-request`,
`txn-conflict` and a refused connection are definite (`fail`); a
`timeout`, a lost connection or no answer is indefinite (`info`), except
for reads, which change nothing (`fail`).
"""
import http.client
import json
import sys
import urllib.parse

DEFINITE = {"not-primary", "cas-mismatch", "bad-request", "txn-conflict"}
SET_KEY = "s"
HTTP_TIMEOUT = 5.0


class Refused(Exception):
    """The node could not be reached: the request was never sent."""


class Indefinite(Exception):
    """The request may have been applied: no answer, or a broken one."""


class NodeError(Exception):
    """The node answered with an error body."""

    def __init__(self, body):
        super().__init__(body.get("error"))
        self.kind = body.get("error", "unknown")
        self.primary = body.get("primary")


def call(url, method, path, body=None):
    """One HTTP request; the decoded JSON answer, or an exception."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HTTP_TIMEOUT)
    data = None if body is None else json.dumps(body)
    headers = {"content-type": "application/json"} if data is not None else {}
    try:
        conn.connect()
    except OSError as e:
        raise Refused(str(e))
    try:
        conn.request(method, path, body=data, headers=headers)
        answer = conn.getresponse()
        text = answer.read()
    except OSError as e:
        raise Indefinite(str(e))
    finally:
        conn.close()
    try:
        decoded = json.loads(text) if text else None
    except ValueError:
        raise Indefinite("malformed answer")
    if answer.status >= 400:
        raise NodeError(decoded if isinstance(decoded, dict) else {})
    return decoded


class Client:
    def __init__(self, init):
        self.workload = init["workload"]
        self.nodes = init["nodes"]
        self.primary = init["node"]

    def url_of(self, node_id):
        """`nK` is the K-th node of init's list."""
        try:
            return self.nodes[int(str(node_id).lstrip("n")) - 1]
        except (ValueError, IndexError):
            return None

    def request(self, op):
        """(method, path, body, is_read) for an op."""
        f, key, value = op["f"], op.get("key"), op.get("value")
        if self.workload == "set":
            key = SET_KEY
        if f == "read":
            return "GET", "/kv/" + key, None, True
        if f == "write":
            return "PUT", "/kv/" + key, value, False
        if f == "cas":
            return "POST", "/kv/%s/cas" % key, {"from": value[0], "to": value[1]}, False
        if f == "add":
            return "POST", "/kv/%s/append" % key, value, False
        if f == "txn":
            reads_only = all(m[0] == "r" for m in value)
            return "POST", "/txn", value, reads_only
        raise ValueError("no op %r" % f)

    def perform(self, op):
        method, path, body, is_read = self.request(op)
        pinned = op.get("node")
        target = pinned or self.primary
        for attempt in range(2):
            try:
                answer = call(target, method, path, body)
                return self.ok(op, answer, target)
            except NodeError as e:
                hinted = self.url_of(e.primary) if e.primary else None
                if e.kind == "not-primary" and not pinned:
                    if hinted and hinted != target and attempt == 0:
                        self.primary = target = hinted
                        continue
                    self.forget(target)
                definite = e.kind in DEFINITE or is_read
                return answer_of(op, "fail" if definite else "info", e.kind, target)
            except Refused:
                self.forget(target)
                return answer_of(op, "fail", "unreachable", target)
            except Indefinite as e:
                self.forget(target)
                return answer_of(op, "fail" if is_read else "info", "no-answer", target)
        return answer_of(op, "fail", "not-primary", target)

    def forget(self, node):
        """The next op tries the next node, which names the primary it knows."""
        if node == self.primary:
            self.primary = self.nodes[(self.nodes.index(node) + 1) % len(self.nodes)]

    def ok(self, op, answer, node):
        if op["f"] == "read":
            value = answer if answer is not None else ([] if self.workload == "set" else None)
        elif op["f"] == "txn":
            value = answer
        else:
            value = op.get("value")
        return {"id": op["id"], "type": "ok", "value": value, "node": node}


def answer_of(op, kind, error, node):
    return {"id": op["id"], "type": kind, "error": error, "node": node}


def main():
    client = None
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("type") == "init":
            client = Client(message)
            answer = {"type": "init_ok"}
        else:
            answer = client.perform(message)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
