"""The OpenAPI description stays true: every route the app registers is described and nothing else is,
every write takes Idempotency-Key, every $ref resolves, and real responses of a walk through the API
validate against the schemas the description gives them."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from server.app import create_app
from server.catalog.idempotency import HEADER as IDEMPOTENCY_HEADER
from server.config import Settings
from server.reference.document import openapi_document
from server.services import Services
from tests.server.catalog_support import Api, OPERATOR_TOKEN, WEBHOOK_SECRET, payment_body, publish_keys
from tests.server.reference.openapi_support import (
    ResponseValidator,
    dangling_refs,
    described_routes,
    registered_routes,
)
from tests.support.catalog import add_series, eligible_facts
from tests.support.jobs import AUTH as INGEST_AUTH
from tests.support.jobs import ingest_env


def app_settings(tmp_path, s3_store) -> Settings:
    return Settings.from_env(ingest_env(tmp_path, s3_store, SERIES_OPERATOR_TOKEN=OPERATOR_TOKEN,
                                        SERIES_WEBHOOK_SECRET=WEBHOOK_SECRET, SERIES_TEST_VIEWER_IDS="qa-viewer"))


def undescribed(app: web.Application, document: dict) -> tuple[set, set]:
    """(routes the app has that the document does not describe, operations described that no route has)."""
    registered, described = registered_routes(app), described_routes(document)
    return registered - described, described - registered


@pytest.fixture
def app(tmp_path, s3_store):
    return create_app(app_settings(tmp_path, s3_store))


def test_every_route_is_described_and_nothing_else(app):
    missing, extra = undescribed(app, openapi_document())
    assert not missing, f"routes without a description in server/reference/openapi/: {sorted(missing)}"
    assert not extra, f"described operations no route serves: {sorted(extra)}"
    assert len(registered_routes(app)) >= 45


def test_a_route_added_without_a_description_fails_the_check(app):
    async def newcomer(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_get("/v1/series/{series_id}/trailer", newcomer)
    missing, _ = undescribed(app, openapi_document())
    assert missing == {("GET", "/v1/series/{series_id}/trailer")}


def test_every_write_that_takes_an_idempotency_key_says_so(app):
    document = openapi_document()
    for route in app.router.routes():
        if not getattr(route.handler, "is_idempotent", False):
            continue
        operation = document["paths"][route.resource.canonical][route.method.lower()]
        names = {parameter.get("name") or parameter["$ref"].rsplit("/", 1)[-1]
                 for parameter in operation.get("parameters", [])}
        assert {IDEMPOTENCY_HEADER, "IdempotencyKey"} & names, f"{route.method} {route.resource.canonical}"


def test_the_document_is_whole():
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    assert dangling_refs(document) == []
    operation_ids = [op["operationId"] for item in document["paths"].values() for key, op in item.items()
                     if isinstance(op, dict) and "operationId" in op]
    assert len(operation_ids) == len(set(operation_ids))
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                assert "default" in operation["responses"] or method == "get", (method, path)
                assert operation.get("summary") and operation.get("tags"), (method, path)


async def test_openapi_json_is_served(aiohttp_client, app):
    client = await aiohttp_client(app)
    response = await client.get("/openapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert (await response.json())["paths"].keys() == openapi_document()["paths"].keys()


async def test_real_responses_match_their_schemas(aiohttp_client, tmp_path, s3_store):
    """A walk through every kind of answer the catalog gives, each validated against the description."""
    settings = app_settings(tmp_path, s3_store)
    services = Services.open(settings)
    services.store.ensure_bucket()
    client = await aiohttp_client(create_app(settings, services))
    api = Api(client, services)
    validator = ResponseValidator(openapi_document())
    checked: set[tuple[str, str, int]] = set()

    async def call(method: str, path: str, *, expect: int, **kwargs) -> dict | None:
        response = await client.request(method, path, allow_redirects=False, **kwargs)
        body = await response.read()
        assert response.status == expect, (method, path, response.status, body[:300])
        template = validator.check(method, path, response.status, response.headers.get("Content-Type", ""), body)
        checked.add((method, template, response.status))
        return json.loads(body) if body and response.content_type.endswith("json") else None

    try:
        operator = api.operator_headers
        creator, viewer = await api.account("creator-1", "creator"), await api.account("v1", "viewer")
        await call("POST", "/v1/creators/creator-1/eligibility", json=eligible_facts(), headers=operator, expect=200)
        await call("GET", "/v1/creators/creator-1/eligibility", headers=creator, expect=200)
        await call("POST", "/v1/series", json={"series_id": "s1", "title": "Knots", "price_cents": 499,
                                               "currency": "USD", "description": "How to tie them"},
                   headers={**creator, "Idempotency-Key": "create-s1"}, expect=201)
        await call("POST", "/v1/series", json={"series_id": "s1", "title": "Knots", "price_cents": 499,
                                               "currency": "USD", "description": "How to tie them"},
                   headers={**creator, "Idempotency-Key": "create-s1"}, expect=201)     # replayed
        await call("POST", "/v1/series", json={"series_id": "s1", "title": "Other", "price_cents": 499,
                                               "currency": "USD"},
                   headers={**creator, "Idempotency-Key": "create-s1"}, expect=422)
        await call("POST", "/v1/series/s1/episodes", json={"episode_id": "draft", "title": "Coming soon"},
                   headers=creator, expect=201)
        for episode_id in ("3", "1", "2"):
            publish_keys(services, "s1", episode_id)
        await call("PUT", "/v1/series/s1/order", json={"episode_ids": ["1", "2", "3", "draft"]}, headers=creator,
                   expect=200)
        await call("PATCH", "/v1/series/s1/episodes/2", json={"title": "The bowline", "position": 1},
                   headers=creator, expect=200)
        await call("POST", "/v1/series/s1/episodes/3/unpublish", headers=creator, expect=200)
        await call("POST", "/v1/series/s1/episodes/3/publish", headers=creator, expect=200)
        await call("PATCH", "/v1/series/s1", json={"cover_episode_id": "1", "price_cents": 599}, headers=creator,
                   expect=200)
        await call("GET", "/v1/series", expect=200)
        await call("GET", "/v1/series?creator_id=creator-1&status=published,draft&limit=1", headers=creator,
                   expect=200)
        await call("GET", "/v1/series/s1", expect=200)
        await call("GET", "/v1/series/s1", headers=creator, expect=200)
        await call("GET", "/v1/series/s1/episodes", expect=200)
        await call("GET", "/v1/series/s1/episodes?limit=2", headers=creator, expect=200)
        await call("GET", "/v1/series/s1/episodes/1", expect=200)
        await call("GET", "/v1/series/s1/episodes/draft", expect=404)
        await call("GET", "/v1/series/s1/paywall?ref=video-12", headers=viewer, expect=200)
        await call("GET", "/v1/series/s1/purchase-link?ref=profile", headers=creator, expect=200)
        await call("GET", "/buy/s1?ref=profile", expect=303)
        await call("POST", "/v1/series/s1/episodes/1/playback", headers=viewer, expect=403)
        response = await api.webhook(payment_body("payment.succeeded", "p1", "v1", "s1", amount_cents=599))
        assert response.status == 200
        await call("POST", "/v1/series/s1/episodes/1/playback", headers=viewer, expect=200)
        await call("POST", "/v1/series/s1/episodes/1/progress", json={"position_s": 12.5}, headers=viewer, expect=200)
        await call("GET", "/v1/me/library", headers=viewer, expect=200)
        await call("GET", "/v1/me/entitlements", headers=viewer, expect=200)
        await call("DELETE", "/v1/series/s1", headers=creator, expect=409)
        await call("DELETE", "/v1/series/s1/episodes/draft", headers=creator, expect=200)
        await call("POST", "/v1/series/s1/unpublish", headers=creator, expect=200)
        await call("POST", "/v1/series/s1/publish", headers=creator, expect=200)
        add_series(services, "s2")
        await call("DELETE", "/v1/series/s2", headers=operator, expect=200)
        await call("POST", "/v1/series/s1/archive", headers=creator, expect=200)
        await call("POST", "/v1/operator/entitlements", json={"viewer_id": "qa-viewer", "series_id": "s1",
                                                                "source": "comp"}, headers=operator, expect=201)
        await call("POST", "/v1/operator/entitlements/revoke", json={"viewer_id": "qa-viewer", "series_id": "s1",
                                                                       "reason": "test over"},
                   headers=operator, expect=200)
        await call("GET", "/v1/operator/entitlements/audit?series_id=s1", headers=operator, expect=200)
        await call("GET", "/v1/operator/applications", headers=operator, expect=200)
        await call("GET", "/v1/jobs", headers=INGEST_AUTH, expect=200)
        await call("GET", "/healthz", expect=200)
        await call("GET", "/openapi.json", expect=200)
        await call("GET", "/v1/series/nope", expect=404)
        await call("PATCH", "/v1/series/s1", json={"price_cents": 5}, headers=creator, expect=422)
    finally:
        await client.close()
        services.close()
    assert len(checked) >= 35
