"""HTTP statuses for our errors, in one place: problem_for() answers application/problem+json."""

from __future__ import annotations

import json
import logging

from aiohttp import hdrs, web
from multidict import CIMultiDict

from drm.errors import (
    ApplicationRefused,
    CreatorNotEligible,
    EpisodeLimitReached,
    InvalidField,
    InvalidId,
    NotEntitled,
    NotSeriesOwner,
    SeriesExists,
    TokenInvalid,
    UnknownEpisode,
    UnknownKey,
    UnknownSeries,
    WebhookRejected,
    WrongSeries,
)
from packager.errors import ObjectMissing, StoreError
from pipeline.errors import MediaRejected
from server.auth import AuthRequired, Forbidden, NotConfigured
from server.bodies import BodyTooLarge, MalformedBody
from server.ingest_api import IngestRequestError, IngestUnauthorized, UploadNotFound, UploadTooLarge
from server.jobs import IdempotencyConflict, JobNotFound, JobStoreUnavailable, WebhookNotAllowed
from server.ratelimit import RateLimited

log = logging.getLogger(__name__)


class NotPublished(Exception):
    """No version of the episode is live yet."""

    code = "not_published"

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not published")
        self.what = what

    def __reduce__(self):
        return type(self), (self.what,)


PROBLEM_STATUS: dict[type[Exception], int] = {
    TokenInvalid: 401,          # includes TokenExpired
    NotEntitled: 403,
    WrongSeries: 403,
    UnknownKey: 404,
    ObjectMissing: 404,
    InvalidId: 404,             # a malformed id names nothing we have
    MediaRejected: 422,
    StoreError: 503,
    NotPublished: 404,
    # catalog, purchases and the operator API (issue 6)
    InvalidField: 422,          # a body field out of range, of the wrong type, missing or unknown
    MalformedBody: 400,
    BodyTooLarge: 413,
    AuthRequired: 401,
    WebhookRejected: 401,       # forged, unsigned or outside the replay window
    Forbidden: 403,
    NotSeriesOwner: 403,
    CreatorNotEligible: 403,
    UnknownSeries: 404,
    UnknownEpisode: 404,
    SeriesExists: 409,
    EpisodeLimitReached: 409,
    ApplicationRefused: 409,
    NotConfigured: 503,
    IngestUnauthorized: 401,
    IngestRequestError: 400,
    JobNotFound: 404,
    UploadNotFound: 422,
    IdempotencyConflict: 422,   # the IETF Idempotency-Key draft's answer to a reused key
    UploadTooLarge: 413,
    JobStoreUnavailable: 503,
    WebhookNotAllowed: 422,     # a job webhook_url outside SERIES_JOB_WEBHOOK_HOSTS or not http(s)
    RateLimited: 429,
}
RETRY_AFTER_S = "2"             # on 503: the store or database is expected back soon


def status_for(exc: Exception) -> int | None:
    for cls in type(exc).__mro__:
        if cls in PROBLEM_STATUS:
            return PROBLEM_STATUS[cls]
    return None


PROBLEM_HEADERS = CIMultiDict({hdrs.CONTENT_TYPE: "application/problem+json; charset=utf-8",
                               hdrs.CACHE_CONTROL: "no-store"})


def problem(status: int, code: str, detail: str, **headers: str) -> web.Response:
    body = {"type": f"about:blank#{code}", "title": code.replace("_", " "), "status": status,
            "code": code, "detail": detail}
    # bytes and ready-made headers: a denied key request is answered here, and text= would re-derive
    # the Content-Type header on every call
    response = web.Response(status=status, body=json.dumps(body).encode(), headers=PROBLEM_HEADERS)
    if headers:
        response.headers.update(headers)
    return response


def problem_for(exc: Exception, request: web.BaseRequest) -> web.Response:
    """The application/problem+json answer to an error a handler raised: an HTTPException (4xx, 5xx)
    or one of ours by PROBLEM_STATUS. Anything else is logged with its traceback and answered as a
    plain 500 that shows no internals. server/edge.py calls this for every handler."""
    if isinstance(exc, web.HTTPException):
        allow = exc.headers.get(hdrs.ALLOW)            # a 405 must say which methods are (RFC 9110 §15.5.6)
        return problem(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason,
                       **({hdrs.ALLOW: allow} if allow else {}))
    status = status_for(exc)
    if status is None:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return problem(500, "internal_error", "the server failed; the error is logged")
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.path, exc)
    code = getattr(exc, "code", "error")
    if isinstance(exc, RateLimited):
        return problem(status, code, str(exc), **{"Retry-After": str(exc.retry_after_s)})
    if status == 401:
        realm = "ingest" if isinstance(exc, IngestUnauthorized) else "playback"
        return problem(status, code, str(exc), **{"WWW-Authenticate": f'Bearer realm="{realm}"'})
    if status == 503:
        return problem(status, code, str(exc), **{"Retry-After": RETRY_AFTER_S})
    return problem(status, code, str(exc))
