"""Errors of forensic watermarking: reading a leaked copy, loading a stored reference.

Each has a stable `code` for reports and the API; messages say what was wrong with the input and what to try.
"""

from __future__ import annotations

from pipeline.errors import PipelineError


class WatermarkError(PipelineError):
    code = "watermark_error"


class LeakNotVideo(WatermarkError):
    """The leaked file could not be opened as video, or has no video stream."""

    code = "leak_not_video"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name} is not a video FFmpeg can decode ({reason}); give the downloaded or recorded "
                         "video file itself")
        self.name, self.reason = name, reason

    def __reduce__(self):
        return type(self), (self.name, self.reason)


class LeakTooShort(WatermarkError):
    """The leak covers too few whole segments of the episode to read a mark from."""

    code = "leak_too_short"

    def __init__(self, name: str, duration_s: float, needed_s: float) -> None:
        super().__init__(f"{name} holds {duration_s:.1f} s of video; at least {needed_s:.0f} s of the episode are "
                         "needed to read the mark (a longer excerpt of the leak)")
        self.name, self.duration_s, self.needed_s = name, duration_s, needed_s

    def __reduce__(self):
        return type(self), (self.name, self.duration_s, self.needed_s)


class LeakDoesNotMatch(WatermarkError):
    """No stretch of the episode looks like the leak: another episode, another programme, or heavy editing."""

    code = "leak_does_not_match"

    def __init__(self, name: str, match: float, needed: float) -> None:
        super().__init__(f"{name} does not match this episode (best temporal match {match:.2f}, at least "
                         f"{needed:.2f} needed); check the series and episode, or trace it against another")
        self.name, self.match, self.needed = name, match, needed

    def __reduce__(self):
        return type(self), (self.name, self.match, self.needed)


class ReferenceInvalid(WatermarkError):
    """Stored reference bytes that are not a watermark reference (corrupt, truncated, another format)."""

    code = "watermark_reference_invalid"
