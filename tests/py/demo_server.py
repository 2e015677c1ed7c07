#!/usr/bin/env python3
"""Demo MCP upstream for FastMCP's black-box tests (official `mcp` SDK 2.x).

Usage:
    python demo_server.py --port P --calls-file PATH [--host 127.0.0.1]
                          [--json-response] [--stateless] [--allow-any-host] [--param-tool]

Serves streamable HTTP at http://HOST:P/mcp with four tools:

    echo(text)         readOnlyHint=True
    add(a, b)          readOnlyHint=True
    read_secret(name)  readOnlyHint=True       -> "secret-" + name
    delete_item(item)  destructiveHint=True    -> "deleted " + item

and, with --param-tool, a fifth whose `region` argument is mirrored into an `Mcp-Param-Region`
header (2026-07-28 `x-mcp-header`; the SDK refuses a 2026-07-28 call whose header is missing
or does not match the body, with -32020):

    locate(region, query)  readOnlyHint=True  -> "region=" + region + " query=" + query

Every tool call bumps a per-tool counter that is written to --calls-file as JSON
({"echo": 1, "delete_item": 1}) atomically (temp file + fsync + os.replace) before the
tool returns, so a test that reads the file after the call came back sees the count.
The file is (re)written with {} at start-up.

Defaults mirror the SDK's own: SSE responses, stateful sessions, and DNS-rebinding
protection when bound to localhost (a Host header other than 127.0.0.1:*, localhost:*
or [::1]:* gets 421). --allow-any-host turns that protection off.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading

from typing import Annotated

import anyio
import uvicorn
from pydantic import Field
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations


class CallCounter:
    """Per-tool call counts, persisted atomically to a JSON file on every bump."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        self._write()

    def bump(self, tool: str) -> None:
        with self.lock:
            self.counts[tool] = self.counts.get(tool, 0) + 1
            self._write()

    def _write(self) -> None:
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".calls-", suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.counts, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise


def build_server(counter: CallCounter, param_tool: bool = False) -> MCPServer:
    server = MCPServer("demo")
    read_only = ToolAnnotations(readOnlyHint=True)

    @server.tool(annotations=read_only)
    def echo(text: str) -> str:
        """Return the text unchanged."""
        counter.bump("echo")
        return text

    @server.tool(annotations=read_only)
    def add(a: int, b: int) -> int:
        """Add two integers."""
        counter.bump("add")
        return a + b

    @server.tool(annotations=read_only)
    def read_secret(name: str) -> str:
        """Read a (fake) secret."""
        counter.bump("read_secret")
        return "secret-" + name

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
    def delete_item(item: str) -> str:
        """Delete an item (pretend)."""
        counter.bump("delete_item")
        return "deleted " + item

    if param_tool:

        @server.tool(annotations=read_only)
        def locate(
            region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
            query: str,
        ) -> str:
            """Run a query in a region (the region travels in the Mcp-Param-Region header)."""
            counter.bump("locate")
            return f"region={region} query={query}"

    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--calls-file", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--json-response", action="store_true", help="answer POSTs with application/json, not SSE")
    p.add_argument("--stateless", action="store_true", help="stateless streamable HTTP (no Mcp-Session-Id)")
    p.add_argument("--allow-any-host", action="store_true", help="disable Host/Origin (DNS rebinding) checks")
    p.add_argument("--param-tool", action="store_true", help="also serve locate(region, query) with x-mcp-header")
    p.add_argument("--log-level", default="warning")
    args = p.parse_args(argv)

    counter = CallCounter(args.calls_file)
    server = build_server(counter, param_tool=args.param_tool)
    security = (
        TransportSecuritySettings(enable_dns_rebinding_protection=False) if args.allow_any_host else None
    )
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        json_response=args.json_response,
        stateless_http=args.stateless,
        transport_security=security,
        host=args.host,
    )
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, lifespan="on")
    uv = uvicorn.Server(config)
    print(f"demo_server: serving http://{args.host}:{args.port}/mcp calls-file={counter.path}", file=sys.stderr)
    sys.stderr.flush()
    anyio.run(uv.serve)
    # uvicorn returns (rather than raising) when it cannot bind; make that a failure.
    return 0 if uv.started else 1


if __name__ == "__main__":
    sys.exit(main())
