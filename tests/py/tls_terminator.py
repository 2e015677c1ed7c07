#!/usr/bin/env python3
"""A TLS-terminating TCP proxy for FastMCP's black-box tests: the load balancer in front of a
plain-HTTP gateway. Each client connection gets its own upstream connection and bytes are
copied both ways unchanged, so the gateway sees no X-Forwarded-* and only what the client
sent as Host — exactly the case where only `public_url` can tell the gateway its name.
Standard library only.

    tls_terminator.py --port P --cert CERT --key KEY --upstream 127.0.0.1:PORT
"""

import argparse
import asyncio
import ssl


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--upstream", required=True)
    a = p.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)

    async def handle(cr, cw):
        try:
            ur, uw = await asyncio.open_connection(host, int(port))
        except OSError:
            cw.close()
            return
        await asyncio.gather(pipe(cr, uw), pipe(ur, cw))

    server = await asyncio.start_server(handle, "127.0.0.1", a.port, ssl=ctx)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
