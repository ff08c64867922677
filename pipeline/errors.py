"""Errors raised by the ingest pipeline. A rejected upload is data (ValidationReport), not an exception,
until a caller decides to stop: then it raises MediaRejected carrying the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class RejectionReason(Protocol):
    code: str
    message: str


class RejectionReport(Protocol):
    """What MediaRejected carries (pipeline/inspect/validate.py's ValidationReport): described here, not
    imported, so that the errors stay at the bottom of the package's imports."""

    @property
    def issues(self) -> Sequence[RejectionReason]: ...


class PipelineError(Exception):
    code = "pipeline_error"


class UnreadableMedia(PipelineError):
    """The file could not be opened as media at all (not a container FFmpeg recognises, or empty)."""

    code = "not_media"


class EmptyMedia(UnreadableMedia):
    """The file has no bytes at all: usually an upload that never started."""

    code = "empty_file"


class TruncatedMedia(UnreadableMedia):
    """The file starts like media FFmpeg reads (an MP4's ftyp) but its end is missing, so it cannot be
    opened: an upload cut off mid-transfer (a phone's MP4 keeps its index, moov, at the end)."""

    code = "truncated"


class MediaRejected(PipelineError):
    """The upload is not an acceptable episode; `report` lists every reason."""

    code = "media_rejected"

    def __init__(self, report: RejectionReport) -> None:
        super().__init__("; ".join(issue.message for issue in report.issues) or "media rejected")
        self.report = report

    def __reduce__(self):
        return type(self), (self.report,)


class MediaOverLimit(PipelineError):
    """A decoded picture broke an upload limit the header did not reveal (a size change mid-stream, a
    work budget spent): raised by pipeline/inspect/frame_limits.py's FrameGuard; the caller turns it into a
    rejection reason with `code`, `message` and `how_to_fix`."""

    def __init__(self, code: str, message: str, how_to_fix: str, *, time_s: float | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.how_to_fix, self.time_s = code, message, how_to_fix, time_s

    def __reduce__(self):
        return _rebuild_over_limit, (self.code, self.message, self.how_to_fix, self.time_s)


def _rebuild_over_limit(code: str, message: str, how_to_fix: str, time_s: float | None) -> MediaOverLimit:
    return MediaOverLimit(code, message, how_to_fix, time_s=time_s)


class TranscodeError(PipelineError):
    """The encoder or decoder failed on media that passed validation."""

    code = "transcode_failed"


class SegmentUndecodable(PipelineError):
    """A published segment did not decode: the job must fail rather than ship it."""

    code = "segment_undecodable"


class PictureError(PipelineError):
    """A poster, thumbnail or storyboard could not be made from decoded video."""

    code = "picture_failed"


class PictureTimeOutOfRange(PictureError):
    """A poster or thumbnail time outside the episode."""

    code = "picture_time_out_of_range"

    def __init__(self, time_s: float, duration_s: float) -> None:
        super().__init__(f"time {time_s:g} s is outside the episode (0 to {duration_s:.3f} s); "
                         "choose a time within the episode")
        self.time_s, self.duration_s = time_s, duration_s

    def __reduce__(self):
        return type(self), (self.time_s, self.duration_s)


class PictureWidthOutOfRange(PictureError):
    """A requested image width outside the bounds images are made at."""

    code = "picture_width_out_of_range"

    def __init__(self, width: int, low: int, high: int) -> None:
        super().__init__(f"width {width} px is outside {low}-{high} px; ask for a width in that range")
        self.width, self.low, self.high = width, low, high

    def __reduce__(self):
        return type(self), (self.width, self.low, self.high)
