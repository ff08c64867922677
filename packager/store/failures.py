"""What a minio or urllib3 error means: transient or not, and the StoreError (or leaf) an operator can act on.

Kept beside the client (packager/store/client.py) because only this sub-package may import minio.
"""

from __future__ import annotations

import ssl

import urllib3
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from packager.errors import MultipartMissing, ObjectMissing, RangeNotSatisfiable, StoreError

_CREDENTIAL_CODES = frozenset({"SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken"})
# RequestTimeout is a 400 in AWS, yet every AWS SDK retries it.
_TRANSIENT_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"})
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject"})
_CREDENTIALS_HINT = "check SERIES_S3_ACCESS_KEY / SERIES_S3_SECRET_KEY"
FOREIGN_ERRORS = (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError)


def http_status(exc: BaseException) -> int | None:
    if isinstance(exc, S3Error):
        return exc.response.status if exc.response is not None else None
    if isinstance(exc, ServerError):
        return exc.status_code
    if isinstance(exc, InvalidResponseError):
        return getattr(exc, "_code", None)  # minio keeps the status only privately here
    return None


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, (ssl.SSLError, urllib3.exceptions.SSLError, ValueError)):
        return False  # bad certificate or bad URL: retrying cannot help
    return isinstance(exc, (urllib3.exceptions.HTTPError, OSError))


def is_transient(exc: BaseException) -> bool:
    """Connection errors, timeouts, 5xx and S3's throttling codes; never a 4xx."""
    if isinstance(exc, S3Error) and exc.code in _TRANSIENT_CODES:
        return True
    status = http_status(exc)
    if status is not None:
        return status >= 500
    return is_connection_error(exc)


def translate(exc: BaseException, action: str, *, endpoint: str, bucket: str, target: str, key: str | None,
              attempts: int, offset: int = 0, upload_id: str | None = None) -> StoreError:
    """One StoreError (or a leaf of it) naming what failed and what to check, for an error minio or urllib3 raised."""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if isinstance(exc, S3Error):
        code = exc.code
        if code == "NoSuchUpload" and key is not None and upload_id is not None:
            return MultipartMissing(bucket, key, upload_id)
        if code in MISSING_CODES and key is not None:
            return ObjectMissing(bucket, key)
        if code == "InvalidRange" and key is not None:
            return RangeNotSatisfiable(bucket, key, offset)
        if code == "NoSuchBucket":
            return StoreError(
                f"S3 at {endpoint}: bucket {bucket!r} does not exist ({action} {target}); "
                "create it with ensure_bucket() or check SERIES_S3_BUCKET"
            )
        if code in _CREDENTIAL_CODES:
            return StoreError(
                f"S3 at {endpoint} refused the credentials ({code}) while {action} {target}; {_CREDENTIALS_HINT}"
            )
        if code == "AccessDenied":
            return StoreError(
                f"S3 at {endpoint} denied access ({code}) while {action} {target}; "
                f"{_CREDENTIALS_HINT} and the permissions of that user on bucket {bucket!r}"
            )
    if is_transient(exc) and http_status(exc) is not None:
        return StoreError(
            f"S3 at {endpoint} kept failing while {action} {target}{tries}: {describe(exc)}; "
            "the store is overloaded or unhealthy, check its log"
        )
    if is_connection_error(exc):
        return StoreError(
            f"S3 at {endpoint} is unreachable while {action} {target}{tries}: {describe(exc)}; "
            "check that the store is running and SERIES_S3_ENDPOINT (host:port, no scheme)"
        )
    if isinstance(exc, ValueError):
        detail = str(exc) or "empty bucket or object name"
        return StoreError(f"S3 request {action} {target} is invalid ({detail}); check SERIES_S3_BUCKET and the key")
    return StoreError(f"S3 at {endpoint} rejected {action} {target}: {describe(exc)}")


def describe(exc: BaseException | None) -> str:
    if isinstance(exc, S3Error):
        return f"{exc.code} (HTTP {http_status(exc)}): {exc.message}"
    if isinstance(exc, (ServerError, InvalidResponseError)):
        return f"HTTP {http_status(exc)} without an S3 error body"
    return f"{type(exc).__name__}: {exc}"
