"""A series' sales and refunds for its creator: real signed payment webhooks in, GET /v1/series/{S}/sales out
(checked against the OpenAPI description), only for the owner and the operator; `series sales` says the same."""

from __future__ import annotations

import json

import pytest

from drm.payments.purchases import CHARGEBACK, PURCHASE, REFUND
from server.app import create_app
from server.config import Settings
from server.reference.document import openapi_document
from server.services import Services
from tests.conftest import settings_env
from tests.server.catalog_support import OPERATOR_TOKEN, WEBHOOK_SECRET, Api, payment_body, problem_code
from tests.server.cli.test_cli import series as run_series
from tests.server.reference.openapi_support import ResponseValidator
from tests.support.catalog import add_series

SERIES, OTHER = "sold", "quiet"


@pytest.fixture
def env(tmp_path, s3_store) -> dict[str, str]:
    env = settings_env(tmp_path, s3_store, SERIES_OPERATOR_TOKEN=OPERATOR_TOKEN, SERIES_WEBHOOK_SECRET=WEBHOOK_SECRET)
    with Services.open(Settings.from_env(env)) as services:
        add_series(services, SERIES, creator_id="maker", price_cents=499)
        add_series(services, OTHER, creator_id="maker")
        services.entitlements.grant("friend", SERIES, source="comp", reason="press copy", actor="cli")
    return env


@pytest.fixture
async def api(env, aiohttp_client):
    settings = Settings.from_env(env)
    services = Services.open(settings)
    yield Api(await aiohttp_client(create_app(settings, services)), services)
    services.close()


async def sell(api: Api) -> None:
    """Three sales, one refunded and one charged back, and one payment below the price."""
    for payment_id, viewer in (("pay-a", "ann"), ("pay-b", "bo"), ("pay-c", "cy")):
        assert (await api.webhook(payment_body(PURCHASE, payment_id, viewer, SERIES))).status == 200
    assert (await api.webhook(payment_body(REFUND, "pay-b", "bo", SERIES))).status == 200
    assert (await api.webhook(payment_body(CHARGEBACK, "pay-c", "cy", SERIES))).status == 200
    assert (await api.webhook(payment_body(PURCHASE, "pay-d", "di", SERIES, amount_cents=99))).status == 200


async def test_the_owner_sees_sales_refunds_and_buyers(api):
    await sell(api)
    maker = await api.account("maker", "creator")
    async with api.client.get(f"/v1/series/{SERIES}/sales", headers=maker) as response:
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        body = await response.read()
        ResponseValidator(openapi_document()).check("GET", f"/v1/series/{SERIES}/sales", 200,
                                                    response.headers["Content-Type"], body)
    report = json.loads(body)
    assert report["buyers"] == 1 and report["comps"] == 1 and report["refused_payments"] == 1
    assert report["totals"] == [{"currency": "USD", "sales": 3, "gross_cents": 1497, "refunds": 1,
                                 "refunded_cents": 499, "charge_backs": 1, "charged_back_cents": 499,
                                 "net_cents": 499}]
    kinds = sorted((event["payment_id"], event["kind"]) for event in report["recent"])
    assert kinds == [("pay-a", "sale"), ("pay-b", "refund"), ("pay-b", "sale"), ("pay-c", "charge_back"),
                     ("pay-c", "sale"), ("pay-d", "refused")]
    times = [event["at"] for event in report["recent"]]
    assert times == sorted(times, reverse=True)
    # a series that never sold: an empty report, not an error
    async with api.client.get(f"/v1/series/{OTHER}/sales", headers=maker) as response:
        assert (await response.json()) == {"series_id": OTHER, "buyers": 0, "comps": 0, "refused_payments": 0,
                                           "totals": [], "recent": []}


async def test_only_the_owner_and_the_operator_see_sales(api):
    await sell(api)
    async with api.client.get(f"/v1/series/{SERIES}/sales", headers=api.operator_headers) as response:
        assert response.status == 200 and (await response.json())["buyers"] == 1
    for headers, status, code in ((await api.account("rival", "creator"), 403, "not_series_owner"),
                                  (await api.account("ann", "viewer"), 403, "forbidden"),
                                  ({}, 401, "token_invalid")):
        async with api.client.get(f"/v1/series/{SERIES}/sales", headers=headers) as response:
            assert response.status == status and await problem_code(response) == code
    async with api.client.get("/v1/series/nothing-here/sales", headers=api.operator_headers) as response:
        assert response.status == 404 and await problem_code(response) == "unknown_series"


async def test_the_cli_twin_reports_the_same(api, env):
    await sell(api)
    printed = run_series(env, "sales", SERIES, "--json")
    assert printed.returncode == 0, printed.stderr
    async with api.client.get(f"/v1/series/{SERIES}/sales", headers=api.operator_headers) as response:
        assert json.loads(printed.stdout) == await response.json()
    text = run_series(env, "sales", SERIES)
    assert text.returncode == 0 and "1 buyers now" in text.stdout and "net 4.99" in text.stdout, text.stdout
    unknown = run_series(env, "sales", "nothing-here")
    assert unknown.returncode != 0 and "nothing-here" in unknown.stderr and len(unknown.stderr.splitlines()) == 1
