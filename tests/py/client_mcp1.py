#!/usr/bin/env python3
"""Client-matrix driver for the official Python MCP SDK 1.x (`mcp.ClientSession` over
`streamable_http_client`): the 2025-11-25 handshake era only (`--mode` is ignored).

Command line and output: see client_common.py. Runs in .venv-mcp1
(tests/py/requirements-mcp1.txt).
"""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import timedelta
from importlib.metadata import version
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import client_common as cc  # noqa: E402


def _text_of(content: Any) -> str:
    return "".join(getattr(c, "text", "") for c in content if getattr(c, "type", None) == "text")


class Mcp1(cc.Adapter):
    name = "py-sdk-1"
    version = version("mcp")

    def __init__(self, state: cc.State) -> None:
        super().__init__(state)
        import httpx

        self.httpx = httpx
        self.init: Any = None

    @contextlib.asynccontextmanager
    async def session(self):
        from mcp import ClientSession, types
        from mcp.client.streamable_http import streamable_http_client

        args = self.state.args
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        http = self.httpx.AsyncClient(
            headers=headers,
            timeout=self.httpx.Timeout(30.0, read=300.0),
            transport=cc.tee_transport(self.httpx, self.state.recorder),
        )

        async def on_elicit(context: Any, params: Any) -> Any:
            if self.state.on_elicit(getattr(params, "message", "")) == "accept":
                return types.ElicitResult(action="accept", content={"confirm": True})
            return types.ElicitResult(action="decline")

        extra: dict[str, Any] = {"elicitation_callback": on_elicit} if self.state.declare_elicitation else {}
        async with http:
            async with streamable_http_client(args.url, http_client=http) as (read, write, _sid):
                async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=300), **extra) as s:
                    self.init = await s.initialize()
                    yield s

    def jsonrpc_error(self, exc: BaseException) -> dict[str, Any] | None:
        from mcp.shared.exceptions import McpError

        e = cc.find_exc(exc, lambda x: isinstance(x, McpError))
        if e is None:
            return None
        err = e.error  # type: ignore[attr-defined]
        return {"code": err.code, "message": err.message, "data": err.data}

    def http_error(self, exc: BaseException) -> int | None:
        e = cc.find_exc(exc, lambda x: isinstance(x, self.httpx.HTTPStatusError))
        return e.response.status_code if e is not None else None  # type: ignore[attr-defined]

    async def connected(self, s: Any) -> dict[str, Any]:
        return {"protocol_version": self.init.protocolVersion, "server_name": self.init.serverInfo.name}

    async def list_tools(self, s: Any) -> tuple[list[str], list[dict[str, Any]]]:
        from mcp import types

        names, objects, cursor = [], [], None
        for _ in range(100):
            page = await s.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
            for t in page.tools:
                names.append(t.name)
                objects.append(t.model_dump(by_alias=True, exclude_none=True, mode="json"))
            cursor = page.nextCursor
            if not cursor:
                break
        return names, objects

    async def call(self, s: Any, name: str, arguments: dict[str, Any], meta: dict[str, Any] | None,
                   progress: bool) -> dict[str, Any]:
        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            self.state.on_progress(p, total)

        r = await s.call_tool(name, arguments, progress_callback=on_progress if progress else None, meta=meta)
        return {"is_error": bool(r.isError), **cc.text_result(_text_of(r.content)), "structured": r.structuredContent,
                "meta_server": cc.meta_server(r.meta)}

    async def list_resources(self, s: Any) -> list[str]:
        r = await s.list_resources()
        return [str(x.uri) for x in r.resources]

    async def read_resource(self, s: Any, uri: str) -> list[dict[str, Any]]:
        from pydantic import AnyUrl

        r = await s.read_resource(AnyUrl(uri))
        return [{"uri": str(x.uri), "mime": x.mimeType, "text_len": len(getattr(x, "text", "") or "")}
                for x in r.contents]

    async def list_prompts(self, s: Any) -> list[str]:
        r = await s.list_prompts()
        return [p.name for p in r.prompts]

    async def get_prompt(self, s: Any, name: str, arguments: dict[str, str]) -> list[str]:
        r = await s.get_prompt(name, arguments)
        return [getattr(m.content, "text", "") for m in r.messages]

    async def ping(self, s: Any) -> None:
        await s.send_ping()


if __name__ == "__main__":
    sys.exit(cc.main(Mcp1))
