"""Shared runner of the client-matrix drivers (tests/client_matrix.rs).

Each driver (client_mcp1.py, client_mcp2.py, client_fastmcp.py, tests/node/client_ts.mjs) is
one small CLI around one real MCP client library with the same command line and output:

    DRIVER --url URL [--token T] [--elicit none|accept|decline] [--mode auto|legacy]
           [--timeout S] [--step-timeout S] STEPS

STEPS is a JSON array (or "@path" to a file holding one) of steps run in order on one client
session. When the library's session dies under a step (its transport fails) or a step times
out, the next step opens a new session, so every step's "session" number tells whether the
session survived (the same number as the step before it).

Steps:
    {"op": "list_tools"}                           -> tools (names), raw (tools/list JSON-RPC
                                                      messages exactly as received; null when
                                                      the library hides them), tool_objects
    {"op": "call", "name": N, "args": {...} | "args_file": P, "meta": {...},
     "action_token": T | "action_token_from": I,   -> is_error, text (first 2000 chars),
     "progress": true, "answer": "accept"|"decline"}  text_len, text_sha256, structured,
                                                      progress ([{progress, total}]),
                                                      meta_server (the name in the result's
                                                      _meta serverInfo, or null)
    {"op": "list_resources"}                       -> uris
    {"op": "read_resource", "uri": U | "first": true} -> uri, contents [{uri, mime, text_len}]
    {"op": "list_prompts"}                         -> prompts (names)
    {"op": "get_prompt", "name": N, "args": {...}} -> messages (texts)
    {"op": "ping"}

"action_token_from": I takes data.action_token from step I's JSON-RPC error.
"answer" overrides --elicit's answer for that step (the capability is declared at connect
when --elicit is not "none").

Output: ONE JSON line {"client", "version", "connect", "steps", "sessions"}. Every step result
has "op", "ok", "session", "elicited" (elicitation requests seen during the step) and
"http_status" (status of the last POST carrying the step's method). Failures:
    {"ok": false, "kind": "jsonrpc", "code", "message", "data"}  the library surfaced an error
                                       (+ "status", "www_authenticate" of an HTTP error under it)
    {"ok": false, "kind": "http", "status", "message", "www_authenticate"}
    {"ok": false, "kind": "exception", "type", "message"}
    {"ok": false, "kind": "timeout"}
    {"ok": false, "kind": "not_connected", "message"}             no session could be opened
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import traceback
from typing import Any, Callable

ACTION_TOKEN_META_KEY = "fastmcp/action_token"
TEXT_KEEP = 2000

_print_lock = threading.Lock()
_printed = False


def emit(obj: dict[str, Any]) -> None:
    """Write the single result line (first caller wins)."""
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
    p.add_argument("--elicit", default="none", choices=["none", "accept", "decline"])
    p.add_argument("--mode", default="auto", choices=["auto", "legacy"])
    p.add_argument("--timeout", type=float, default=90.0, help="deadline of the whole run (s)")
    p.add_argument("--step-timeout", type=float, default=20.0, help="deadline of one step (s)")
    p.add_argument("steps")
    args = p.parse_args(argv)
    raw = args.steps
    if raw.startswith("@"):
        with open(raw[1:], encoding="utf-8") as f:
            raw = f.read()
    args.steps = json.loads(raw)
    if not isinstance(args.steps, list):
        raise SystemExit("STEPS must be a JSON array")
    return args


# ------------------------------------------------------------------ HTTP recording


class Recorder:
    """Every HTTP exchange: request JSON-RPC method/id, status, headers, the bytes received."""

    def __init__(self) -> None:
        self.exchanges: list[dict[str, Any]] = []

    def add(self, method: str, content: bytes | None, status: int, headers: Any) -> dict[str, Any]:
        rpc, rpc_id = None, None
        try:
            body = json.loads(content or b"null")
            if isinstance(body, dict):
                rpc, rpc_id = body.get("method"), body.get("id")
        except (ValueError, TypeError):
            pass
        rec = {
            "http_method": method,
            "rpc": rpc,
            "id": rpc_id,
            "status": status,
            "content_type": (headers.get("content-type") or "").lower(),
            "www_authenticate": headers.get("www-authenticate"),
            "body": bytearray(),
        }
        self.exchanges.append(rec)
        return rec

    def status_of(self, since: int, rpc: str | None) -> int | None:
        """Status of the last POST since `since` carrying `rpc` ("connect": the handshake)."""
        wanted = ("initialize", "server/discover") if rpc == "connect" else (rpc,)
        for rec in reversed(self.exchanges[since:]):
            if rec["http_method"] == "POST" and (rpc is None or rec["rpc"] in wanted):
                return rec["status"]
        return None

    def last_error(self, since: int) -> dict[str, Any] | None:
        for rec in reversed(self.exchanges[since:]):
            if rec["status"] >= 400:
                return rec
        return None

    def raw_messages(self, since: int, rpc: str) -> list[str]:
        """The JSON-RPC responses to `rpc` requests, as the exact text received."""
        out = []
        for rec in self.exchanges[since:]:
            if rec["rpc"] != rpc or rec["id"] is None:
                continue
            text = bytes(rec["body"]).decode("utf-8", "replace")
            for msg in messages_of(text, rec["content_type"]):
                try:
                    parsed = json.loads(msg)
                except ValueError:
                    continue
                if isinstance(parsed, dict) and parsed.get("id") == rec["id"] and "result" in parsed:
                    out.append(msg)
        return out


def messages_of(text: str, content_type: str) -> list[str]:
    """JSON message texts in a body: the body itself, or each SSE event's data."""
    if not content_type.startswith("text/event-stream"):
        return [text]
    out, data = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "":
            if data:
                out.append("\n".join(data))
            data = []
        elif line.startswith("data:"):
            v = line[5:]
            data.append(v[1:] if v.startswith(" ") else v)
    if data:
        out.append("\n".join(data))
    return out


