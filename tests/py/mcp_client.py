#!/usr/bin/env python3
"""One-shot MCP client CLI around the official `mcp` SDK 2.x, for FastMCP's black-box tests.

Usage:
    python mcp_client.py --url URL [--token TOKEN] [--mode auto|legacy] [--timeout S]
                         [--header 'Name: value' ...] [--trace] list
    python mcp_client.py --url URL [--token TOKEN] [--mode auto|legacy] [--timeout S]
                         [--header 'Name: value' ...] [--trace] call NAME ARGS_JSON [--action-token T]

Prints exactly ONE JSON line on stdout and exits 0 (exit 2 only for bad command-line usage):

    list ok:    {"ok": true, "tools": ["echo", ...], "protocol_version": "..."}
    call ok:    {"ok": true, "is_error": false, "text": "...", "structured": ..., "protocol_version": "..."}
    JSON-RPC error (from a 2xx body, or from a non-2xx application/json body holding a
    JSON-RPC error, which the SDK surfaces as the error itself):
                {"ok": false, "kind": "jsonrpc", "code": -32003, "message": "...", "data": {...} | null,
                 "status": 403 | 200 | null, "body": {...} (only when status >= 400), "phase": ...}
    HTTP error without a JSON-RPC body (the SDK turns it into a synthetic -32603/-32601 error,
    so the status is taken from an httpx2 response hook):
                {"ok": false, "kind": "http", "status": 401, "message": "...", "body": <json or absent>,
                 "www_authenticate": "..." | null, "sdk_code": -32603, "phase": ...}
    other:      {"ok": false, "kind": "exception", "type": "...", "message": "...", "phase": ...}
    overall timeout: {"ok": false, "kind": "timeout", "phase": ...}

"phase" is "connect" (server/discover, initialize), "list" or "call".
--token "" (or no --token) sends no Authorization header.
--action-token T sends params._meta["fastmcp/action_token"] = T on tools/call.
ARGS_JSON may be "@path" (read the JSON from a file) or "-" (stdin), for bodies too big for argv.
--trace adds "trace": [{"method", "rpc", "status", "request_headers", "response_headers"}...].
--sample TEXT declares sampling and answers every sampling/createMessage with TEXT (the
requests' texts are listed under "sampled"); --root URI declares roots and lists URI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Any

ACTION_TOKEN_META_KEY = "fastmcp/action_token"

_print_lock = threading.Lock()
_printed = False


def emit(obj: dict[str, Any]) -> None:
    """Write the single result line (first caller wins; later calls are dropped)."""
    global _printed
    with _print_lock:
        if _printed:
            return
        _printed = True
        sys.stdout.write(json.dumps(obj, default=str) + "\n")
        sys.stdout.flush()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--mode", default="auto", choices=["auto", "legacy"])
    p.add_argument("--timeout", type=float, default=30.0, help="overall deadline in seconds (default 30)")
    p.add_argument("--header", action="append", default=[], help="extra request header 'Name: value'")
    p.add_argument("--trace", action="store_true", help="include the HTTP exchanges in the output")
    p.add_argument(
        "--elicit",
        default="none",
        choices=["none", "accept", "decline"],
        help="declare elicitation and answer every elicitation/create this way (default: not declared)",
    )
    p.add_argument("--sample", default=None, help="declare sampling; answer every request with this text")
    p.add_argument("--root", default=None, help="declare roots; list this file:// URI")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    c = sub.add_parser("call")
    c.add_argument("name")
    c.add_argument("args_json", nargs="?", default="{}")
    c.add_argument("--action-token", default=None)
    return p.parse_args(argv)


class HttpRecorder:
    """httpx2 event hooks that remember each POST exchange (status, headers, error body)."""

    def __init__(self) -> None:
        self.last_post: dict[str, Any] | None = None
        self.trace: list[dict[str, Any]] = []

    @staticmethod
    def _rpc_of(request: Any) -> tuple[str | None, Any, bool]:
        try:
            body = json.loads(request.content or b"null")
        except Exception:
            return None, None, False
        if isinstance(body, dict):
            return body.get("method"), body.get("id"), "id" in body and "method" in body
        return None, None, False

    async def on_response(self, response: Any) -> None:
        request = response.request
        rpc, rpc_id, is_request = self._rpc_of(request) if request.method == "POST" else (None, None, False)
        rec: dict[str, Any] = {
            "method": request.method,
            "rpc": rpc,
            "id": rpc_id,
            "status": response.status_code,
            "content_type": response.headers.get("content-type"),
            "www_authenticate": response.headers.get("www-authenticate"),
        }
        if response.status_code >= 400:
            # Error bodies are small and never SSE; reading here leaves them cached for the SDK.
            try:
                raw = await response.aread()
                rec["raw_body"] = raw.decode("utf-8", "replace")[:4000]
                try:
                    rec["body"] = json.loads(raw)
                except ValueError:
                    pass
            except Exception as exc:  # pragma: no cover - best effort
                rec["raw_body_error"] = repr(exc)
        self.trace.append(
            {
                "method": request.method,
                "rpc": rpc,
                "status": response.status_code,
                "request_headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
                "response_headers": dict(response.headers.items()),
            }
        )
        if is_request:
            self.last_post = rec


def _is_jsonrpc_error_body(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("error"), dict) and "code" in body["error"]


def _find(exc: BaseException, types_: tuple[type[BaseException], ...]) -> BaseException | None:
    """Depth-first search through exception groups and causes for an instance of types_."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, types_):
            return e
        if isinstance(e, BaseExceptionGroup):
            stack.extend(reversed(e.exceptions))
        # Follow explicit causes only: __context__ can hold an error the SDK already handled
        # (e.g. the discover probe's rejection before a failing initialize fallback).
        if e.__cause__ is not None:
            stack.append(e.__cause__)
    return None


