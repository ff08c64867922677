"""Creators over real HTTP: eligibility verdicts, applications, series limits, field validation, auth."""

from __future__ import annotations

import datetime as dt

import pytest

from drm.catalog.catalog import MAX_EPISODES
from server.app import create_app
from server.services import Services
from tests.server.catalog_support import Api, catalog_settings, problem_code, publish_keys
from tests.support.catalog import TODAY, eligible_facts


@pytest.fixture
async def api(tmp_path, s3_store, aiohttp_client):
    services = Services.open(catalog_settings(tmp_path, s3_store))
    client = await aiohttp_client(create_app(services.settings, services))
    yield Api(client, services)
    services.close()


def years_ago(years: int, days: int = 0) -> str:
    return (dt.date(TODAY.year - years, TODAY.month, min(TODAY.day, 28)) + dt.timedelta(days=days)).isoformat()


# one fact breaking exactly one rule, with the code the verdict must name
ONE_RULE_BROKEN = {
    "too_young": {"birth_date": years_ago(17)},
    "account_too_new": {"account_created_on": (TODAY - dt.timedelta(days=30)).isoformat()},
    "account_private": {"is_private": True},
    "account_political": {"account_type": "political"},
    "too_few_posts": {"public_posts_last_30_days": 2},
    "too_few_followers": {"followers": 9_999},
    "too_few_views": {"views_last_30_days": 999},
    "content_not_original": {"has_original_content": False},
    "not_in_good_standing": {"is_in_good_standing": False},
}


