"""The watermark session record on both engines: one row per session and version, the viewer's entitlement
(and its payment) as it was at the first fetch, kept when sessions lapse; and the series' watermark flag."""

import pytest

from drm.access.entitlements import EntitlementStore
from drm.access.sessions import PlaybackSessions
from drm.access.watermark_sessions import FREE_PREVIEW, WatermarkSessions
from drm.catalog.catalog import SqlCatalog
from drm.errors import InvalidField, InvalidId
from tests.drm.fixtures import FakeClock

OLD, NEW = "0123456789abcdef", "fedcba9876543210"     # secret ids (server/config/watermark.py secret_id)


@pytest.fixture
def clock():
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def record(db, clock):
    return WatermarkSessions(db, clock=clock)


def test_the_first_fetch_is_recorded_once_with_the_payment_behind_the_access(db, record, clock):
    EntitlementStore(db).grant("buyer", "s1", source="purchase", reference="pay_123")
    assert record.record(series_id="s1", episode_id="e1", version=2, session_id="sid-a", viewer_id="buyer",
                         secret_id=OLD) == OLD
    clock.advance(30)
    # the same session again (another rendition, a refresh, after the secret was rotated): nothing new, the
    # first time and the first secret are kept: the session plays on with the sequence it started with
    assert record.record(series_id="s1", episode_id="e1", version=2, session_id="sid-a", viewer_id="buyer",
                         secret_id=NEW) == OLD
    [row] = record.sessions_of("s1", "e1")
    assert (row.viewer_id, row.session_id, row.version, row.source, row.payment_id, row.secret_id) == (
        "buyer", "sid-a", 2, "purchase", "pay_123", OLD)
    assert row.fetched_at == 1_700_000_000.0
    # a new version of the episode is new evidence: its reference differs
    assert record.record(series_id="s1", episode_id="e1", version=3, session_id="sid-a", viewer_id="buyer",
                         secret_id=NEW) == NEW
    assert [r.version for r in record.sessions_of("s1", "e1")] == [2, 3]
    assert [r.version for r in record.sessions_of("s1", "e1", version=3)] == [3]
    record.record(series_id="s2", episode_id="e9", version=1, session_id="sid-b", viewer_id="buyer", secret_id=NEW)
    assert record.recorded_versions() == [("s1", "e1", 3), ("s1", "e1", 2), ("s2", "e9", 1)]
    assert record.recorded_versions("s1", "e1") == [("s1", "e1", 3), ("s1", "e1", 2)]
    assert record.recorded_versions("s2") == [("s2", "e9", 1)]


def test_a_comp_and_a_free_preview_are_recorded_for_what_they_are(db, record):
    EntitlementStore(db).grant("friend", "s1", source="comp")
    record.record(series_id="s1", episode_id="e1", version=1, session_id="sid-c", viewer_id="friend", secret_id=NEW)
    record.record(series_id="s1", episode_id="e1", version=1, session_id="sid-p", viewer_id="passer-by", secret_id=NEW)
    rows = {r.session_id: (r.source, r.payment_id) for r in record.sessions_of("s1", "e1")}
    assert rows == {"sid-c": ("comp", ""), "sid-p": (FREE_PREVIEW, "")}


def test_rows_outlive_lapsed_sessions_and_go_with_the_episode(db, record, clock):
    sessions = PlaybackSessions(db, clock=clock)
    sessions.admit("buyer", "sid-a", limit=2, idle_s=90)
    record.record(series_id="s1", episode_id="e1", version=1, session_id="sid-a", viewer_id="buyer", secret_id=NEW)
    record.record(series_id="s1", episode_id="e2", version=1, session_id="sid-a", viewer_id="buyer", secret_id=NEW)
    clock.advance(10_000)
    assert sessions.prune(idle_s=90) == 1
    assert len(record.sessions_of("s1", "e1")) == 1
    assert record.forget_episode("s1", "e1") == 1
    assert record.sessions_of("s1", "e1") == [] and len(record.sessions_of("s1", "e2")) == 1


def test_malformed_ids_are_refused(record):
    with pytest.raises(InvalidId):
        record.record(series_id="s1", episode_id="e1", version=1, session_id="a/b", viewer_id="v", secret_id=NEW)


def test_a_series_opts_in_and_out_of_watermarking(db):
    catalog = SqlCatalog(db)
    assert not catalog.create_series(series_id="plain", creator_id="c", title="T", price_cents=499,
                                     currency="USD").watermark
    marked = catalog.create_series(series_id="marked", creator_id="c", title="T", price_cents=499, currency="USD",
                                   watermark=True)
    assert marked.watermark and catalog.get_series("marked").watermark
    assert not catalog.update_series("marked", watermark=False).watermark
    assert catalog.update_series("marked", title="New").watermark is False
    assert catalog.update_series("plain", watermark=True).watermark
    with pytest.raises(InvalidField) as refused:
        catalog.update_series("plain", watermark="yes")
    assert refused.value.field == "watermark"
