#!/usr/bin/env python3
"""An HTTPS fake upstream for FastMCP's TLS test (standard library only).

Usage: python tls_fake.py --port P --cert cert.pem --key key.pem

POST /mcp...     -> a JSON-RPC tools/call result echoing "tls ok"
anything else    -> {"success": true, "data": {"path": <request path without query>, "method": M}}
"""

import argparse
import json
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if path.startswith("/mcp"):
            req = json.loads(body or b"{}")
            out = {"jsonrpc": "2.0", "id": req.get("id"), "result": {"content": [{"type": "text", "text": "tls ok"}]}}
        else:
            out = {"success": True, "data": {"path": path, "method": self.command}}
        data = json.dumps(out).encode()
        self.send_response(201 if self.command == "POST" and not path.startswith("/mcp") else 200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _answer

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
