"""Session sequences and the verdict's false-accusation bound, on simulated readings (no media)."""

from __future__ import annotations

import random

import pytest

from pipeline.watermark import LeakReading, decide, session_bits

SECRET = b"s" * 32
SEGMENTS = 60


def reading(values) -> LeakReading:
    return LeakReading(values=tuple(values), offset_s=0.0, match=1.0, visible_area=(0, 0, 1, 1),
                       duration_s=2.0 * len(values))


def leak_of(bits, rng: random.Random, *, flipped: float = 0.0, unreadable: float = 0.0, noise: float = 0.3):
    """Soft values a leak of a session with `bits` could give: +1 for A, -1 for B, some lost or flipped."""
    values = []
    for bit in bits:
        if rng.random() < unreadable:
            values.append(None)
            continue
        sign = 1 if bit == 0 else -1
        if rng.random() < flipped:
            sign = -sign
        values.append(sign * abs(rng.gauss(1, noise)))
    return values


def test_session_bits_are_deterministic_keyed_and_balanced():
    bits = session_bits(SECRET, "session-1", 1000)
    assert bits == session_bits(SECRET, "session-1", 1000)
    assert bits[:SEGMENTS] == session_bits(SECRET, "session-1", SEGMENTS)
    assert bits != session_bits(SECRET, "session-2", 1000)
    assert bits != session_bits(b"t" * 32, "session-1", 1000)
    assert set(bits) == {0, 1} and 400 < sum(bits) < 600
    assert session_bits(SECRET, "x", 0) == ()
    with pytest.raises(ValueError, match="secret is empty"):
        session_bits(b"", "x", 3)


def test_the_leaker_is_named_among_50_with_a_fifth_of_segments_lost_and_some_flipped():
    rng = random.Random(7)
    candidates = {f"session-{k}": session_bits(SECRET, f"session-{k}", SEGMENTS) for k in range(50)}
    values = leak_of(candidates["session-17"], rng, flipped=0.05, unreadable=0.2)
    verdict = decide(reading(values), candidates)
    assert verdict.identified
    assert [c.session_id for c in verdict.accused] == ["session-17"]
    best = verdict.candidates[0]
    assert best.p_value < 1e-6 and best.confidence > 1 - 1e-6
    assert best.segments_read == sum(v is not None for v in values)
    assert best.segments_agreeing < best.segments_read      # some were flipped, yet it is named


def test_no_innocent_session_is_accused_across_200_leaks():
    rng = random.Random(11)
    innocents = {f"innocent-{k}": session_bits(SECRET, f"innocent-{k}", SEGMENTS) for k in range(200)}
    for trial in range(200):
        leaker = session_bits(SECRET, f"leaker-{trial}", SEGMENTS)
        verdict = decide(reading(leak_of(leaker, rng, flipped=0.2, unreadable=0.2)), innocents)
        assert not verdict.identified, verdict.candidates[0]


def test_weak_or_missing_evidence_is_undecided():
    candidates = {"a": session_bits(SECRET, "a", SEGMENTS), "b": session_bits(SECRET, "b", SEGMENTS)}
    short = leak_of(candidates["a"], random.Random(3))[:12] + [None] * (SEGMENTS - 12)
    verdict = decide(reading(short), candidates)
    assert not verdict.identified and verdict.candidates[0].session_id == "a"   # ranked first, not accused
    assert not decide(reading([None] * SEGMENTS), candidates).identified
    assert not decide(reading([0.0] * SEGMENTS), candidates).identified
    assert decide(reading([None] * SEGMENTS), {}).candidates == ()


def test_a_stricter_rate_needs_more_evidence():
    candidates = {"a": session_bits(SECRET, "a", SEGMENTS)}
    values = leak_of(candidates["a"], random.Random(5), flipped=0.25)[:40] + [None] * 20
    assert decide(reading(values), candidates, false_accusation=1e-2).identified
    assert not decide(reading(values), candidates, false_accusation=1e-12).identified
    with pytest.raises(ValueError, match="probability"):
        decide(reading(values), candidates, false_accusation=0)
