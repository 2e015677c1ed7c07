#!/usr/bin/env python3
"""An HTTPS fake upstream for FastMCP's TLS tests (standard library only).

Usage: python tls_fake.py --port P --cert cert.pem --key key.pem

POST /mcp...     -> a minimal stateless (2026-07-28) MCP server: `server/discover`,
                    `tools/list` (one tool, `echo`) and any other request answered with a
                    tools/call result echoing "tls ok"; notifications get 202. A request that
                    says `MCP-Protocol-Version: 2026-07-28` must carry a matching `Mcp-Method`
                    and, for tools/call, a matching (decoded) `Mcp-Name`, else 400 / -32020.
anything else    -> {"success": true, "data": {"path": <request path without query>, "method": M}}
"""

import argparse
import base64
import json
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODERN = "2026-07-28"


def decode_header_value(value):
    if value is not None and value.startswith("=?base64?") and value.endswith("?=") and len(value) >= 11:
        return base64.b64decode(value[9:-2], validate=True).decode("utf-8")
    return value


def mcp_answer(req, headers):
    """(status, body) for one JSON-RPC message; body None means no content."""
    if "id" not in req or "method" not in req:
        return 202, None
    method, rid = req["method"], req["id"]
    if headers.get("mcp-protocol-version") == MODERN:
        name = (req.get("params") or {}).get("name")
        if headers.get("mcp-method") != method or (
            method == "tools/call" and decode_header_value(headers.get("mcp-name")) != name
        ):
            err = {"code": -32020, "message": "Header mismatch"}
            return 400, {"jsonrpc": "2.0", "id": rid, "error": err}
    if method == "server/discover":
        result = {
            "supportedVersions": [MODERN],
            "capabilities": {"tools": {}},
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "tls-fake", "version": "1"}},
        }
    elif method == "tools/list":
        result = {"tools": [{"name": "echo", "description": "TLS echo", "inputSchema": {"type": "object"}}]}
    else:
        result = {"content": [{"type": "text", "text": "tls ok"}]}
    return 200, {"jsonrpc": "2.0", "id": rid, "result": result}


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if path.startswith("/mcp"):
            if self.command != "POST":
                status, out = 405, None
            else:
                status, out = mcp_answer(json.loads(body or b"{}"), self.headers)
        else:
            status = 201 if self.command == "POST" else 200
            out = {"success": True, "data": {"path": path, "method": self.command}}
        data = json.dumps(out).encode() if out is not None else b""
        self.send_response(status)
        if out is not None:
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    a = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
