"""answer_keys_first(): the service answers plain key GETs ahead of aiohttp's router and middleware.

Both ways in must give byte-for-byte the same answers (headers included) and the same metrics, so
each request here goes over raw HTTP to two servers on the same Services: one as the service runs
(key_world installs the fast path), one without it.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.edge.accesslog import access_log_options
from server.keys.endpoint import answer_keys_first
from tests.server.conftest import BUYER, STRANGER
from tests.server.edge.test_metrics import samples

PLAYER = "https://player.example"


async def raw_get(port: int, target: str, headers: dict[str, str] | None = None,
                  method: str = "GET") -> tuple[str, list[tuple[str, str]], bytes]:
    """One request with `target` exactly as written (no client normalises it): (status line,
    headers in order without Date, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             *(f"{name}: {value}" for name, value in (headers or {}).items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *fields = head.decode().split("\r\n")
    pairs = [tuple(field.split(": ", 1)) for field in fields]
    return status, [pair for pair in pairs if pair[0] != "Date"], body


@pytest.fixture
async def two_ways(key_world):
    """(world, port of the service as it runs, port of the same app without the fast path)."""
    world = await key_world(CORS_ORIGINS=PLAYER)
    plain = TestServer(create_app(world.services.settings, world.services))
    await plain.start_server(**access_log_options())
    yield world, world.client.server.port, plain.port
    await plain.close()


def requests_to_compare(world) -> list[tuple[str, dict[str, str], str]]:
    buyer, stranger = world.token(), world.token(STRANGER)
    other_series = world.token(BUYER, "s2")
    key = world.url(None)
    return [
        (f"{key}?token={buyer}", {}, "GET"),
        (f"{key}?token={buyer}", {"Origin": PLAYER}, "GET"),
        (f"{key}?token={buyer}", {"Origin": "https://elsewhere.example"}, "GET"),
        (key, {"Authorization": f"Bearer {buyer}", "Origin": PLAYER}, "GET"),
        (f"{key}?token={buyer}&x=1", {}, "GET"),
        (f"{key}?token={stranger}", {"Origin": PLAYER}, "GET"),               # not entitled
        (f"{key}?token={other_series}", {}, "GET"),                           # wrong series
        (f"{key}?token={buyer[:-3]}AAA", {"Origin": PLAYER}, "GET"),          # forged
        (key, {}, "GET"),                                                     # no token
        (f"/v1/keys/k_unknown?token={buyer}", {}, "GET"),
        (f"{key}?token={buyer}", {}, "HEAD"),                                 # the router's way
        (f"{key}%41?token={buyer}", {}, "GET"),                               # an id the router decodes
        (f"{key}/?token={buyer}", {}, "GET"),
        (f"{key}?token={buyer}", {"Expect": "100-continue"}, "GET"),
    ]


async def test_both_ways_give_the_same_answers_and_metrics(two_ways):
    world, fast, plain = two_ways
    granted = 0
    for target, headers, method in requests_to_compare(world):
        answers = [await raw_get(port, target, headers, method) for port in (fast, plain)]
        assert answers[0] == answers[1], target
        granted += answers[0][2] == world.key.key
    assert granted == 5           # the grants really were grants, on both

    def key_route_samples(text):       # counts only: durations differ from run to run
        return {(name, labels): count for (name, labels), count in samples(text).items()
                if name.endswith("_total") and (("route", "/v1/keys/{key_id}") in labels
                                                or name.startswith("series_key_"))}

    metrics = [key_route_samples((await raw_get(port, "/metrics"))[2].decode()) for port in (fast, plain)]
    assert metrics[0] and metrics[0] == metrics[1]


async def test_only_plain_key_gets_skip_the_router(key_world):
    world = await key_world()
    server = TestServer(create_app(world.services.settings, world.services))
    await server.start_server(**access_log_options())
    seen = []
    app_way = server.runner.server.request_handler

    async def recording(request):
        seen.append((request.method, request.path))
        return await app_way(request)

    server.runner.server.request_handler = recording
    answer_keys_first(server.runner)
    try:
        target = f"{world.url(world.token())}"
        for method in ("GET", "HEAD"):
            assert (await raw_get(server.port, target, method=method))[0] == "HTTP/1.1 200 OK"
        assert (await raw_get(server.port, "/healthz"))[0] == "HTTP/1.1 200 OK"
    finally:
        await server.close()
    assert seen == [("HEAD", world.url(None)), ("GET", "/healthz")]


async def test_an_app_with_more_than_the_edge_middleware_is_refused(key_world):
    world = await key_world()
    app = create_app(world.services.settings, world.services)

    @web.middleware
    async def audit(request, handler):        # would never see a key GET answered ahead of the router
        return await handler(request)

    app.middlewares.append(audit)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        with pytest.raises(RuntimeError, match="other middleware"):
            answer_keys_first(runner)
    finally:
        await runner.cleanup()
