"""Playback sessions and account revocations on both engines: the limit holds however many writers race
for the last place, idle sessions lapse, revocations refuse by instant and are pruned when harmless."""

import pickle
import threading

import pytest

from drm.access.revocations import AccountRevocations
from drm.access.sessions import PlaybackSessions
from drm.access.tokens import MAX_ACCOUNT_TOKEN_TTL_S
from drm.errors import InvalidField, InvalidId, SessionLimitReached
from tests.drm.fixtures import FakeClock

IDLE_S = 180.0


@pytest.fixture
def clock():
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def sessions(db, clock):
    return PlaybackSessions(db, clock=clock)


def test_a_new_session_beyond_the_limit_is_refused_and_the_live_ones_play_on(sessions, clock):
    for session_id in ("tv", "phone"):
        sessions.admit("v1", session_id, limit=2, idle_s=IDLE_S)
        clock.advance(10)
    with pytest.raises(SessionLimitReached) as refused:
        sessions.admit("v1", "friend", limit=2, idle_s=IDLE_S)
    assert refused.value.code == "session_limit_reached"
    # the least recently active session ("tv", seen 20 s ago) lapses in IDLE_S - 20 s
    assert refused.value.retry_after_s == IDLE_S - 20
    assert "2 other sessions" in str(refused.value) and "v1" in str(refused.value)
    assert pickle.loads(pickle.dumps(refused.value)).retry_after_s == refused.value.retry_after_s
    sessions.admit("v1", "tv", limit=2, idle_s=IDLE_S)         # a live session is seen again, not refused
    sessions.admit("v2", "friend", limit=2, idle_s=IDLE_S)     # another viewer has places of their own
    assert [s.session_id for s in sessions.live("v1", idle_s=IDLE_S)] == ["phone", "tv"]


def test_a_session_without_key_requests_lapses_and_frees_its_place(sessions, clock):
    sessions.admit("v1", "tv", limit=1, idle_s=IDLE_S)
    clock.advance(IDLE_S - 1)
    with pytest.raises(SessionLimitReached):
        sessions.admit("v1", "phone", limit=1, idle_s=IDLE_S)
    clock.advance(2)
    sessions.admit("v1", "phone", limit=1, idle_s=IDLE_S)
    assert [s.session_id for s in sessions.live("v1", idle_s=IDLE_S)] == ["phone"]
    with pytest.raises(SessionLimitReached):                    # the lapsed one is a new session now
        sessions.admit("v1", "tv", limit=1, idle_s=IDLE_S)


def test_an_ended_session_frees_its_place_at_once(sessions):
    sessions.admit("v1", "tv", limit=1, idle_s=IDLE_S)
    assert sessions.end("v1", "tv") and not sessions.end("v1", "tv")
    sessions.admit("v1", "phone", limit=1, idle_s=IDLE_S)
    sessions.admit("v2", "a", limit=3, idle_s=IDLE_S)
    sessions.admit("v2", "b", limit=3, idle_s=IDLE_S)
    assert sessions.end_all("v2") == 2 and sessions.live("v2", idle_s=IDLE_S) == []


def test_prune_deletes_only_lapsed_sessions(sessions, clock, db):
    sessions.admit("gone", "a", limit=3, idle_s=IDLE_S)
    clock.advance(IDLE_S + 1)
    sessions.admit("here", "a", limit=3, idle_s=IDLE_S)
    assert sessions.prune(idle_s=IDLE_S) == 1
    assert [row[0] for row in db.query("SELECT viewer_id FROM playback_sessions")] == ["here"]


def test_racing_key_servers_never_admit_more_than_the_limit(db, open_db, clock):
    """Eight writers (threads, each with its own connection: eight key servers) admit eight new sessions of
    one viewer at the same moment: exactly the limit get in, on either engine."""
    barrier = threading.Barrier(8)
    admitted, refused, errors = [], [], []

    def admit(number: int) -> None:
        try:
            # the schema is there already (`db`); the lock may still be slow to come on a loaded machine
            store = PlaybackSessions(open_db(busy_timeout_ms=60_000), clock=clock)
        except Exception as exc:  # noqa: BLE001 - reported below; the others must not wait for this one
            errors.append(exc)
            barrier.abort()
            return
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            return
        try:
            store.admit("v1", f"s{number}", limit=3, idle_s=IDLE_S)
            admitted.append(number)
        except SessionLimitReached:
            refused.append(number)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=admit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(admitted) == 3 and len(refused) == 5


def test_bad_ids_and_limits_are_refused(sessions):
    with pytest.raises(InvalidId):
        sessions.admit("v/1", "s", limit=3, idle_s=IDLE_S)
    with pytest.raises(ValueError):
        sessions.admit("v1", "s", limit=0, idle_s=IDLE_S)


def test_a_revocation_refuses_up_to_its_instant_and_moves_on_when_repeated(db, clock):
    revocations = AccountRevocations(db, clock=clock)
    assert revocations.not_before("v1") is None and revocations.current() == {}
    clock.now = 1_700_000_000.7
    assert revocations.revoke("v1", actor="cli") == 1_700_000_000
    assert revocations.current() == {"v1": 1_700_000_000}
    clock.advance(60)
    assert revocations.revoke("v1", actor="operator:ann") == 1_700_000_060
    assert revocations.not_before("v1") == 1_700_000_060
    with pytest.raises(InvalidField):
        revocations.revoke("", actor="cli")


def test_revocations_older_than_any_account_token_are_pruned(db, clock):
    revocations = AccountRevocations(db, clock=clock)
    revocations.revoke("old", actor="cli")
    clock.advance(MAX_ACCOUNT_TOKEN_TTL_S - 10)
    revocations.revoke("recent", actor="cli")
    assert set(revocations.current()) == {"old", "recent"}
    clock.advance(11)           # every token "old" refused has expired by now
    assert revocations.current() == {"recent": int(clock.now) - 11}
    assert revocations.prune() == 1
    assert revocations.not_before("old") is None