def tee_transport(httpx_mod: Any, recorder: Recorder) -> Any:
    """An httpx(2) transport that records every exchange and the bytes the client reads."""

    class TeeStream(httpx_mod.AsyncByteStream):
        def __init__(self, inner: Any, rec: dict[str, Any]) -> None:
            self.inner, self.rec = inner, rec

        async def __aiter__(self):  # type: ignore[override]
            async for chunk in self.inner:
                self.rec["body"].extend(chunk)
                yield chunk

        async def aclose(self) -> None:
            await self.inner.aclose()

    class Tee(httpx_mod.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx_mod.AsyncHTTPTransport()

        async def handle_async_request(self, request: Any) -> Any:
            response = await self.inner.handle_async_request(request)
            try:
                content = request.content
            except Exception:  # a streaming request body: not a JSON-RPC POST of ours
                content = None
            rec = recorder.add(request.method, content, response.status_code, response.headers)
            return httpx_mod.Response(
                status_code=response.status_code,
                headers=response.headers,
                stream=TeeStream(response.stream, rec),
                extensions=response.extensions,
                request=request,
            )

        async def aclose(self) -> None:
            await self.inner.aclose()

    return Tee()


# ------------------------------------------------------------------ results


SERVER_INFO_META_KEY = "io.modelcontextprotocol/serverInfo"


def meta_server(meta: Any) -> Any:
    """The server name a result's `_meta` carries (`io.modelcontextprotocol/serverInfo`), if any."""
    info = meta.get(SERVER_INFO_META_KEY) if isinstance(meta, dict) else None
    return info.get("name") if isinstance(info, dict) else info


def text_result(text: str) -> dict[str, Any]:
    return {
        "text": text[:TEXT_KEEP],
        "text_len": len(text),
        "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }


def find_exc(exc: BaseException, pred: Callable[[BaseException], bool]) -> BaseException | None:
    """Depth-first through exception groups and causes."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if pred(e):
            return e
        if isinstance(e, BaseExceptionGroup):
            stack.extend(reversed(e.exceptions))
        if e.__cause__ is not None:
            stack.append(e.__cause__)
        if e.__context__ is not None:
            stack.append(e.__context__)
    return None


def leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class State:
    """What the library callbacks share with the step runner."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.answer = args.elicit
        self.elicited: list[str] = []
        self.progress: list[dict[str, Any]] = []
        self.recorder = Recorder()

    @property
    def declare_elicitation(self) -> bool:
        return self.args.elicit != "none"

    def on_elicit(self, message: str) -> str:
        self.elicited.append(message)
        return "accept" if self.answer == "accept" else "decline"

    def on_progress(self, progress: Any, total: Any) -> None:
        self.progress.append({"progress": progress, "total": total})


class Adapter:
    """One client library. Subclasses implement `session()` and the operations."""

    name = "?"
    version = "?"

    def __init__(self, state: State) -> None:
        self.state = state

    def session(self) -> Any:  # async context manager yielding a connected handle
        raise NotImplementedError

    def jsonrpc_error(self, exc: BaseException) -> dict[str, Any] | None:
        """{code, message, data} when `exc` is (or wraps) the library's JSON-RPC error."""
        raise NotImplementedError

    def http_error(self, exc: BaseException) -> int | None:
        """The HTTP status when `exc` is (or wraps) the library's HTTP status error."""
        return None

    async def connected(self, h: Any) -> dict[str, Any]:
        raise NotImplementedError

    async def list_tools(self, h: Any) -> tuple[list[str], list[dict[str, Any]]]:
        raise NotImplementedError

    async def call(self, h: Any, name: str, arguments: dict[str, Any], meta: dict[str, Any] | None,
                   progress: bool) -> dict[str, Any]:
        raise NotImplementedError

    async def list_resources(self, h: Any) -> list[str]:
        raise NotImplementedError

    async def read_resource(self, h: Any, uri: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def list_prompts(self, h: Any) -> list[str]:
        raise NotImplementedError

    async def get_prompt(self, h: Any, name: str, arguments: dict[str, str]) -> list[str]:
        raise NotImplementedError

    async def ping(self, h: Any) -> None:
        raise NotImplementedError


RPC_OF = {
    "list_tools": "tools/list",
    "call": "tools/call",
    "list_resources": "resources/list",
    "read_resource": "resources/read",
    "list_prompts": "prompts/list",
    "get_prompt": "prompts/get",
    "ping": "ping",
}


class Runner:
    def __init__(self, adapter: Adapter, state: State) -> None:
        self.a, self.s = adapter, state
        self.results: list[dict[str, Any] | None] = [None] * len(state.args.steps)
        self.connect: dict[str, Any] | None = None
        self.sessions = 0
        self.last_uris: list[str] = []
        self._since = 0

    def classify(self, exc: BaseException, since: int) -> dict[str, Any]:
        rec = self.s.recorder.last_error(since)
        rpc = self.a.jsonrpc_error(exc)
        if rpc is not None:
            out = {"ok": False, "kind": "jsonrpc", **rpc}
            if rec is not None:
                out["status"] = rec["status"]
                out["www_authenticate"] = rec["www_authenticate"]
            return out
        status = self.a.http_error(exc)
        if status is None and rec is not None:
            status = rec["status"]
        if status is not None:
            body = bytes(rec["body"]).decode("utf-8", "replace")[:1000] if rec else ""
            return {
                "ok": False,
                "kind": "http",
                "status": status,
                "message": f"{type(leaf(exc)).__name__}: {leaf(exc)}"[:1000],
                "body": body,
                "www_authenticate": rec["www_authenticate"] if rec else None,
            }
        lf = leaf(exc)
        return {"ok": False, "kind": "exception", "type": type(lf).__name__, "message": str(lf)[:1000]}

    def snapshot(self) -> dict[str, Any]:
        steps = [r if r is not None else {"ok": False, "kind": "timeout", "message": "run deadline"}
                 for r in self.results]
        return {
            "client": self.a.name,
            "version": self.a.version,
            "connect": self.connect or {"ok": False, "kind": "timeout", "message": "run deadline"},
            "steps": steps,
            "sessions": self.sessions,
        }

    async def step(self, h: Any, i: int, step: dict[str, Any]) -> dict[str, Any]:
        op = step.get("op")
        s = self.s
        if op == "list_tools":
            since = len(s.recorder.exchanges)
            names, objects = await self.a.list_tools(h)
            raw = s.recorder.raw_messages(since, "tools/list")
            return {"ok": True, "tools": names, "tool_objects": objects, "raw": raw or None}
        if op == "call":
            if "args_file" in step:
                with open(step["args_file"], encoding="utf-8") as f:
                    arguments = json.load(f)
            else:
                arguments = step.get("args", {})
            meta = dict(step.get("meta") or {})
            token = step.get("action_token")
            if "action_token_from" in step:
                prev = self.results[int(step["action_token_from"])] or {}
                token = ((prev.get("data") or {}) if isinstance(prev.get("data"), dict) else {}).get("action_token")
                if not token:
                    return {"ok": False, "kind": "exception", "type": "NoActionToken",
                            "message": f"step {step['action_token_from']} carried no data.action_token"}
            if token is not None:
                meta[ACTION_TOKEN_META_KEY] = token
            s.progress = []
            out = await self.a.call(h, step["name"], arguments, meta or None, bool(step.get("progress")))
            out = {"ok": True, **out}
            if step.get("progress"):
                out["progress"] = list(s.progress)
            return out
        if op == "list_resources":
            uris = await self.a.list_resources(h)
            self.last_uris = uris
            return {"ok": True, "uris": uris}
        if op == "read_resource":
            uri = step.get("uri")
            if uri is None and step.get("first"):
                if not self.last_uris:
                    return {"ok": False, "kind": "exception", "type": "NoResource", "message": "no listed resource"}
                uri = self.last_uris[0]
            return {"ok": True, "uri": uri, "contents": await self.a.read_resource(h, uri)}
        if op == "list_prompts":
            return {"ok": True, "prompts": await self.a.list_prompts(h)}
        if op == "get_prompt":
            return {"ok": True, "messages": await self.a.get_prompt(h, step["name"], step.get("args") or {})}
        if op == "ping":
            await self.a.ping(h)
            return {"ok": True}
        return {"ok": False, "kind": "exception", "type": "BadStep", "message": f"unknown op {op!r}"}

    async def run(self) -> dict[str, Any]:
        import anyio

        steps = self.s.args.steps
        i = 0
        while True:
            since_connect = len(self.s.recorder.exchanges)
            session_no = self.sessions
            try:
                # The connect is bounded by the run deadline: a cancel scope must not wrap the
                # session's own task group from outside it.
                async with self.a.session() as h:
                    self.sessions += 1
                    if self.connect is None:
                        with anyio.fail_after(self.s.args.step_timeout):
                            self.connect = {"ok": True, **(await self.a.connected(h))}
                        self.connect["http_status"] = self.s.recorder.status_of(since_connect, "connect")
                    broken = False
                    while i < len(steps) and not broken:
                        step = steps[i]
                        self.s.answer = step.get("answer") or self.s.args.elicit
                        n_elicited = len(self.s.elicited)
                        since = self._since = len(self.s.recorder.exchanges)
                        try:
                            with anyio.fail_after(self.s.args.step_timeout):
                                res = await self.step(h, i, step)
                        except TimeoutError:
                            res = {"ok": False, "kind": "timeout",
                                   "message": f"no answer within {self.s.args.step_timeout}s"}
                            broken = True
                        except Exception as exc:  # noqa: BLE001 - every failure becomes a result
                            # The session goes on: whether it survived is for the next step
                            # to show (a library whose transport died raises out of the
                            # session instead, handled below).
                            res = self.classify(exc, since)
                        self.results[i] = {
                            "op": step.get("op"), **res, "session": session_no,
                            "elicited": len(self.s.elicited) - n_elicited,
                            "http_status": self.s.recorder.status_of(since, RPC_OF.get(step.get("op", ""))),
                        }
                        i += 1
            except BaseException as exc:  # noqa: BLE001
                if _is_cancel(exc):
                    raise
                if self.connect is None:
                    if isinstance(exc, TimeoutError):
                        self.connect = {"ok": False, "kind": "timeout", "message": "connect timed out"}
                    else:
                        self.connect = self.classify(exc, since_connect)
                    for j in range(i, len(steps)):
                        self.results[j] = {"op": steps[j].get("op"), "ok": False, "kind": "not_connected",
                                           "message": "the first connect failed", "session": None,
                                           "elicited": 0, "http_status": None}
                    break
                if i < len(steps) and self.sessions == session_no:
                    # Reconnecting failed: nothing further can run.
                    res = self.classify(exc, since_connect)
                    for j in range(i, len(steps)):
                        self.results[j] = {"op": steps[j].get("op"), "ok": False, "kind": "not_connected",
                                           "message": f"reconnect failed: {res.get('message')}",
                                           "session": None, "elicited": 0, "http_status": None}
                    break
                if i < len(steps) and self.results[i] is None:
                    # The session died under step i (the library's transport failed).
                    res = self.classify(exc, self._since)
                    self.results[i] = {"op": steps[i].get("op"), **res, "session": session_no,
                                       "elicited": 0, "http_status": self.s.recorder.status_of(self._since, None)}
                    i += 1
            if i >= len(steps):
                break
        return self.snapshot()


def _is_cancel(exc: BaseException) -> bool:
    import anyio

    cancelled = anyio.get_cancelled_exc_class()
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_cancel(e) for e in exc.exceptions)
    return isinstance(exc, (cancelled, KeyboardInterrupt, SystemExit))


def main(make_adapter: Callable[[State], Adapter], argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    state = State(args)
    adapter = make_adapter(state)
    runner = Runner(adapter, state)

    def watchdog() -> None:
        out = runner.snapshot()
        out["watchdog"] = True
        emit(out)
        os._exit(0)

    dog = threading.Timer(args.timeout + 5.0, watchdog)
    dog.daemon = True
    dog.start()

    import anyio

    async def guarded() -> dict[str, Any]:
        with anyio.move_on_after(args.timeout):
            return await runner.run()
        out = runner.snapshot()
        out["deadline"] = True
        return out

    try:
        out = anyio.run(guarded)
    except BaseException as exc:  # noqa: BLE001
        out = runner.snapshot()
        out["crash"] = "".join(traceback.format_exception(exc))[-2000:]
    emit(out)
    dog.cancel()
    return 0
