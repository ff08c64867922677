"""CORS for configured player origins, security headers on every response, settings that guard the edge."""

from __future__ import annotations

import pytest

from server.config import Settings, SettingsError
from tests.conftest import settings_env

PLAYER = "https://player.example"
OTHER = "https://evil.example"


async def test_an_allowed_origin_is_reflected_with_credentials(key_world):
    world = await key_world(CORS_ORIGINS=f"{PLAYER}, https://other-player.example")
    headers = {"Origin": PLAYER, "Authorization": f"Bearer {world.token()}"}
    async with world.client.get(world.url(None), headers=headers) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == PLAYER
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert "Origin" in response.headers.getall("Vary")
        assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
    async with world.client.get(world.url("not-a-token"), headers={"Origin": PLAYER}) as response:
        assert response.status == 401                # errors are readable by the player too
        assert response.headers["Access-Control-Allow-Origin"] == PLAYER


async def test_a_disallowed_origin_gets_no_cors_headers(key_world):
    world = await key_world(CORS_ORIGINS=PLAYER)
    async with world.client.get(world.url(world.token()), headers={"Origin": OTHER}) as response:
        assert response.status == 200                # the server answers; the browser withholds it
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert "Origin" in response.headers.getall("Vary")


async def test_preflight_allows_the_authorization_header_for_allowed_origins_only(key_world):
    world = await key_world(CORS_ORIGINS=PLAYER)
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    async with world.client.options(world.url(None), headers={"Origin": PLAYER, **preflight}) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == PLAYER
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
        assert "GET" in response.headers["Access-Control-Allow-Methods"]
        assert int(response.headers["Access-Control-Max-Age"]) > 0
    async with world.client.options(world.url(None), headers={"Origin": OTHER, **preflight}) as response:
        assert response.status == 403
        assert "Access-Control-Allow-Origin" not in response.headers
    unsafe = {"Origin": PLAYER, "Access-Control-Request-Method": "PROPFIND"}     # PUT and DELETE are the API's
    async with world.client.options(world.url(None), headers=unsafe) as response:
        assert response.status == 403


async def test_the_local_default_allows_any_origin_without_credentials(key_world):
    world = await key_world()
    async with world.client.get(world.url(world.token()), headers={"Origin": OTHER}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("path", ["/v1/keys/{key}?token={token}", "/v1/keys/{key}", "/healthz", "/metrics",
                                  "/no/such/route", "/v1/series/s1/episodes/1/master.m3u8?token={token}"])
async def test_security_headers_on_every_response(key_world, path):
    world = await key_world()
    async with world.client.get(path.format(key=world.key.key_id, token=world.token())) as response:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "aiohttp" not in response.headers["Server"].lower()
        assert "python" not in response.headers["Server"].lower()


def test_edge_settings_are_read_and_bad_values_name_the_variable(tmp_path, s3_store):
    env = settings_env(tmp_path, s3_store, SERIES_CORS_ORIGINS="https://a.example/, http://b.example:8080",
                       SERIES_MAX_REQUEST_BYTES="4096", SERIES_TRUSTED_PROXIES="10.0.0.0/8, ::1")
    http = Settings.from_env(env).http
    assert http.cors_origins == ("https://a.example", "http://b.example:8080")
    assert http.max_request_bytes == 4096 and len(http.trusted_proxies) == 2
    with pytest.raises(SettingsError, match="SERIES_CORS_ORIGINS"):
        Settings.from_env(settings_env(tmp_path, s3_store, SERIES_CORS_ORIGINS="player.example"))
    with pytest.raises(SettingsError, match="SERIES_MAX_REQUEST_BYTES has value 'lots'"):
        Settings.from_env(settings_env(tmp_path, s3_store, SERIES_MAX_REQUEST_BYTES="lots"))


async def test_request_bodies_over_the_configured_size_get_413(tmp_path, s3_store, aiohttp_client):
    from aiohttp import web

    from server.app import create_app
    from server.services import Services
    from tests.conftest import settings_for

    settings = settings_for(tmp_path, s3_store, SERIES_MAX_REQUEST_BYTES="1000")
    services = Services.open(settings)
    try:
        app = create_app(settings, services)

        async def echo_size(request: web.Request) -> web.Response:    # any route that reads its body
            return web.json_response({"size": len(await request.read())})

        app.router.add_post("/echo", echo_size)
        client = await aiohttp_client(app)
        async with client.post("/echo", data=b"x" * 1000) as response:
            assert response.status == 200 and (await response.json())["size"] == 1000
        async with client.post("/echo", data=b"x" * 1001) as response:
            assert response.status == 413
            assert response.content_type == "application/problem+json"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        await client.close()
    finally:
        services.close()


async def test_an_error_after_a_streamed_answer_started_drops_the_connection_instead_of_appending_a_problem(
        tmp_path, s3_store, aiohttp_server):
    """The edge turns errors into problem answers, but not once a streamed body is on the wire: a second
    response written into the first one's body would corrupt it for the player."""
    import asyncio

    from aiohttp import web

    from server.app import create_app
    from server.services import Services
    from tests.conftest import settings_for

    settings = settings_for(tmp_path, s3_store)
    services = Services.open(settings)
    try:
        app = create_app(settings, services)

        async def half_streamed(request: web.Request) -> web.StreamResponse:   # like a store failing mid-segment
            response = web.StreamResponse(headers={"Content-Length": "100"})
            await response.prepare(request)
            await response.write(b"x" * 10)
            raise RuntimeError("the store went away")

        app.router.add_get("/half", half_streamed)
        server = await aiohttp_server(app)
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"GET /half HTTP/1.1\r\nHost: test\r\n\r\n")
        await writer.drain()
        received = await asyncio.wait_for(reader.read(), timeout=10)    # until the server closes
        writer.close()
        assert received.startswith(b"HTTP/1.1 200")
        assert received.count(b"HTTP/1.1") == 1 and b"problem+json" not in received
        await server.close()
    finally:
        services.close()


async def test_a_wrong_method_gets_a_problem_that_still_names_the_allowed_ones(key_world):
    world = await key_world()
    async with world.client.post(world.url(world.token())) as response:
        assert response.status == 405
        assert response.content_type == "application/problem+json"
        assert "GET" in response.headers["Allow"]
