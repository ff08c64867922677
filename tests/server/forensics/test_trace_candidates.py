"""Which A/B sequences a trace compares a leak with, once the watermark secret has been rotated: each session
with the secret its row names, a row from before secret ids with every secret the service knows (each its own
candidate, so the correction counts it), and a session whose secret is gone named, never guessed."""

from __future__ import annotations

import hashlib

from drm.access.watermark_sessions import WatermarkSession
from pipeline.watermark import session_bits
from server.config.watermark import WatermarkSettings, secret_id
from server.forensics.trace import CANDIDATE_SEPARATOR, session_candidates

CURRENT, RETIRED, DROPPED = (hashlib.sha256(name).digest() for name in (b"current", b"retired", b"dropped"))


def session(session_id: str, secret: str) -> WatermarkSession:
    return WatermarkSession(series_id="s1", episode_id="1", version=1, session_id=session_id, viewer_id="v",
                            source="purchase", payment_id="pay", fetched_at=0.0, secret_id=secret)


def test_each_session_is_compared_with_the_secret_it_was_keyed_with():
    watermark = WatermarkSettings(secret=CURRENT, retired=(RETIRED,))
    unknown: set[str] = set()
    candidates = session_candidates([session("new", secret_id(CURRENT)), session("old", secret_id(RETIRED)),
                                     session("older", ""), session("lost", secret_id(DROPPED))], watermark, 40,
                                    unknown)
    assert candidates["new"] == session_bits(CURRENT, "new", 40)
    assert candidates["old"] == session_bits(RETIRED, "old", 40) != session_bits(CURRENT, "old", 40)
    assert {key: bits for key, bits in candidates.items() if key.startswith("older")} == {
        f"older{CANDIDATE_SEPARATOR}{secret_id(CURRENT)}": session_bits(CURRENT, "older", 40),
        f"older{CANDIDATE_SEPARATOR}{secret_id(RETIRED)}": session_bits(RETIRED, "older", 40)}
    assert "lost" not in candidates and unknown == {secret_id(DROPPED)}
    assert len(candidates) == 4
