"""Errors raised by the packager: one root, a stable `code` on each class."""

from __future__ import annotations


class PackagerError(Exception):
    code = "packager_error"


class StoreError(PackagerError):
    """The object store could not be reached or refused a request.

    The message names the endpoint, bucket and key and what to check; the
    foreign error (minio/urllib3) is kept as ``__cause__``.
    """

    code = "store_unavailable"


class ObjectMissing(StoreError):
    code = "object_missing"

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__(f"object {key!r} does not exist in bucket {bucket!r}")
        self.bucket, self.key = bucket, key

    def __reduce__(self):  # process pools pickle errors; extra __init__ args need this
        return type(self), (self.bucket, self.key)


class MultipartMissing(StoreError):
    """A multipart upload the store no longer has (completed or aborted, S3 NoSuchUpload)."""

    code = "multipart_missing"

    def __init__(self, bucket: str, key: str, upload_id: str) -> None:
        super().__init__(f"the multipart upload {upload_id[:16]}… of {key!r} in bucket {bucket!r} is gone: it was "
                         "completed or aborted")
        self.bucket, self.key, self.upload_id = bucket, key, upload_id

    def __reduce__(self):
        return type(self), (self.bucket, self.key, self.upload_id)


class RangeNotSatisfiable(StoreError):
    """A read from an offset at or past the object's end (S3 InvalidRange, HTTP 416): the caller's
    range is wrong, not the store, so it is not retried."""

    code = "range_not_satisfiable"

    def __init__(self, bucket: str, key: str, offset: int) -> None:
        super().__init__(f"object {key!r} in bucket {bucket!r} has no bytes at offset {offset}: the range starts "
                         "past its end; stat() the object for its size")
        self.bucket, self.key, self.offset = bucket, key, offset

    def __reduce__(self):
        return type(self), (self.bucket, self.key, self.offset)


class PublishError(PackagerError):
    """An episode version could not be published; the previous version is still live."""

    code = "publish_failed"


class PointerSwitchUncertain(PublishError):
    """The pointer switch failed in a way that may have made the new version live after all: its
    objects and keys are kept (retention removes them later if the pointer does not name them)."""

    code = "pointer_switch_uncertain"


class VerificationFailed(PublishError):
    """The uploaded version failed its self-check; it was discarded and the pointer not switched."""

    code = "verification_failed"

    def __init__(self, what: str, problems: tuple[str, ...]) -> None:
        super().__init__(f"{what} failed self-validation: " + "; ".join(problems))
        self.what, self.problems = what, problems

    def __reduce__(self):
        return type(self), (self.what, self.problems)


class MalformedSegment(PackagerError):
    """A segment is not the MPEG-TS or fMP4 the transcoder should have written."""

    code = "malformed_segment"


class CaptionTracksConflict(PackagerError):
    """Caption tracks that cannot be published together: two for one language and kind, two with one
    name, or two defaults (RFC 8216 §4.3.4.1.1)."""

    code = "caption_tracks_conflict"


class EpisodeNotPublished(PackagerError):
    """A change to a published episode (captions, poster) asked of an episode with no live version."""

    code = "episode_not_published"


class LiveVersionChanged(PublishError):
    """Another version went live while a new version was being built from the live one; nothing was
    switched (publishing it would undo that version). Build it again from the new live version."""

    code = "live_version_changed"