def _all_leaves(exc: BaseException, types_: tuple[type[BaseException], ...]) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_all_leaves(e, types_) for e in exc.exceptions)
    return isinstance(exc, types_)


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def run(args: argparse.Namespace, state: dict[str, Any]) -> dict[str, Any]:
    import anyio
    import httpx2
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import MCPError

    recorder = HttpRecorder()
    state["recorder"] = recorder
    headers: dict[str, str] = {}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    for h in args.header:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()

    arguments: dict[str, Any] = {}
    if args.command == "call":
        raw_args = args.args_json
        if raw_args == "-":
            raw_args = sys.stdin.read()
        elif raw_args.startswith("@"):
            with open(raw_args[1:], encoding="utf-8") as f:
                raw_args = f.read()
        arguments = json.loads(raw_args)
        if not isinstance(arguments, dict):
            raise SystemExit("ARGS_JSON must be a JSON object")

    def finish(out: dict[str, Any]) -> dict[str, Any]:
        if args.trace:
            out["trace"] = recorder.trace
        return out

    http = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(30.0, read=300.0),
        event_hooks={"response": [recorder.on_response]},
    )
    try:
        async with http:
            state["phase"] = "connect"
            elicited: list[str] = []
            state["elicited"] = elicited

            async def on_elicit(context: Any, params: Any) -> Any:
                import mcp_types

                elicited.append(getattr(params, "message", ""))
                if args.elicit == "accept":
                    return mcp_types.ElicitResult(action="accept", content={"confirm": True})
                return mcp_types.ElicitResult(action="decline")

            extra: dict[str, Any] = {"elicitation_callback": on_elicit} if args.elicit != "none" else {}
            sampled: list[str] = []

            async def on_sample(context: Any, params: Any) -> Any:
                import mcp_types

                for m in params.messages:
                    sampled.append(getattr(m.content, "text", ""))
                return mcp_types.CreateMessageResult(
                    role="assistant",
                    content=mcp_types.TextContent(type="text", text=args.sample),
                    model="fastmcp-test-model",
                    stop_reason="endTurn",
                )

            async def on_roots(context: Any) -> Any:
                import mcp_types

                return mcp_types.ListRootsResult(roots=[mcp_types.Root(uri=args.root, name="test root")])

            if args.sample is not None:
                extra["sampling_callback"] = on_sample
            if args.root is not None:
                extra["list_roots_callback"] = on_roots
            transport = streamable_http_client(args.url, http_client=http)
            async with Client(transport, mode=args.mode, **extra) as client:
                if args.command == "list":
                    state["phase"] = "list"
                    tools = []
                    cursor = None
                    for _ in range(100):
                        page = await client.list_tools(cursor=cursor)
                        tools.extend(t.name for t in page.tools)
                        cursor = page.next_cursor
                        if not cursor:
                            break
                    out: dict[str, Any] = {"ok": True, "tools": tools}
                else:
                    state["phase"] = "call"
                    meta = {ACTION_TOKEN_META_KEY: args.action_token} if args.action_token is not None else None
                    result = await client.call_tool(args.name, arguments, meta=meta)
                    text = "".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", None) == "text")
                    out = {
                        "ok": True,
                        "is_error": bool(result.is_error),
                        "text": text,
                        "structured": result.structured_content,
                    }
                out["protocol_version"] = client.protocol_version
                out["elicited"] = elicited
                out["sampled"] = sampled
                state["result"] = out
                phase = state["phase"]
            state["phase"] = phase
            return finish(out)
    except BaseException as exc:  # noqa: BLE001 - classify everything into one JSON line
        if "result" in state:
            # The operation succeeded; only teardown (e.g. the session DELETE) failed.
            return finish(state["result"])
        if _all_leaves(exc, (anyio.get_cancelled_exc_class(), KeyboardInterrupt, SystemExit)):
            raise  # the overall deadline (or ^C): let fail_after report it
        mcp_err = _find(exc, (MCPError,))
        rec = recorder.last_post
        status = rec["status"] if rec else None
        base: dict[str, Any] = {"ok": False, "phase": state.get("phase")}
        if mcp_err is not None:
            assert isinstance(mcp_err, MCPError)
            body = rec.get("body") if rec else None
            if rec is not None and status is not None and status >= 400 and not _is_jsonrpc_error_body(body):
                out = {
                    **base,
                    "kind": "http",
                    "status": status,
                    "message": f"HTTP {status} ({rec.get('rpc')}): {rec.get('raw_body', '')[:500]}".strip(),
                    "www_authenticate": rec.get("www_authenticate"),
                    "sdk_code": mcp_err.code,
                    "sdk_message": mcp_err.message,
                }
                if "body" in rec:
                    out["body"] = rec["body"]
                return finish(out)
            out = {
                **base,
                "kind": "jsonrpc",
                "code": mcp_err.code,
                "message": mcp_err.message,
                "data": mcp_err.error.data,
                "status": status,
            }
            if rec is not None and status is not None and status >= 400 and "body" in rec:
                out["body"] = rec["body"]
            return finish(out)
        http_err = _find(exc, (httpx2.HTTPStatusError,))
        if http_err is not None:
            resp = http_err.response  # type: ignore[attr-defined]
            out = {**base, "kind": "http", "status": resp.status_code, "message": str(http_err)}
            try:
                out["body"] = json.loads(resp.content)
            except Exception:
                pass
            return finish(out)
        leaf = _leaf(exc)
        return finish(
            {**base, "kind": "exception", "type": type(leaf).__name__, "message": str(leaf), "status": status}
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    state: dict[str, Any] = {"phase": "start"}

    # Hard watchdog in case cancellation itself gets stuck (shielded cleanup etc.).
    def watchdog() -> None:
        emit({"ok": False, "kind": "timeout", "phase": state.get("phase"), "message": "watchdog"})
        os._exit(0)

    dog = threading.Timer(args.timeout + 5.0, watchdog)
    dog.daemon = True
    dog.start()

    import anyio

    async def guarded() -> dict[str, Any]:
        try:
            with anyio.fail_after(args.timeout):
                return await run(args, state)
        except TimeoutError:
            if "result" in state:
                return state["result"]
            return {"ok": False, "kind": "timeout", "phase": state.get("phase"), "message": f"no answer within {args.timeout}s"}

    try:
        out = anyio.run(guarded)
    except BaseException as exc:  # noqa: BLE001
        leaf = _leaf(exc)
        out = {"ok": False, "kind": "exception", "type": type(leaf).__name__, "message": str(leaf), "phase": state.get("phase")}
    emit(out)
    dog.cancel()
    return 0


if __name__ == "__main__":
    sys.exit(main())
