"""Resumable uploads (the tus 1.0 protocol): what an upload is, the states it passes, its errors, and the
grammar of the tus request headers.

    active ──(last byte)──▶ completing ──(object joined, job queued)──▶ completed
       ├──(DELETE)──▶ terminated
       ├──(no byte for SERIES_UPLOAD_EXPIRY_S)──▶ expired
       └─────────(the series refused the episode at the end)──────────▶ rejected

An upload's bytes are an S3 multipart upload in the uploads bucket, under tus/{upload_id}/: parts of
SERIES_UPLOAD_PART_BYTES, and the bytes after the last part (fewer than a part: tus clients may send
any chunk size, S3 parts but the last must be at least 5 MiB) in a tail object that the next PATCH,
on whichever instance, reads back and carries into the next part. The database row says which parts
and how many tail bytes count (server/ingest/upload_store.py); server/ingest/upload_chunks.py writes them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from packager.store import StoredPart

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = ("creation", "creation-with-upload", "termination", "expiration", "checksum")
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
CHECKSUM_ALGORITHMS: dict[str, Callable[[], Any]] = {
    "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}

UPLOADS_PREFIX = "tus/"                 # in the uploads bucket: tus/{upload_id}/media/{file}, tus/{upload_id}/tail/…
UPLOAD_ID = re.compile(r"^up_[0-9a-f]{24}$")
UPLOAD_ID_PATTERN = r"up_[0-9a-f]{24}"

ACTIVE, COMPLETING, COMPLETED = "active", "completing", "completed"
TERMINATED, EXPIRED, REJECTED = "terminated", "expired", "rejected"
OPEN_STATES = (ACTIVE, COMPLETING)      # count against the caps; their bytes are still wanted
ENDED_STATES = (COMPLETED, TERMINATED, EXPIRED, REJECTED)
STATES = OPEN_STATES + ENDED_STATES

INGEST_OWNER = "ingest"                 # every upload service holding SERIES_INGEST_TOKEN
_CREATOR_OWNER = "creator:"
METADATA_KEYS_SHOWN = ("series", "episode", "title", "filename")
_MAX_FILENAME_CHARS = 100
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]")
_METADATA_KEY = re.compile(r"^[\x21-\x2b\x2d-\x7e]{1,64}$")     # printable ASCII, no space or comma
_DIGITS = re.compile(r"^[0-9]{1,19}$")


def creator_owner(creator_id: str) -> str:
    return _CREATOR_OWNER + creator_id


def owner_creator(owner: str) -> str | None:
    """The creator id of an owner, or None for the upload services' ingest token."""
    return owner.removeprefix(_CREATOR_OWNER) if owner.startswith(_CREATOR_OWNER) else None


def new_upload_id() -> str:
    return "up_" + secrets.token_hex(12)


def upload_prefix(upload_id: str) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/"


def upload_id_of(key: str) -> str | None:
    """The upload id of an object or multipart key under UPLOADS_PREFIX, or None."""
    head = key.removeprefix(UPLOADS_PREFIX).split("/", 1)[0]
    return head if key.startswith(UPLOADS_PREFIX) and UPLOAD_ID.match(head) else None


