"""Forensic A/B watermarking: the mark, its embedding at transcode, and reading it back from a leak.

Owns: the per-segment mark (pattern.py, embed.py), the segment plan and fade (plan.py), the reference
detection needs, computed during the transcode (reference.py), each session's A/B sequence
(sequence.py), reading a leaked copy (read.py, align.py) and the verdict with its false-accusation
bound (verdict.py). pipeline/transcode.py calls into it when given a WatermarkSpec; storing variants,
playlists and sessions are the caller's.
"""

from pipeline.watermark.errors import (LeakDoesNotMatch, LeakNotVideo, LeakTooShort, ReferenceInvalid,
                                       WatermarkError)
from pipeline.watermark.read import read_leak
from pipeline.watermark.reading import LeakReading
from pipeline.watermark.reference import WatermarkReference
from pipeline.watermark.sequence import SERVE_A, SERVE_B, session_bits
from pipeline.watermark.spec import WatermarkSpec
from pipeline.watermark.verdict import DEFAULT_FALSE_ACCUSATION, Candidate, Verdict, decide

__all__ = ["DEFAULT_FALSE_ACCUSATION", "SERVE_A", "SERVE_B", "Candidate", "LeakDoesNotMatch", "LeakNotVideo",
           "LeakReading", "LeakTooShort", "ReferenceInvalid", "Verdict", "WatermarkError", "WatermarkReference",
           "WatermarkSpec", "decide", "read_leak", "session_bits"]
