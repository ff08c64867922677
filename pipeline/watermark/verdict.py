"""decide(): which playback session, if any, a leak's A/B reading names, with a bounded false-accusation rate.

Each candidate session is scored by correlating the leak's soft values with its A/B sequence:
score = sum_i s_i * (+1 if the session got A in segment i, -1 if B). An innocent session's bits are
uniformly random and independent of the leak (pipeline/watermark/sequence.py), so given the soft
values its score is a sum of independently, evenly signed terms: its distribution is known exactly,
whatever the attack did to the soft values (noise, washed-out or flipped segments), with no model of
them. decide() computes that distribution (a sign-randomization test, on the magnitudes rounded to
1/NULL_UNITS of their sum) and its tail at the observed score is the p-value. With n candidates
(Bonferroni), a session is accused only when n * p < false_accusation, so the chance that a trace names
any innocent session is below false_accusation. (Hoeffding's exp(-t^2 / 2 sum s_i^2) bounds the same
tail in closed form, but is ~10x looser where it matters, worth about 5 segments of evidence.)

How much leak that needs, for n = 50 candidates at 1e-6 (the tail is near-Gaussian: z >= 5.6):
every segment read cleanly, about 32 segments (64 s of 2 s segments); with a fifth unreadable, 40;
with a tenth read with the wrong sign, 50. A 2-minute clip (60 segments) is about the shortest excerpt
the default rate can act on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.watermark.reading import LeakReading

DEFAULT_FALSE_ACCUSATION = 1e-6    # per trace: the chance of naming any innocent session
MAX_LISTED = 10                    # candidates a verdict lists, best first


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    session_id: str
    confidence: float           # 1 - p_value
    p_value: float              # bound on the chance that an innocent session among the candidates scores this
                                # high (Hoeffding, times the number of candidates)
    segments_read: int          # segments with a soft value that this session's sequence covers
    segments_agreeing: int      # of those, segments whose sign matches the variant the session was served


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    identified: bool                        # some candidate's p_value is below false_accusation
    candidates: tuple[Candidate, ...]       # best first, at most MAX_LISTED
    false_accusation: float
    segments_read: int

    @property
    def accused(self) -> tuple[Candidate, ...]:
        """The candidates whose evidence passes the bound (more than one only if sequences were mixed)."""
        return tuple(c for c in self.candidates if c.p_value < self.false_accusation)


def decide(reading: LeakReading, candidates: Mapping[str, Sequence[int]], *,
           false_accusation: float = DEFAULT_FALSE_ACCUSATION, compared: int | None = None) -> Verdict:
    """Rank `candidates` (session_id -> its A/B bits, 0 = A) by how well they explain `reading`.

    `compared`: how many sessions the whole trace tests, when it decides more than one reading (a leak read
    against several episode versions): the correction must count them all, or each extra version tried
    would be a fresh chance to name an innocent. Defaults to len(candidates).
    Raises ValueError for a false_accusation outside (0, 1) or `compared` below len(candidates).
    """
    if not 0 < false_accusation < 1:
        raise ValueError(f"false_accusation is {false_accusation}; expected a probability between 0 and 1")
    if compared is not None and compared < len(candidates):
        raise ValueError(f"compared is {compared}, fewer than the {len(candidates)} candidates given")
    count = max(1, len(candidates) if compared is None else compared)
    nulls: dict[tuple[int, ...], _NullDistribution] = {}
    ranked = sorted((_score(session_id, bits, reading.values, count, nulls)
                     for session_id, bits in candidates.items()),
                    key=lambda c: (c.p_value, -c.segments_agreeing, c.session_id))
    return Verdict(identified=bool(ranked) and ranked[0].p_value < false_accusation,
                   candidates=tuple(ranked[:MAX_LISTED]), false_accusation=false_accusation,
                   segments_read=reading.segments_read)


def _score(session_id: str, bits: Sequence[int], values: Sequence[float | None], count: int,
           nulls: dict[tuple[int, ...], _NullDistribution]) -> Candidate:
    read = tuple(i for i, value in enumerate(values[:len(bits)]) if value is not None)
    if read not in nulls:
        nulls[read] = _NullDistribution([abs(values[i]) for i in read])
    signs = [1 if bits[i] == 0 else -1 for i in read]
    agreeing = sum(sign * values[i] > 0 for sign, i in zip(signs, read))
    p_value = min(1.0, count * nulls[read].tail([sign * values[i] for sign, i in zip(signs, read)]))
    return Candidate(session_id=session_id, confidence=1.0 - p_value, p_value=p_value,
                     segments_read=len(read), segments_agreeing=agreeing)


NULL_UNITS = 20_000     # resolution of the exact null distribution: the magnitudes' sum in units


class _NullDistribution:
    """The exact distribution of sum_i e_i |s_i| with independent fair signs e_i, on quantized magnitudes."""

    def __init__(self, magnitudes: Sequence[float]) -> None:
        total = float(sum(magnitudes))
        self.unit = total / NULL_UNITS if total > 0 else 1.0
        self.units = [round(m / self.unit) for m in magnitudes]
        span = sum(self.units)
        distribution = np.zeros(2 * span + 1)
        distribution[span] = 1.0
        for units in self.units:
            if units:
                shifted = np.zeros_like(distribution)
                shifted[units:] += 0.5 * distribution[:-units]
                shifted[:-units] += 0.5 * distribution[units:]
                distribution = shifted
        self.span = span
        self.tail_from = np.cumsum(distribution[::-1])[::-1]    # P(sum >= k - span)

    def tail(self, signed: Sequence[float]) -> float:
        """P(an innocent score >= the score of these signed values), on the same quantization."""
        if not signed:
            return 1.0
        score = sum(math.copysign(units, value) if value else 0
                    for units, value in zip(self.units, signed))
        if score <= 0:
            return 1.0
        return float(min(1.0, self.tail_from[int(score) + self.span]))