def safe_filename(name: str | None) -> str:
    """The uploader's file name as our object keys and job errors show it: letters, digits, '._ -' only."""
    cleaned = _UNSAFE_NAME.sub("_", (name or "").rsplit("/", 1)[-1])[:_MAX_FILENAME_CHARS].lstrip(". ")
    return cleaned or "upload"


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload:
    upload_id: str
    owner: str                          # INGEST_OWNER or "creator:<id>"
    series_id: str
    episode_id: str
    title: str | None
    filename: str
    metadata: str                       # the Upload-Metadata header as sent, echoed on HEAD
    webhook_url: str | None
    length_bytes: int
    offset_bytes: int                   # bytes kept: the parts' and the tail's
    object_key: str
    multipart_id: str | None            # the S3 upload id, once the first part was written
    parts: tuple[StoredPart, ...]
    tail_key: str | None
    tail_bytes: int
    state: str
    created_episode: bool               # the upload created its episode (withdrawn if it is abandoned)
    holder: str | None                  # the PATCH (or sweep) holding the upload, while its lease lasts
    held_until: float | None
    job_id: str | None
    error: dict | None
    created_at: float
    updated_at: float
    expires_at: float
    ended_at: float | None
    cleared_at: float | None            # when its objects left the store

    @property
    def parts_bytes(self) -> int:
        return sum(part.size_bytes for part in self.parts)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def is_expired(self, now: float) -> bool:
        return self.state == ACTIVE and self.expires_at <= now

    def is_held(self, now: float) -> bool:
        return self.holder is not None and (self.held_until or 0.0) > now

    def as_public_dict(self, now: float) -> dict[str, Any]:
        """What the JSON API shows: no store keys, part lists or lease holders."""
        state = EXPIRED if self.is_expired(now) else self.state
        return {
            "upload_id": self.upload_id,
            "url": f"/v1/uploads/{self.upload_id}",
            "series_id": self.series_id,
            "episode_id": self.episode_id,
            "title": self.title,
            "filename": self.filename,
            "state": state,
            "offset_bytes": self.offset_bytes,
            "length_bytes": self.length_bytes,
            "percent": round(100.0 * self.offset_bytes / self.length_bytes, 1),
            "job_id": self.job_id,
            "error": self.error,
            "created_by": owner_creator(self.owner) or INGEST_OWNER,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "expires_at": self.expires_at if state == ACTIVE else None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NewUpload:
    """What a creation request asks for, checked."""

    owner: str
    series_id: str
    episode_id: str
    title: str | None
    filename: str
    metadata: str
    webhook_url: str | None
    length_bytes: int
    upload_id: str = field(default_factory=new_upload_id)

    @property
    def object_key(self) -> str:
        return f"{upload_prefix(self.upload_id)}media/{self.filename}"


@dataclass(frozen=True, slots=True)
class Checksum:
    """An Upload-Checksum header: the algorithm and the digest the chunk must have."""

    algorithm: str
    digest: bytes

    def new_hash(self):
        return CHECKSUM_ALGORITHMS[self.algorithm]()


# -- errors: each says its HTTP status, and what to do -----------------------------------------------------

class UploadError(Exception):
    code = "upload_error"
    http_status = 400


class UploadRequestError(UploadError):
    """A tus request that cannot be taken as sent; the message says what to change."""

    code = "bad_upload_request"


class TusVersionUnsupported(UploadError):
    code = "tus_version_unsupported"
    http_status = 412       # tus 1.0: a Tus-Resumable we do not speak


class UploadNotFound(UploadError):
    code = "unknown_upload"
    http_status = 404

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"no upload {upload_id}; create one with POST /v1/uploads")
        self.upload_id = upload_id

    def __reduce__(self):
        return type(self), (self.upload_id,)


class UploadGone(UploadError):
    """Terminated or expired: its bytes are gone, a new upload must start over."""

    http_status = 410

    def __init__(self, upload_id: str, state: str) -> None:
        why = "was terminated" if state == TERMINATED else "expired (no byte arrived for too long)"
        super().__init__(f"upload {upload_id} {why}; its bytes are gone: create a new upload")
        self.upload_id, self.state = upload_id, state
        self.code = f"upload_{state}"

    def __reduce__(self):
        return type(self), (self.upload_id, self.state)


class UploadRejected(UploadError):
    """The upload arrived whole, but the series refused its episode at the end (e.g. it filled up meanwhile)."""

    code = "upload_rejected"
    http_status = 410

    def __init__(self, upload_id: str, error: dict) -> None:
        super().__init__(f"upload {upload_id} arrived whole but was refused: {error.get('message', '')} "
                         f"[{error.get('code', '')}]")
        self.upload_id, self.error = upload_id, error

    def __reduce__(self):
        return type(self), (self.upload_id, self.error)


class OffsetMismatch(UploadError):
    code = "upload_offset_mismatch"
    http_status = 409

    def __init__(self, upload_id: str, sent: int, offset: int) -> None:
        super().__init__(f"Upload-Offset {sent} is not where upload {upload_id} stands ({offset} bytes kept); "
                         "ask with HEAD and resume from the offset it gives")
        self.upload_id, self.sent, self.offset = upload_id, sent, offset

    def __reduce__(self):
        return type(self), (self.upload_id, self.sent, self.offset)


