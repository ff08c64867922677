"""Forensic A/B watermarking: the mark, its embedding at transcode, and reading it back from a leak.

Owns: the per-segment mark (pattern.py, embed.py), the segment plan and fade (plan.py), the reference
detection needs, computed during the transcode (reference.py), each session's A/B sequence
(sequence.py), reading a leaked copy (read.py, align.py) and the verdict with its false-accusation
bound (verdict.py). pipeline/encode/transcode.py calls into it when given a WatermarkSpec; storing variants,
playlists and sessions are the caller's.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pipeline.watermark.errors import LeakDoesNotMatch, LeakNotVideo, LeakTooShort, ReferenceInvalid, WatermarkError
from pipeline.watermark.sequence import SERVE_A, SERVE_B, session_bits
from pipeline.watermark.spec import WatermarkSpec

if TYPE_CHECKING:
    from pipeline.watermark.read import LeakSignatures, leak_signatures, read_leak, reference_grid
    from pipeline.watermark.reading import LeakReading
    from pipeline.watermark.reference import WatermarkReference
    from pipeline.watermark.verdict import DEFAULT_FALSE_ACCUSATION, Candidate, Verdict, decide

# The modules that need numpy load on first use: pipeline/encode/transcode.py imports this package, and a
# transcode leaves numpy's import (~0.15 s) to its quality thread (pipeline/quality.py).
_LAZY = {"read_leak": "read", "leak_signatures": "read", "LeakSignatures": "read", "reference_grid": "read",
         "LeakReading": "reading", "WatermarkReference": "reference",
         "DEFAULT_FALSE_ACCUSATION": "verdict", "Candidate": "verdict", "Verdict": "verdict", "decide": "verdict"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"pipeline.watermark.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'pipeline.watermark' has no attribute {name!r}")


__all__ = ["DEFAULT_FALSE_ACCUSATION", "SERVE_A", "SERVE_B", "Candidate", "LeakDoesNotMatch", "LeakNotVideo",
           "LeakReading", "LeakSignatures", "LeakTooShort", "ReferenceInvalid", "Verdict", "WatermarkError",
           "WatermarkReference", "WatermarkSpec", "decide", "leak_signatures", "read_leak", "reference_grid",
           "session_bits"]
