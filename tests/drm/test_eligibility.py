import datetime as dt

import pytest

from drm.catalog.eligibility import APPROVED, ELIGIBLE, INELIGIBLE, PENDING, CreatorProfile, CreatorRegistry, evaluate
from drm.errors import ApplicationRefused, CreatorNotEligible, InvalidField
from tests.drm.fixtures import FakeClock
from tests.support.catalog import eligible_facts

TODAY = dt.date(2026, 3, 1)


def profile(**overrides):
    return CreatorProfile.from_json("c1", eligible_facts(**overrides))


@pytest.mark.parametrize("birth_date, country, ok", [
    ("2008-03-01", "US", True), ("2008-03-02", "US", False),      # 18th birthday is the day
    ("2007-03-01", "KR", True), ("2007-03-02", "KR", False),
])
def test_age_boundaries(birth_date, country, ok):
    verdict = evaluate(profile(birth_date=birth_date, country=country), TODAY)
    assert (verdict.status == ELIGIBLE) is ok


def test_account_must_be_older_than_30_days():
    assert evaluate(profile(account_created_on="2026-01-29"), TODAY).status == ELIGIBLE     # 31 days
    assert evaluate(profile(account_created_on="2026-01-30"), TODAY).unmet[0].code == "account_too_new"


def test_thresholds_are_inclusive():
    facts = {"public_posts_last_30_days": 3, "followers": 10_000, "views_last_30_days": 1_000}
    assert evaluate(profile(**facts), TODAY).status == ELIGIBLE


def test_pending_needs_a_link_and_only_the_follower_gap():
    assert evaluate(profile(followers=10), TODAY).status == INELIGIBLE
    assert evaluate(profile(followers=10, premium_content_url="https://x.example/a"), TODAY).status == PENDING
    both = profile(followers=10, views_last_30_days=1, premium_content_url="https://x.example/a")
    assert evaluate(both, TODAY).status == INELIGIBLE


@pytest.mark.parametrize("field, value", [
    ("followers", -1), ("followers", "many"), ("is_private", 0), ("birth_date", "yesterday"),
    ("country", "Korea"), ("account_type", "private"), ("premium_content_url", "ftp://x"), ("unknown", 1),
])
def test_profile_fields_are_checked(field, value):
    with pytest.raises(InvalidField) as caught:
        profile(**{field: value})
    assert caught.value.field == field


def test_registry_application_flow(db):
    registry = CreatorRegistry(db, clock=FakeClock(1_770_000_000.0))
    with pytest.raises(CreatorNotEligible):
        registry.require_may_publish("c1")
    with pytest.raises(ApplicationRefused):
        registry.apply("c1", "https://x.example/a")          # nothing recorded yet
    registry.record(profile(followers=500))
    assert registry.apply("c1", "https://x.example/a").status == PENDING
    approved = registry.decide("c1", approve=True, operator="operator:ann", reason="ok")
    assert (approved.status, approved.decided_by) == (APPROVED, "operator:ann")
    registry.require_may_publish("c1")
    registry.record(profile(followers=900))                   # fresh facts, still only short of followers
    assert registry.get("c1").status == APPROVED
    registry.record(profile(followers=900, is_in_good_standing=False))
    assert registry.get("c1").status == INELIGIBLE            # a violation ends the approval


def test_a_rejected_creator_applying_again_is_told_of_the_rejection(db):
    registry = CreatorRegistry(db, clock=FakeClock(1_770_000_000.0))
    registry.record(profile(followers=500))
    registry.apply("c1", "https://x.example/a")
    registry.decide("c1", approve=False, operator="operator:ann", reason="link sells nothing")
    with pytest.raises(ApplicationRefused, match="rejected by operator:ann: link sells nothing"):
        registry.apply("c1", "https://x.example/b")
    assert registry.get("c1").premium_content_url == "https://x.example/a"     # nothing stored


def test_fresh_facts_without_a_link_keep_a_pending_application(db):
    registry = CreatorRegistry(db, clock=FakeClock(1_770_000_000.0))
    registry.record(profile(followers=500))
    registry.apply("c1", "https://x.example/a")
    verdict, status = registry.record(profile(followers=700))    # the platform's facts carry no link
    assert (verdict.status, status.status) == (PENDING, PENDING)
    assert status.premium_content_url == "https://x.example/a"
    _, changed = registry.record(profile(followers=700, premium_content_url="https://y.example/b"))
    assert changed.premium_content_url == "https://y.example/b"  # a link in the facts still wins


def test_a_refused_application_stores_nothing(db):
    clock = FakeClock(1_770_000_000.0)
    registry = CreatorRegistry(db, clock=clock)
    registry.record(profile(followers=500, views_last_30_days=10))   # short of views too: may not apply
    before = registry.get("c1")
    clock.now += 60
    with pytest.raises(ApplicationRefused, match="too_few_views"):
        registry.apply("c1", "https://x.example/a")
    assert registry.get("c1") == before                          # same status, link and updated_at