class UploadLocked(UploadError):
    """Another request is writing this upload (or held it and its lease has not run out yet)."""

    code = "upload_locked"
    http_status = 409


class UploadFinished(UploadError):
    """The upload has all its bytes; it cannot take more, or be terminated."""

    code = "upload_complete"
    http_status = 409


class UploadLengthExceeded(UploadError):
    code = "upload_length_exceeded"
    http_status = 413


class ChecksumMismatch(UploadError):
    code = "checksum_mismatch"
    http_status = 460       # the tus checksum extension's status

    def __init__(self, algorithm: str) -> None:
        super().__init__(f"the chunk's {algorithm} is not the Upload-Checksum sent; it was not kept: send it again "
                         "from the same offset")
        self.algorithm = algorithm

    def __reduce__(self):
        return type(self), (self.algorithm,)


class UnsupportedMediaType(UploadError):
    code = "unsupported_media_type"
    http_status = 415


class TooManyUploads(UploadError):
    code = "too_many_uploads"
    http_status = 429
    retry_after_s = 60

    def __init__(self, who: str, limit: int) -> None:
        super().__init__(f"{who} already has {limit} unfinished uploads, the most allowed at once; finish or "
                         "terminate one (DELETE /v1/uploads/{id}) first")
        self.who, self.limit = who, limit

    def __reduce__(self):
        return type(self), (self.who, self.limit)


class UploadInProgress(UploadError):
    code = "upload_in_progress"
    http_status = 409

    def __init__(self, series_id: str, episode_id: str, upload_id: str) -> None:
        super().__init__(f"episode {episode_id} of series {series_id} already has an unfinished upload, "
                         f"/v1/uploads/{upload_id}: resume it, or terminate it before starting another")
        self.series_id, self.episode_id, self.upload_id = series_id, episode_id, upload_id

    def __reduce__(self):
        return type(self), (self.series_id, self.episode_id, self.upload_id)


# -- the tus headers' grammar --------------------------------------------------------------------------

def parse_size(name: str, raw: str | None, *, minimum: int = 0) -> int:
    """A non-negative decimal header value (Upload-Length, Upload-Offset). Raises UploadRequestError."""
    if raw is None:
        raise UploadRequestError(f"send {name}: a whole number of bytes")
    if not _DIGITS.match(raw.strip()) or int(raw) < minimum:
        raise UploadRequestError(f"{name} has value {raw[:40]!r}; expected a whole number of bytes of at least {minimum}")
    return int(raw)


def parse_metadata(raw: str) -> dict[str, str]:
    """Upload-Metadata ("key base64value,key2 base64value2,key3"): key -> decoded text ("" for a bare key).

    Raises UploadRequestError for a malformed pair, a repeated key, or a value that is not base64 of UTF-8.
    """
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, encoded = item.partition(" ")
        if not _METADATA_KEY.match(key) or " " in encoded.strip():
            raise UploadRequestError(f"Upload-Metadata has a malformed pair {item[:60]!r}; expected 'key base64value' "
                                     "pairs separated by commas")
        if key in pairs:
            raise UploadRequestError(f"Upload-Metadata names {key!r} twice")
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8") if encoded.strip() else ""
        except (binascii.Error, UnicodeDecodeError):
            raise UploadRequestError(f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text") from None
    return pairs


def parse_checksum(raw: str | None) -> Checksum | None:
    """Upload-Checksum ("sha256 base64digest"), or None when absent. Raises UploadRequestError."""
    if raw is None:
        return None
    algorithm, _, encoded = raw.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise UploadRequestError(f"Upload-Checksum algorithm {algorithm[:20]!r} is not supported; use one of "
                                 f"{', '.join(CHECKSUM_ALGORITHMS)}")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != CHECKSUM_ALGORITHMS[algorithm]().digest_size:
        raise UploadRequestError(f"Upload-Checksum's {algorithm} digest is not the base64 of "
                                 f"{CHECKSUM_ALGORITHMS[algorithm]().digest_size} bytes")
    return Checksum(algorithm, digest)
