"""The object store: an S3 bucket reached through one minio client.

Only this sub-package imports minio. Every minio/urllib3 error is translated once, in _call() (with
failures.py), into StoreError or one of its leaves, keeping the cause.

Multipart uploads (resumable uploads write one part at a time, from any instance) use minio's own
request methods for the S3 multipart calls: its public API offers only put_object's internal use of
them. They have kept their signatures through minio 7.x; _MULTIPART_CALLS is checked at import so a
minio without them fails at start-up, not mid-upload.

minio's client is thread-safe but not fork-safe: share one ObjectStore between
the threads of a process, and let each process (e.g. each transcode worker)
make its own.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import Part
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from packager.errors import MultipartMissing, ObjectMissing, StoreError
from packager.store.failures import FOREIGN_ERRORS, MISSING_CODES, describe, is_transient, translate
from packager.store.values import MAX_PARTS, ListedObject, ObjectStat, OpenMultipart, StoredPart, StoreSettings

__all__ = ["ObjectStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_CONNECT_TIMEOUT_S = 3.0
_READ_TIMEOUT_S = 30.0
_POOL_SIZE = 16  # connections kept per host; more threads still work, extra connections are not pooled
_MULTIPART_CALLS = ("_create_multipart_upload", "_upload_part", "_complete_multipart_upload",
                    "_abort_multipart_upload", "_list_multipart_uploads")
_missing_calls = [name for name in _MULTIPART_CALLS if not callable(getattr(Minio, name, None))]
if _missing_calls:      # pragma: no cover - only with a minio this code was not tested with
    raise ImportError(f"this minio lacks {', '.join(_missing_calls)}; install the version of requirements/runtime.lock")


class ObjectStore:
    """One bucket of an S3 store, with bounded retries on transient failures.

    Safe to share between threads; each process (e.g. each pool worker) makes its own.
    """

    def __init__(self, settings: StoreSettings, *, retry_attempts: int = 4, retry_max_wait_s: float = 2.0) -> None:
        if retry_attempts < 1:
            raise ValueError(f"retry_attempts must be at least 1, got {retry_attempts}")
        self._settings = settings
        # urllib3 retries are off so that the tenacity policy below is the only retry layer:
        # minio's default pool would retry 5 times on its own, multiplying our attempts.
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=_CONNECT_TIMEOUT_S, read=_READ_TIMEOUT_S),
            retries=False,
            maxsize=_POOL_SIZE,
            cert_reqs="CERT_REQUIRED" if settings.secure else "CERT_NONE",
        )
        try:
            self._client = Minio(
                settings.endpoint,
                access_key=settings.access_key,
                secret_key=settings.secret_key,
                secure=settings.secure,
                region=settings.region,
                http_client=self._http,
            )
        except ValueError as exc:
            raise StoreError(
                f"S3 endpoint {settings.endpoint!r} is invalid ({exc}); SERIES_S3_ENDPOINT must be host:port, no scheme"
            ) from exc
        self._retrying = Retrying(
            stop=stop_after_attempt(retry_attempts),
            wait=wait_exponential_jitter(multiplier=min(0.25, retry_max_wait_s), max=retry_max_wait_s, jitter=0.25),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )

    def __repr__(self) -> str:
        return f"ObjectStore(endpoint={self._settings.endpoint!r}, bucket={self._settings.bucket!r})"

    @property
    def bucket(self) -> str:
        return self._settings.bucket

    def close(self) -> None:
        """Close pooled connections. The store must not be used afterwards."""
        self._http.clear()

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def check(self) -> None:
        """Cheap signed request proving the endpoint answers and accepts our credentials.

        A missing bucket is fine (ensure_bucket creates it). Raises StoreError.
        """
        self._call("checking", None, lambda: self._client.bucket_exists(self.bucket))

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists; a concurrent creation is not an error."""

        def create() -> None:
            if self._client.bucket_exists(self.bucket):
                return
            try:
                self._client.make_bucket(self.bucket, location=self._settings.region)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

        self._call("creating", None, create)

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        cache_control: str | None = None,
    ) -> None:
        """Store `data` under `key`, replacing any previous object. Raises StoreError."""
        headers = {"Cache-Control": cache_control} if cache_control else None

        def put() -> None:  # a fresh stream per attempt: a failed attempt may have consumed it
            self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type, metadata=headers
            )

        self._call("writing", key, put)

    def copy(self, source_key: str, key: str) -> None:
        """Copy an object within the bucket, server-side (no bytes through us), keeping its headers.

        Raises ObjectMissing if `source_key` is absent, StoreError otherwise."""
        self._call("copying", key,
                   lambda: self._client.copy_object(self.bucket, key, CopySource(self.bucket, source_key)))

    def get_bytes(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes:
        """The whole object, or `length` bytes of it from `offset` (fewer at its end): one ranged GET.

        Raises ObjectMissing if absent, RangeNotSatisfiable when `offset` is at or past the end, StoreError
        otherwise; ValueError for a range that is empty or negative.
        """
        if offset < 0 or (length is not None and length < 1):
            raise ValueError(f"byte range {length}@{offset}: expected a positive length from a non-negative offset")

        def get() -> bytes:
            # minio sends no Range header for length 0 (it means "to the end"), hence the check above
            response = self._client.get_object(self.bucket, key, offset=offset, length=length or 0)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return self._call("reading", key, get, offset=offset)

    def get_stream(self, key: str, chunk_size: int = 65536, *, offset: int = 0,
                   length: int | None = None) -> Iterator[bytes]:
        """The object (or `length` bytes of it from `offset`) in chunks of at most `chunk_size` bytes, for proxying.

        The request is sent on the first next(), so ObjectMissing (or RangeNotSatisfiable) surfaces
        there, before a proxy has written its own headers. Only opening is retried; a
        failure mid-body raises StoreError. Closing the generator early releases
        the connection.
        """
        response = self._call("reading", key, lambda: self._client.get_object(
            self.bucket, key, offset=offset, length=length or 0), offset=offset)
        try:
            yield from response.stream(chunk_size)
        except FOREIGN_ERRORS as exc:
            raise self._translate(exc, "reading", key, attempts=1) from exc
        finally:
            response.close()
            response.release_conn()

    def stat(self, key: str) -> ObjectStat:
        """Size and headers of an object. Raises ObjectMissing if absent."""
        info = self._call("inspecting", key, lambda: self._client.stat_object(self.bucket, key))
        return ObjectStat(
            key=key,
            size_bytes=info.size or 0,
            content_type=info.content_type,
            cache_control=info.metadata.get("Cache-Control") if info.metadata else None,
            etag=info.etag,
        )

    def exists(self, key: str) -> bool:
        def probe() -> bool:
            try:
                self._client.stat_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in MISSING_CODES:
                    return False
                raise
            return True

        return self._call("inspecting", key, probe)

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`, recursively, in S3's (lexicographic) order."""

        def keys() -> list[str]:
            objects = self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return [obj.object_name for obj in objects if obj.object_name and not obj.is_dir]

        return self._call("listing", prefix, keys)

    def list_prefixes(self, prefix: str) -> list[str]:
        """The "directories" one level below `prefix` (which ends in "/"), each ending in "/".

        A delimiter listing: the store returns one entry per child prefix, not every object under it,
        so walking a large bucket level by level stays small.
        """

        def prefixes() -> list[str]:
            listed = self._client.list_objects(self.bucket, prefix=prefix, recursive=False)
            return [obj.object_name for obj in listed if obj.object_name and obj.is_dir]

        return self._call("listing", prefix, prefixes)

    def list_objects(self, prefix: str) -> list[ListedObject]:
        """Every object under `prefix` with its size and modification time (for retention decisions)."""

        def objects() -> list[ListedObject]:
            listed = self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return [
                ListedObject(key=obj.object_name, size_bytes=obj.size or 0,
                             modified_at=obj.last_modified.timestamp() if obj.last_modified else 0.0)
                for obj in listed if obj.object_name and not obj.is_dir
            ]

        return self._call("listing", prefix, objects)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under `prefix`; the number deleted. Raises StoreError if any deletion failed."""
        keys = self.list_keys(prefix)
        if not keys:
            return 0
        # remove_objects is lazy: it sends nothing until its error iterator is consumed.
        failures = self._call(
            "deleting",
            prefix,
            lambda: list(self._client.remove_objects(self.bucket, [DeleteObject(key) for key in keys])),
        )
        if failures:
            shown = ", ".join(f"{failure.name} ({failure.code})" for failure in failures[:5])
            raise StoreError(
                f"S3 at {self._settings.endpoint} failed to delete {len(failures)} of {len(keys)} objects "
                f"under {self.bucket}/{prefix}: {shown}; check the store's log and retry"
            )
        return len(keys)

    # -- multipart uploads: an object written part by part, by any process holding the upload id ------------

    def start_multipart(self, key: str, *, content_type: str = "application/octet-stream") -> str:
        """Open a multipart upload of `key`; its upload id. Raises StoreError."""
        return self._call("starting a multipart upload of", key, lambda: self._client._create_multipart_upload(
            self.bucket, key, {"Content-Type": content_type}))

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> StoredPart:
        """Store part `number` (1..MAX_PARTS) of an open multipart upload; every part but the last must be at
        least MIN_PART_BYTES (the store refuses the completion otherwise). Writing a number again replaces
        the part. Raises MultipartMissing when the upload was completed or aborted, StoreError otherwise."""
        if not 1 <= number <= MAX_PARTS:
            raise ValueError(f"part number {number} is outside 1..{MAX_PARTS}")
        etag = self._call("writing a part of", key, lambda: self._client._upload_part(
            self.bucket, key, data, None, upload_id, number), upload_id=upload_id)
        return StoredPart(number=number, etag=etag, size_bytes=len(data))

    def complete_multipart(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        """Join `parts` (ascending numbers) into the object `key`; parts of the upload not listed are dropped.

        Safe to repeat: when the upload is already gone (a completion whose answer was lost) but `key`
        exists with the parts' total size, the earlier completion stands. Raises MultipartMissing when the
        upload is gone and the object is not that, StoreError otherwise (e.g. a part below MIN_PART_BYTES).
        """
        expected = sum(part.size_bytes for part in parts)
        try:
            self._call("completing the multipart upload of", key, lambda: self._client._complete_multipart_upload(
                self.bucket, key, upload_id, [Part(part.number, part.etag) for part in parts]), upload_id=upload_id)
        except MultipartMissing:
            try:
                if self.stat(key).size_bytes == expected:
                    return
            except ObjectMissing:
                pass
            raise

    def abort_multipart(self, key: str, upload_id: str) -> bool:
        """Abort an open multipart upload, freeing its parts; False if it was already gone. Raises StoreError."""
        try:
            self._call("aborting the multipart upload of", key, lambda: self._client._abort_multipart_upload(
                self.bucket, key, upload_id), upload_id=upload_id)
        except MultipartMissing:
            return False
        return True

    def list_multipart(self, prefix: str) -> list[OpenMultipart]:
        """The multipart uploads open under `prefix` (for finding abandoned ones). Raises StoreError.

        Pages are followed with S3's markers (key, then upload id), as MinIO and AWS order them. SeaweedFS
        orders a page by upload id instead and gives nothing after its first 1000: callers that abort what
        they find get the rest on their next call."""

        def uploads() -> list[OpenMultipart]:
            found: list[OpenMultipart] = []
            key_marker = upload_id_marker = None
            while True:
                page = self._client._list_multipart_uploads(self.bucket, prefix=prefix, key_marker=key_marker,
                                                            upload_id_marker=upload_id_marker)
                found.extend(OpenMultipart(key=upload.object_name, upload_id=upload.upload_id,
                                           initiated_at=upload.initiated_time.timestamp()
                                           if upload.initiated_time else 0.0)
                             for upload in page.uploads)
                if not page.is_truncated or not page.uploads:
                    return found
                # the markers of the last upload listed (minio mislays NextUploadIdMarker)
                key_marker, upload_id_marker = page.uploads[-1].object_name, page.uploads[-1].upload_id
                if any(item.upload_id == upload_id_marker for item in found[:-1]):
                    return found            # a store that pages back to where it was: stop, not loop

        return self._call("listing multipart uploads under", prefix, uploads)

    def _call(self, action: str, key: str | None, fn: Callable[[], T], *, offset: int = 0,
              upload_id: str | None = None) -> T:
        retrying = self._retrying.copy(before_sleep=functools.partial(self._log_retry, action, key))
        try:
            return retrying(fn)
        except FOREIGN_ERRORS as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise self._translate(exc, action, key, attempts=attempts, offset=offset, upload_id=upload_id) from exc

    def _log_retry(self, action: str, key: str | None, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "S3 at %s: %s %s failed (attempt %d): %s; retrying in %.2f s",
            self._settings.endpoint,
            action,
            self._target(key),
            state.attempt_number,
            describe(exc),
            state.upcoming_sleep,
        )

    def _target(self, key: str | None) -> str:
        return f"{self.bucket}/{key}" if key is not None else f"bucket {self.bucket}"

    def _translate(self, exc: BaseException, action: str, key: str | None, *, attempts: int,
                   offset: int = 0, upload_id: str | None = None) -> StoreError:
        return translate(exc, action, endpoint=self._settings.endpoint, bucket=self.bucket, target=self._target(key),
                         key=key, attempts=attempts, offset=offset, upload_id=upload_id)
