#!/usr/bin/env python3
"""Runs the official MCP SDK's OAuth client (`OAuthClientProvider`) against URL with no
token, trusting only CA, and prints one JSON line: every HTTP request the SDK made (method,
URL, status) and the protected-resource metadata it accepted, if any. The flow is expected
to stop after discovery (the test's authorization server does not answer); what matters is
where the SDK's 401 handling went.

    oauth_discovery.py --url URL --ca CA_PEM
"""

import argparse
import asyncio
import json
import ssl


class MemoryStorage:
    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, info):
        self.client = info


async def run(url, ca):
    import httpx2
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import OAuthClientMetadata

    seen = []

    async def on_response(response):
        seen.append({"method": response.request.method, "url": str(response.request.url), "status": response.status_code})

    async def redirect(_url):
        raise RuntimeError("no interactive authorization in tests")

    async def callback():
        raise RuntimeError("no interactive authorization in tests")

    auth = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(redirect_uris=["http://localhost:9/callback"], client_name="fastmcp-test"),
        storage=MemoryStorage(),
        redirect_handler=redirect,
        callback_handler=callback,
    )
    verify = ssl.create_default_context(cafile=ca)
    http = httpx2.AsyncClient(auth=auth, verify=verify, timeout=20.0, event_hooks={"response": [on_response]})
    error = None
    try:
        async with http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                await client.list_tools()
    except BaseException as e:  # the flow is expected to fail after discovery
        while isinstance(e, BaseExceptionGroup) and e.exceptions:
            e = e.exceptions[0]
        error = f"{type(e).__name__}: {e}"
    prm = auth.context.protected_resource_metadata
    return {
        "requests": seen,
        "prm": json.loads(prm.model_dump_json()) if prm else None,
        "error": error,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--ca", required=True)
    a = p.parse_args()
    try:
        out = asyncio.run(asyncio.wait_for(run(a.url, a.ca), 60))
    except BaseException as e:
        out = {"requests": [], "prm": None, "error": f"outer {type(e).__name__}: {e}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
