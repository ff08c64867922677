"""Fixtures for server tests: a loopback receiver for job webhooks."""

from __future__ import annotations

import pytest
from aiohttp import web


@pytest.fixture
async def webhook_receiver(aiohttp_server):
    """A loopback server recording every webhook delivery: (URL, list of (headers, body))."""
    received: list[tuple[dict, bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    yield str(server.make_url("/hook")), received
    await server.close()
