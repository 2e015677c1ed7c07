#!/usr/bin/env python3
"""A header-adding HTTP/1.1 reverse proxy for test clients that cannot send a bearer token.

Used by scripts/conformance.sh: the MCP conformance suite's client sends no Authorization
header, so it talks to this proxy, which sets `Authorization: Bearer <token>` on every request
and forwards it to the gateway. Standard library only.

Design: each client connection gets its own upstream connection (1:1), so HTTP/1.1 keep-alive
and request order are preserved without a connection pool. Requests are parsed only as far as
needed to find their boundaries (head, then a Content-Length or chunked body) and to replace the
Authorization header; everything else (Host, Origin, Mcp-Session-Id, ...) goes through as sent.
Responses are copied back byte for byte as they arrive, never parsed or buffered, so SSE
streams stay live.

    auth_proxy.py --upstream http://127.0.0.1:8001 --port-file FILE [--port 0]
    token: env AUTH_PROXY_TOKEN (kept off the command line)
"""

import argparse
import asyncio
import os
import sys
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
CHUNK = 64 * 1024


class BadRequest(Exception):
    pass


async def read_head(reader):
    """The request head up to and including the blank line; None on a clean EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            raise BadRequest("connection closed inside a request head")
        return None
    except asyncio.LimitOverrunError:
        raise BadRequest("request head too large")
    return head


def rewrite_head(head, auth_value):
    """Drops any Authorization header, adds ours; returns (new head, framing)."""
    lines = head[:-4].split(b"\r\n")
    out = [lines[0]]
    length = None
    chunked = False
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise BadRequest("malformed header line")
        key = name.strip().lower()
        if key == b"authorization":
            continue
        if key == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise BadRequest("bad content-length")
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        out.append(line)
    out.append(b"Authorization: " + auth_value)
    return b"\r\n".join(out) + b"\r\n\r\n", ("chunked" if chunked else length or 0)


async def copy_exact(reader, writer, n):
    while n > 0:
        data = await reader.read(min(n, CHUNK))
        if not data:
            raise BadRequest("connection closed inside a request body")
        writer.write(data)
        await writer.drain()
        n -= len(data)


async def copy_chunked(reader, writer):
    while True:
        size_line = await reader.readuntil(b"\r\n")
        writer.write(size_line)
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BadRequest("bad chunk size")
        if size == 0:
            # Trailers, then the final blank line.
            while True:
                line = await reader.readuntil(b"\r\n")
                writer.write(line)
                if line == b"\r\n":
                    break
            await writer.drain()
            return
        await copy_exact(reader, writer, size + 2)


async def client_to_upstream(creader, uwriter, auth_value):
    while True:
        head = await read_head(creader)
        if head is None:
            return
        new_head, framing = rewrite_head(head, auth_value)
        uwriter.write(new_head)
        await uwriter.drain()
        if framing == "chunked":
            await copy_chunked(creader, uwriter)
        elif framing:
            await copy_exact(creader, uwriter, framing)


async def upstream_to_client(ureader, cwriter):
    while True:
        data = await ureader.read(CHUNK)
        if not data:
            return
        cwriter.write(data)
        await cwriter.drain()


def close(writer):
    try:
        writer.close()
    except Exception:
        pass


async def handle(creader, cwriter, upstream, auth_value):
    try:
        ureader, uwriter = await asyncio.open_connection(upstream.hostname, upstream.port)
    except OSError as e:
        body = f"auth_proxy: upstream unreachable: {e}".encode()
        cwriter.write(
            b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\nconnection: close\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await cwriter.drain()
        close(cwriter)
        return
    up = asyncio.ensure_future(client_to_upstream(creader, uwriter, auth_value))
    down = asyncio.ensure_future(upstream_to_client(ureader, cwriter))
    try:
        done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        if up in done and up.exception() is None and not down.done():
            # The client finished sending (EOF): let the last response finish, then close.
            try:
                uwriter.write_eof()
            except (OSError, RuntimeError):
                pass
            await asyncio.wait({down})
        for t in (up, down):
            if t.done() and not t.cancelled() and t.exception() is not None:
                e = t.exception()
                if not isinstance(e, (ConnectionError, asyncio.IncompleteReadError)):
                    print(f"auth_proxy: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    finally:
        for t in (up, down):
            t.cancel()
        close(uwriter)
        close(cwriter)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="http://host:port of the gateway")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--port-file", help="written with the bound port once listening")
    args = ap.parse_args()
    upstream = urlsplit(args.upstream)
    if upstream.scheme != "http" or not upstream.hostname or not upstream.port:
        ap.error("--upstream must be http://host:port")
    token = os.environ.get("AUTH_PROXY_TOKEN", "").strip()
    if not token:
        ap.error("AUTH_PROXY_TOKEN is not set")
    auth_value = f"Bearer {token}".encode()

    server = await asyncio.start_server(
        lambda r, w: handle(r, w, upstream, auth_value), args.host, args.port, limit=MAX_HEAD
    )
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"auth_proxy: listening on {args.host}:{port} -> {args.upstream}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
