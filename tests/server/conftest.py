"""Fixtures for server tests: a key server with real parts and no media (keys made through KeyStore,
viewers granted in the database: SQLite, or PostgreSQL with DATABASE_URL=...), and a loopback receiver
for job webhooks."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from drm.keystore import ContentKey
from server.app import create_app
from server.config import Settings
from server.edge.accesslog import access_log_options
from server.jobs.job_store import JobStore
from server.keys.endpoint import answer_keys_first
from server.services import Services
from tests.conftest import settings_for

SERIES = "s1"
BUYER, STRANGER = "alice", "bob"


@dataclass
class KeyWorld:
    client: object          # pytest-aiohttp TestClient on a real loopback socket
    services: Services
    key: ContentKey

    def url(self, token: str | None, key_id: str | None = None) -> str:
        path = f"/v1/keys/{key_id or self.key.key_id}"
        return f"{path}?token={token}" if token else path

    def token(self, viewer_id: str = BUYER, series_id: str = SERIES) -> str:
        return self.services.tokens.mint(viewer_id, series_id)


@pytest.fixture
def engine_overrides(engine, request) -> dict[str, str]:
    """key_world() overrides that put the world on the test's engine (tests that ask run on both)."""
    return {} if engine == "sqlite" else {"DATABASE_URL": request.getfixturevalue("postgres_url")}


@pytest.fixture
async def key_world(tmp_path, s3_store, aiohttp_client):
    """Factory: await key_world(**SERIES_* overrides without the prefix) → KeyWorld."""
    opened = []

    async def make(**overrides: str) -> KeyWorld:
        settings = settings_for(tmp_path / f"w{len(opened)}", s3_store,
                                **{f"SERIES_{name}": value for name, value in overrides.items()})
        services = Services.open(settings)
        opened.append((services, None))
        services.store.ensure_bucket()
        key = services.keystore.create_keys(SERIES, "1", 1)[0]
        services.entitlements.grant(BUYER, SERIES)
        # started here because pytest-aiohttp's server_kwargs never reach the AppRunner (aiohttp 3.14)
        server = TestServer(create_app(settings, services))
        await server.start_server(**access_log_options())
        answer_keys_first(server.runner)       # as the service runs: key GETs ahead of the router
        client = await aiohttp_client(server)
        opened[-1] = (services, client)
        return KeyWorld(client=client, services=services, key=key)

    yield make
    for services, client in opened:
        if client is not None:
            await client.close()     # the app first: its background refresh uses the database
        services.close()


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


@pytest.fixture
def jobs(tmp_path):
    """A job table of its own in a SQLite file (tmp_path / "series.db"), quick to report a locked database."""
    store = JobStore.open(tmp_path / "series.db", busy_timeout_ms=100)
    yield store
    store.close()


@pytest.fixture
def job_store(db_target):
    """A job table on the test's engine: tests asking for it run on SQLite and on PostgreSQL."""
    store = JobStore.open(db_target, busy_timeout_ms=100)
    yield store
    store.close()


@pytest.fixture
async def served(aiohttp_client):
    """Factory: await served(env) → (client, services) of a real service on a loopback socket, on the
    database and store `env` (SERIES_* variables) names."""
    opened = []

    async def make(env: dict[str, str]):
        services = Services.open(Settings.from_env(env))
        opened.append(services)
        client = await aiohttp_client(TestServer(create_app(services.settings, services)))
        return client, services

    yield make
    for services in opened:
        services.close()
