"""The object store's settings and the values it answers with (no minio here: callers may hold these freely)."""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_PART_BYTES = 5 * 1024 * 1024    # S3's smallest part but the last (EntityTooSmall); SeaweedFS holds to it too
MAX_PARTS = 10_000                  # S3's most parts in one multipart upload


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSettings:
    endpoint: str  # "127.0.0.1:8333": host:port, no scheme
    access_key: str
    secret_key: str = field(repr=False)
    bucket: str
    secure: bool = False
    region: str | None = None  # None: asked once per bucket with GetBucketLocation


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectStat:
    key: str
    size_bytes: int
    content_type: str | None
    cache_control: str | None
    etag: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedObject:
    key: str
    size_bytes: int
    modified_at: float          # POSIX seconds, as the store reports it


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredPart:
    """One part of a multipart upload, as CompleteMultipartUpload needs it back."""

    number: int                 # 1..MAX_PARTS, ascending in the object
    etag: str
    size_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenMultipart:
    """A multipart upload the store holds open (its parts take space until it is completed or aborted)."""

    key: str
    upload_id: str
    initiated_at: float         # POSIX seconds, as the store reports it
