#!/usr/bin/env python3
"""A client-protocol program that answers every op at once, touching no
database: the protocol's own ceiling for `recordbench --client-command`.
Reads echo nothing (value null), writes and cas echo their value."""
import json
import sys

out = sys.stdout
for line in sys.stdin:
    op = json.loads(line)
    if op.get("type") == "init":
        out.write('{"type": "init_ok"}\n')
    else:
        value = None if op["f"] == "read" else op.get("value")
        out.write(json.dumps({"id": op["id"], "type": "ok", "value": value}) + "\n")
    out.flush()
