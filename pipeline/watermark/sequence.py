"""session_bits(): which variant, A or B, each segment of an episode is served in for one playback session.

A keyed hash (HMAC-SHA256 of the session id under a secret only the service holds) gives every session
an independent, uniformly random bit per segment. Nobody without the secret can predict another
session's sequence, so a leaker cannot frame someone else, and an innocent session's bits are
independent of any leak, which is what pipeline/watermark/verdict.py's false-accusation bound rests on.
No separate error-correcting code: correlating the leak against each candidate's whole sequence
(maximum likelihood over a random code) tolerates unreadable and flipped segments.
"""

from __future__ import annotations

import hashlib
import hmac

SERVE_A, SERVE_B = 0, 1


def session_bits(secret: bytes, session_id: str, segment_count: int) -> tuple[int, ...]:
    """0 (serve A) or 1 (serve B) for each of `segment_count` segments; deterministic for (secret, session_id).

    Raises ValueError on an empty secret or a negative count.
    """
    if not secret:
        raise ValueError("the session secret is empty; give the series' watermark secret")
    if segment_count < 0:
        raise ValueError(f"segment_count is {segment_count}; expected 0 or more")
    bits: list[int] = []
    block = 0
    while len(bits) < segment_count:
        message = b"%s\x00%d" % (session_id.encode(), block)
        digest = hmac.new(secret, message, hashlib.sha256).digest()
        bits.extend((byte >> shift) & 1 for byte in digest for shift in range(8))
        block += 1
    return tuple(bits[:segment_count])
