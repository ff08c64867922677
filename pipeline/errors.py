"""Errors raised by the ingest pipeline. A rejected upload is data (ValidationReport), not an exception,
until a caller decides to stop: then it raises MediaRejected carrying the report."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.validate import ValidationReport


class PipelineError(Exception):
    code = "pipeline_error"


class MediaRejected(PipelineError):
    """The upload is not an acceptable episode; `report` lists every reason."""

    code = "media_rejected"

    def __init__(self, report: ValidationReport) -> None:
        super().__init__("; ".join(issue.message for issue in report.issues) or "media rejected")
        self.report = report

    def __reduce__(self):
        return type(self), (self.report,)


class TranscodeError(PipelineError):
    """The encoder or decoder failed on media that passed validation."""

    code = "transcode_failed"


class SegmentUndecodable(PipelineError):
    """A published segment did not decode: the job must fail rather than ship it."""

    code = "segment_undecodable"
