#!/usr/bin/env python3
"""Client-matrix driver for the `fastmcp` Python client (`fastmcp.Client` over
`StreamableHttpTransport`), using its `*_mcp` methods (the protocol results, no exceptions
for `isError`).

Command line and output: see client_common.py. `--mode` is passed to `fastmcp.Client`
(auto probes 2026-07-28, legacy forces the handshake). Runs in .venv-fastmcp
(tests/py/requirements-fastmcp.txt).
"""

from __future__ import annotations

import contextlib
import os
import sys
from importlib.metadata import version
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import client_common as cc  # noqa: E402


def _text_of(content: Any) -> str:
    return "".join(getattr(c, "text", "") for c in content if getattr(c, "type", None) == "text")


class FastMcp(cc.Adapter):
    name = "fastmcp"
    version = version("fastmcp")

    def __init__(self, state: cc.State) -> None:
        super().__init__(state)
        import httpx2

        self.httpx = httpx2

    @contextlib.asynccontextmanager
    async def session(self):
        from fastmcp import Client
        from fastmcp.client.elicitation import ElicitResult
        from fastmcp.client.transports import StreamableHttpTransport

        args = self.state.args
        tee = cc.tee_transport(self.httpx, self.state.recorder)

        def factory(headers: Any = None, timeout: Any = None, auth: Any = None, **kw: Any) -> Any:
            return self.httpx.AsyncClient(
                headers=headers,
                auth=auth,
                timeout=timeout or self.httpx.Timeout(30.0, read=300.0),
                follow_redirects=kw.get("follow_redirects", True),
                transport=tee,
            )

        transport = StreamableHttpTransport(
            args.url,
            headers={"Authorization": f"Bearer {args.token}"} if args.token else {},
            httpx_client_factory=factory,
        )

        async def on_elicit(message: str, response_type: Any, params: Any, context: Any) -> Any:
            if self.state.on_elicit(message) == "accept":
                return ElicitResult(action="accept", content={"confirm": True})
            return ElicitResult(action="decline")

        extra: dict[str, Any] = {"elicitation_handler": on_elicit} if self.state.declare_elicitation else {}
        async with Client(transport, mode=args.mode, **extra) as c:
            yield c

    def jsonrpc_error(self, exc: BaseException) -> dict[str, Any] | None:
        from mcp.shared.exceptions import MCPError

        e = cc.find_exc(exc, lambda x: isinstance(x, MCPError))
        if e is None:
            return None
        return {"code": e.code, "message": e.message, "data": e.error.data}  # type: ignore[attr-defined]

    def http_error(self, exc: BaseException) -> int | None:
        e = cc.find_exc(exc, lambda x: isinstance(x, self.httpx.HTTPStatusError))
        return e.response.status_code if e is not None else None  # type: ignore[attr-defined]

    async def connected(self, c: Any) -> dict[str, Any]:
        info = c.server_info
        return {"protocol_version": c.protocol_version, "server_name": getattr(info, "name", None)}

    async def list_tools(self, c: Any) -> tuple[list[str], list[dict[str, Any]]]:
        names, objects, cursor = [], [], None
        for _ in range(100):
            page = await c.list_tools_mcp(cursor=cursor, cache_mode="bypass")
            for t in page.tools:
                names.append(t.name)
                objects.append(t.model_dump(by_alias=True, exclude_none=True, mode="json"))
            cursor = page.next_cursor
            if not cursor:
                break
        return names, objects

    async def call(self, c: Any, name: str, arguments: dict[str, Any], meta: dict[str, Any] | None,
                   progress: bool) -> dict[str, Any]:
        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            self.state.on_progress(p, total)

        async def quiet(p: float, total: float | None, message: str | None) -> None:
            return None

        r = await c.call_tool_mcp(name, arguments, progress_handler=on_progress if progress else quiet, meta=meta)
        return {"is_error": bool(r.is_error), **cc.text_result(_text_of(r.content)), "structured": r.structured_content,
                "meta_server": cc.meta_server(r.meta)}

    async def list_resources(self, c: Any) -> list[str]:
        r = await c.list_resources_mcp(cache_mode="bypass")
        return [str(x.uri) for x in r.resources]

    async def read_resource(self, c: Any, uri: str) -> list[dict[str, Any]]:
        r = await c.read_resource_mcp(uri)
        return [{"uri": str(x.uri), "mime": x.mime_type, "text_len": len(getattr(x, "text", "") or "")}
                for x in r.contents]

    async def list_prompts(self, c: Any) -> list[str]:
        r = await c.list_prompts_mcp(cache_mode="bypass")
        return [p.name for p in r.prompts]

    async def get_prompt(self, c: Any, name: str, arguments: dict[str, str]) -> list[str]:
        r = await c.get_prompt_mcp(name, arguments)
        return [getattr(m.content, "text", "") for m in r.messages]

    async def ping(self, c: Any) -> None:
        await c.ping()


if __name__ == "__main__":
    sys.exit(cc.main(FastMcp))
