"""The key path's memory of admitted sessions: trusted for half the idle time and no longer, so a remembered
session is always one the database still counts, and a playing one is written again before it could lapse."""

from drm.access.sessions import PlaybackSessions
from server.access.sessions import AdmittedSessions
from server.config import AccessSettings
from tests.drm.fixtures import FakeClock


def test_an_admission_is_remembered_for_half_the_idle_time():
    clock = FakeClock(100.0)
    memory = AdmittedSessions(PlaybackSessions(db=None), AccessSettings(session_idle_s=300.0), clock=clock)
    assert not memory.is_admitted("v1", "s1")
    memory.admitted("v1", "s1", clock())
    clock.advance(150)
    assert memory.is_admitted("v1", "s1") and not memory.is_admitted("v1", "s2")
    clock.advance(1)
    assert not memory.is_admitted("v1", "s1")           # asked again: the database writes it anew
    memory.admitted("v1", "s1", clock())
    memory.forget("v1", "s1")
    assert not memory.is_admitted("v1", "s1")


def test_without_a_limit_every_session_is_admitted_without_the_database():
    memory = AdmittedSessions(PlaybackSessions(db=None), AccessSettings(max_sessions=0), clock=FakeClock())
    assert memory.is_admitted("v1", "anything") and not memory.is_limited
