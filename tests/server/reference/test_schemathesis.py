"""Schemathesis over every operation of the description, against a running service with a series, episodes,
a key and a buyer: requests generated from the schemas (valid and not), sent with the right credentials,
never answered with a 5xx, and every answer conforming to what the description says (status, content type,
body schema). Bounded: a few examples per operation, the whole run within about a minute here.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from aiohttp import web

from server.app import create_app, start_runner
from server.reference.document import openapi_document
from server.services import Services
from tests.server.catalog_support import OPERATOR_TOKEN, WEBHOOK_SECRET, publish_keys
from tests.support.catalog import add_series
from tests.support.jobs import INGEST_TOKEN, ingest_env
from tests.support.s3_server import free_port

EXAMPLES_PER_OPERATION = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_dict(openapi_document())
# a tus chunk is raw bytes, as application/octet-stream is
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@pytest.fixture(scope="module")
def service(tmp_path_factory, s3_store):
    """(base URL, credentials by security scheme) of a running service with content to find."""
    from server.config import Settings

    settings = Settings.from_env(ingest_env(
        tmp_path_factory.mktemp("schemathesis"), s3_store, SERIES_OPERATOR_TOKEN=OPERATOR_TOKEN,
        SERIES_WEBHOOK_SECRET=WEBHOOK_SECRET, SERIES_UPLOADS_BUCKET=f"u-{uuid.uuid4().hex[:12]}",
        SERIES_MAX_UPLOAD_BYTES="65536", SERIES_AUTH_FAILURES_BURST="1000000", SERIES_RATE_IP_BURST="1000000",
        SERIES_RATE_VIEWER_BURST="1000000", SERIES_PROGRESS_BURST="1000000"))
    services = Services.open(settings)
    services.store.ensure_bucket()
    add_series(services, "s1", creator_id="creator-1")
    for episode_id in ("1", "2"):
        publish_keys(services, "s1", episode_id)
    services.entitlements.grant("v1", "s1")
    credentials = {
        "operator": OPERATOR_TOKEN, "ingest": INGEST_TOKEN, "metrics": None,
        "account": services.tokens.mint_account("creator-1", "creator"),
        "viewer": services.tokens.mint_account("v1", "viewer"),
        "playback": services.tokens.mint("v1", "s1"),
    }
    app = create_app(settings, services)
    loop = asyncio.new_event_loop()
    port = free_port()
    runner = loop.run_until_complete(start_runner(app))
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, name="schemathesis-service", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", credentials
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()
    services.close()


def headers_for(case, credentials: dict) -> dict[str, str]:
    """The credentials the operation's first security requirement names (anonymous when it allows that)."""
    requirements = case.operation.definition.raw.get("security", [{}])
    first = next(iter(requirements[0]), None) if requirements else None
    if first in (None, "paymentSignature", "metrics"):
        return {}
    if first == "playback":
        return {"Authorization": f"Bearer {credentials['playback']}"}
    tags = case.operation.definition.raw.get("tags", [])
    if first == "account" and "viewers" in tags:
        return {"Authorization": f"Bearer {credentials['viewer']}"}
    return {"Authorization": f"Bearer {credentials[first]}"}


# One plain pytest parameter per operation (not schema.parametrize(), whose operations pytest-xdist saw as a
# single test and ran only the first of): each operation is its own test wherever it runs.
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=[operation.label for operation in OPERATIONS])
def test_every_operation_conforms(operation, service):
    base_url, credentials = service

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def conforms(case):
        case.call_and_validate(base_url=base_url, headers=headers_for(case, credentials), checks=CHECKS, timeout=30)

    conforms()