async def record(api: Api, creator_id: str, facts: dict) -> dict:
    response = await api.client.post(f"/v1/creators/{creator_id}/eligibility", json=facts,
                                     headers=api.operator_headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_all_rules_met_is_eligible(api):
    verdict = await record(api, "c1", eligible_facts())
    assert verdict["status"] == "eligible" and verdict["unmet"] == [] and verdict["recorded"]
    assert verdict["creator"]["may_publish"] is True


@pytest.mark.parametrize("code", sorted(ONE_RULE_BROKEN))
async def test_each_rule_alone_makes_the_creator_ineligible(api, code):
    verdict = await record(api, "c1", eligible_facts(**ONE_RULE_BROKEN[code]))
    assert [rule["code"] for rule in verdict["unmet"]] == [code]
    assert verdict["unmet"][0]["message"].endswith(".")
    assert verdict["status"] == "ineligible"
    assert verdict["may_apply_with_premium_content"] is (code == "too_few_followers")


async def test_every_unmet_rule_is_listed_at_once(api):
    broken = {}
    for facts in ONE_RULE_BROKEN.values():
        broken.update(facts)
    broken["account_type"] = "political"
    verdict = await record(api, "c1", eligible_facts(**broken))
    assert {rule["code"] for rule in verdict["unmet"]} == set(ONE_RULE_BROKEN)
    assert verdict["status"] == "ineligible" and not verdict["may_apply_with_premium_content"]


@pytest.mark.parametrize("country, age, unmet", [("US", 18, []), ("KR", 18, ["too_young"]), ("KR", 19, [])])
async def test_south_korea_needs_19(api, country, age, unmet):
    verdict = await record(api, "c1", eligible_facts(country=country, birth_date=years_ago(age, days=-1)))
    assert [rule["code"] for rule in verdict["unmet"]] == unmet


async def test_creator_self_check_is_a_dry_run(api):
    headers = await api.account("c1", "creator")
    response = await api.client.post("/v1/creators/c1/eligibility", json=eligible_facts(), headers=headers)
    assert response.status == 200
    assert (await response.json()) == {"status": "eligible", "unmet": [], "may_apply_with_premium_content": False,
                                       "recorded": False}
    status = await (await api.client.get("/v1/creators/c1/eligibility", headers=headers)).json()
    assert status["status"] == "not_checked" and status["may_publish"] is False
    other = await api.client.post("/v1/creators/c2/eligibility", json=eligible_facts(), headers=headers)
    assert other.status == 403 and await problem_code(other) == "forbidden"


async def test_below_10k_followers_applies_and_waits_for_an_operator(api):
    creator = await api.account("c1", "creator")
    await record(api, "c1", eligible_facts(followers=4_000))
    series = {"series_id": "s1", "title": "Knots", "price_cents": 999, "currency": "USD"}
    refused = await api.client.post("/v1/series", json=series, headers=creator)
    assert refused.status == 403 and await problem_code(refused) == "creator_not_eligible"

    applied = await api.client.post("/v1/creators/c1/application", headers=creator,
                                    json={"premium_content_url": "https://shop.example/c1/course"})
    assert applied.status == 202
    assert (await applied.json())["status"] == "pending_manual_approval"
    pending = await (await api.client.get("/v1/operator/applications", headers=api.operator_headers)).json()
    assert [application["creator_id"] for application in pending["applications"]] == ["c1"]
    still_refused = await api.client.post("/v1/series", json=series, headers=creator)
    assert still_refused.status == 403

    approved = await api.client.post("/v1/operator/creators/c1/decision", headers=api.operator_headers,
                                     json={"approve": True, "reason": "sold a course on Gumroad"})
    assert (await approved.json())["status"] == "approved"
    created = await api.client.post("/v1/series", json=series, headers=creator)
    assert created.status == 201, await created.text()
    again = await api.client.post("/v1/operator/creators/c1/decision", headers=api.operator_headers,
                                  json={"approve": False})
    assert again.status == 409 and await problem_code(again) == "application_refused"


async def test_an_application_cannot_make_up_for_other_rules(api):
    creator = await api.account("c1", "creator")
    await record(api, "c1", eligible_facts(followers=4_000, is_in_good_standing=False))
    response = await api.client.post("/v1/creators/c1/application", headers=creator,
                                     json={"premium_content_url": "https://shop.example/c1"})
    assert response.status == 409 and await problem_code(response) == "application_refused"
    assert "not_in_good_standing" in (await response.json(content_type=None))["detail"]


async def test_rejected_application_cannot_publish(api):
    creator = await api.account("c1", "creator")
    await record(api, "c1", eligible_facts(followers=4_000, premium_content_url="https://shop.example/c1"))
    rejected = await api.client.post("/v1/operator/creators/c1/decision", headers=api.operator_headers,
                                     json={"approve": False, "reason": "no sales shown"})
    assert (await rejected.json())["status"] == "rejected"
    response = await api.client.post("/v1/series", headers=creator,
                                     json={"series_id": "s1", "title": "T", "price_cents": 100, "currency": "USD"})
    assert response.status == 403


@pytest.fixture
async def creator(api):
    await record(api, "c1", eligible_facts())
    return await api.account("c1", "creator")


@pytest.mark.parametrize("price, status", [(99, 422), (100, 201), (19_000, 201), (19_001, 422), (4.99, 422),
                                           ("499", 422), (True, 422)])
async def test_price_must_be_integer_cents_from_1_to_190(api, creator, price, status):
    response = await api.client.post("/v1/series", headers=creator,
                                     json={"series_id": "s1", "title": "T", "price_cents": price, "currency": "USD"})
    assert response.status == status, await response.text()
    if status == 422:
        body = await response.json(content_type=None)
        assert body["code"] == "invalid_field" and "price_cents" in body["detail"]
        assert (await api.client.get("/v1/series/s1")).status == 404   # nothing half-written


@pytest.mark.parametrize("body, field", [
    ({"series_id": "../etc", "title": "T", "price_cents": 500, "currency": "USD"}, "series_id"),
    ({"series_id": "s1", "title": "", "price_cents": 500, "currency": "USD"}, "title"),
    ({"series_id": "s1", "title": "T" * 201, "price_cents": 500, "currency": "USD"}, "title"),
    ({"series_id": "s1", "title": "T", "price_cents": 500, "currency": "usd"}, "currency"),
    ({"series_id": "s1", "title": "T", "price_cents": 500}, "currency"),
    ({"series_id": "s1", "title": "T", "price_cents": 500, "currency": "USD", "creator_id": "c2"}, "creator_id"),
])
async def test_series_fields_are_validated(api, creator, body, field):
    response = await api.client.post("/v1/series", json=body, headers=creator)
    assert response.status == 422
    assert (await response.json(content_type=None))["detail"].startswith(field)


async def test_malformed_and_oversized_bodies(api, creator):
    not_json = await api.client.post("/v1/series", data=b"{nope", headers={**creator, "Content-Type": "application/json"})
    assert not_json.status == 400 and await problem_code(not_json) == "malformed_body"
    a_list = await api.client.post("/v1/series", json=[1, 2], headers=creator)
    assert a_list.status == 400
    huge = await api.client.post("/v1/series", headers=creator,
                                 json={"series_id": "s1", "title": "T" * 20_000, "price_cents": 500, "currency": "USD"})
    assert huge.status == 413 and await problem_code(huge) == "body_too_large"


async def test_series_update_by_owner_only_and_all_or_nothing(api, creator):
    await api.client.post("/v1/series", headers=creator,
                          json={"series_id": "s1", "title": "Knots", "price_cents": 500, "currency": "USD"})
    half_bad = await api.client.patch("/v1/series/s1", headers=creator, json={"title": "New", "price_cents": 50})
    assert half_bad.status == 422
    assert (await (await api.client.get("/v1/series/s1")).json())["title"] == "Knots"
    updated = await api.client.patch("/v1/series/s1", headers=creator, json={"price_cents": 1500, "currency": "EUR"})
    assert (await updated.json())["price_cents"] == 1500
    await record(api, "c2", eligible_facts())
    other = await api.client.patch("/v1/series/s1", headers=await api.account("c2", "creator"), json={"title": "Mine"})
    assert other.status == 403 and await problem_code(other) == "not_series_owner"
    viewer = await api.client.patch("/v1/series/s1", headers=await api.account("v1", "viewer"), json={"title": "X"})
    assert viewer.status == 403
    unknown = await api.client.patch("/v1/series/nope", headers=creator, json={"title": "X"})
    assert unknown.status == 404 and await problem_code(unknown) == "unknown_series"
    duplicate = await api.client.post("/v1/series", headers=creator,
                                      json={"series_id": "s1", "title": "Again", "price_cents": 500, "currency": "USD"})
    assert duplicate.status == 409 and await problem_code(duplicate) == "series_exists"


async def test_an_81st_episode_is_refused_by_the_catalog(api, creator):
    await api.client.post("/v1/series", headers=creator,
                          json={"series_id": "s1", "title": "Long", "price_cents": 500, "currency": "USD"})
    for number in range(1, MAX_EPISODES + 1):
        api.services.catalog.reserve_episode("s1", str(number), duration_s=45.0)
    from drm.errors import EpisodeLimitReached
    with pytest.raises(EpisodeLimitReached):
        api.services.catalog.reserve_episode("s1", "81", duration_s=45.0)
    assert api.services.catalog.reserve_episode("s1", "80", duration_s=50.0) is False   # a new version is fine
    assert len(api.services.catalog.list_episodes("s1", published_only=False)) == MAX_EPISODES


async def test_free_preview_flag_is_set_by_the_owner(api, creator):
    await api.client.post("/v1/series", headers=creator,
                          json={"series_id": "s1", "title": "T", "price_cents": 500, "currency": "USD"})
    publish_keys(api.services, "s1", "e1")
    response = await api.client.patch("/v1/series/s1/episodes/e1", headers=creator, json={"is_free_preview": True})
    assert response.status == 200 and (await response.json())["is_free_preview"] is True
    wrong_type = await api.client.patch("/v1/series/s1/episodes/e1", headers=creator, json={"is_free_preview": "yes"})
    assert wrong_type.status == 422
    missing = await api.client.patch("/v1/series/s1/episodes/e9", headers=creator, json={"is_free_preview": True})
    assert missing.status == 404 and await problem_code(missing) == "unknown_episode"
    listing = await (await api.client.get("/v1/series/s1")).json()
    shown = [{name: episode[name] for name in ("episode_id", "duration_s", "is_free_preview", "version", "status")}
             for episode in listing["episodes"]]
    assert shown == [{"episode_id": "e1", "duration_s": 60.0, "is_free_preview": True, "version": 1, "status": "ready"}]


@pytest.mark.parametrize("headers, status, code", [
    ({}, 401, "token_invalid"),
    ({"Authorization": "Bearer nonsense"}, 401, "token_invalid"),
])
async def test_creator_routes_need_an_account_token(api, headers, status, code):
    response = await api.client.post("/v1/series", headers=headers,
                                     json={"series_id": "s1", "title": "T", "price_cents": 500, "currency": "USD"})
    assert response.status == status and await problem_code(response) == code


async def test_a_playback_token_is_not_an_account_token(api, creator):
    playback = api.services.tokens.mint("c1", "s1")
    response = await api.client.post("/v1/series", headers={"Authorization": f"Bearer {playback}"},
                                     json={"series_id": "s1", "title": "T", "price_cents": 500, "currency": "USD"})
    assert response.status == 401


async def test_operator_routes_refuse_a_wrong_token(api):
    response = await api.client.get("/v1/operator/applications", headers={"Authorization": "Bearer " + "x" * 40})
    assert response.status == 401 and await problem_code(response) == "auth_required"


@pytest.mark.parametrize("body, field", [
    ({"subject": "../c1", "role": "creator"}, "subject"),
    ({"subject": "c1", "role": "admin"}, "role"),
    ({"subject": "c1", "role": "creator", "ttl_s": 0}, "ttl_s"),
    ({"subject": "c1", "role": "creator", "ttl_s": 31 * 24 * 3600}, "ttl_s"),
])
async def test_a_bad_account_token_request_is_a_422_naming_the_field(api, body, field):
    response = await api.client.post("/v1/operator/account-tokens", json=body, headers=api.operator_headers)
    assert response.status == 422 and await problem_code(response) == "invalid_field"
    assert (await response.json(content_type=None))["detail"].startswith(f"{field}: ")
