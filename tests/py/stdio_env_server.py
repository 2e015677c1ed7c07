"""A minimal stdio MCP server (2025-11-25, newline-delimited JSON-RPC, standard library only)
for the gateway's black-box tests.

Tools:
- `env`: returns the server's whole environment as JSON text (what the gateway let through);
- `wipe`: destructive, takes `{"target": string}` (required); each call is appended to the
  file given as `--calls-file`, so a test can tell whether a call ever ran.
"""

import json
import os
import sys

CALLS_FILE = None
if "--calls-file" in sys.argv:
    CALLS_FILE = sys.argv[sys.argv.index("--calls-file") + 1]

TOOLS = [
    {
        "name": "env",
        "description": "The server's environment variables.",
        "inputSchema": {"type": "object", "properties": {}},
        "annotations": {"readOnlyHint": True},
    },
    {
        "name": "wipe",
        "description": "Wipes a target (destructive).",
        "inputSchema": {
            "type": "object",
            "properties": {"target": {"type": "string", "minLength": 1}},
            "required": ["target"],
            "additionalProperties": False,
        },
        "annotations": {"destructiveHint": True},
    },
]


def reply(msg_id, result=None, error=None):
    out = {"jsonrpc": "2.0", "id": msg_id}
    if error is not None:
        out["error"] = error
    else:
        out["result"] = result
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


def call_tool(params):
    name = params.get("name")
    args = params.get("arguments") or {}
    if name == "env":
        text = json.dumps(dict(sorted(os.environ.items())))
        return {"content": [{"type": "text", "text": text}], "isError": False}
    if name == "wipe":
        if CALLS_FILE:
            with open(CALLS_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(args) + "\n")
        return {"content": [{"type": "text", "text": "wiped"}], "isError": False}
    return {"content": [{"type": "text", "text": "unknown tool"}], "isError": True}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "method" not in msg or "id" not in msg:
            continue  # notifications and responses need no answer
        method, msg_id, params = msg["method"], msg["id"], msg.get("params") or {}
        if method == "initialize":
            reply(msg_id, {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "stdio-env", "version": "1"},
            })
        elif method == "ping":
            reply(msg_id, {})
        elif method == "tools/list":
            reply(msg_id, {"tools": TOOLS})
        elif method == "tools/call":
            reply(msg_id, call_tool(params))
        else:
            reply(msg_id, error={"code": -32601, "message": "method not found"})


if __name__ == "__main__":
    main()
