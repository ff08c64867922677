"""problem_for(): an error a handler raised, answered as application/problem+json with its HTTP status."""

from __future__ import annotations

import json
import logging

from aiohttp import hdrs, web
from multidict import CIMultiDict

from drm import errors as drm_errors
from packager.errors import CaptionTracksConflict, EpisodeNotPublished, LiveVersionChanged, ObjectMissing, StoreError
from packager.publishing.seek import TimeOutsideEpisode
from pipeline.errors import MediaRejected, PictureTimeOutOfRange, PictureWidthOutOfRange

log = logging.getLogger(__name__)

# Errors of pipeline/, packager/ and drm/, which know nothing of HTTP, get their status here. An error
# defined in server/ says its own, as `http_status` on its class (and `auth_realm` on a 401, or
# `retry_after_s` on an instance), so the edge needs no import of the rooms that raise them.
PROBLEM_STATUS: dict[type[Exception], int] = {
    drm_errors.TokenInvalid: 401,          # includes TokenExpired
    drm_errors.NotEntitled: 403,
    drm_errors.SessionLimitReached: 403,   # a new playback session beyond the viewer's limit (Retry-After)
    drm_errors.WrongSeries: 403,
    drm_errors.UnknownKey: 404,
    ObjectMissing: 404,
    drm_errors.InvalidId: 404,             # a malformed id names nothing we have
    MediaRejected: 422,
    StoreError: 503,
    drm_errors.InvalidField: 422,          # a body field out of range, of the wrong type, missing or unknown
    drm_errors.WebhookRejected: 401,       # forged, unsigned or outside the replay window
    drm_errors.NotSeriesOwner: 403,
    drm_errors.CreatorNotEligible: 403,
    drm_errors.UnknownSeries: 404,
    drm_errors.UnknownEpisode: 404,
    drm_errors.SeriesExists: 409,
    drm_errors.EpisodeLimitReached: 409,
    drm_errors.ApplicationRefused: 409,
    drm_errors.EpisodeUnpublished: 403,    # a key of an episode its creator unpublished
    drm_errors.EpisodeDeleted: 410,        # gone: its keys, and its id until gc removes its files
    drm_errors.EpisodeExists: 409,
    drm_errors.SeriesStateConflict: 409,   # series_archived, series_has_buyers
    drm_errors.InvalidCursor: 400,
    drm_errors.IdempotencyKeyReused: 422,  # the IETF Idempotency-Key draft's answers
    drm_errors.IdempotencyKeyInFlight: 409,
    drm_errors.DatabaseUnavailable: 503,
    PictureTimeOutOfRange: 422,            # a poster or thumbnail time outside the episode
    TimeOutsideEpisode: 422,
    PictureWidthOutOfRange: 422,
    CaptionTracksConflict: 409,            # two tracks alike in name, or two defaults
    EpisodeNotPublished: 409,              # captions or a poster for an episode with no live version yet
    LiveVersionChanged: 409,               # a re-ingest went live while a caption change was being built
}
# What a client is told instead of the error's own message, which names internals (a database's host);
# by exact type: looked up on every denied key request
PUBLIC_DETAIL: dict[type[Exception], str] = {
    drm_errors.DatabaseUnavailable: "the database is unavailable; retry in a few seconds",
}
RETRY_AFTER_S = "2"             # on 503: the store or database is expected back soon


def status_for(exc: Exception) -> int | None:
    """The HTTP status for one of our errors; None for anything else (a bug: answered 500)."""
    for cls in type(exc).__mro__:
        if cls in PROBLEM_STATUS:
            return PROBLEM_STATUS[cls]
    return getattr(exc, "http_status", None)


PROBLEM_HEADERS = CIMultiDict({hdrs.CONTENT_TYPE: "application/problem+json; charset=utf-8",
                               hdrs.CACHE_CONTROL: "no-store"})


def problem(status: int, code: str, detail: str, extensions: dict | None = None, **headers: str) -> web.Response:
    """`extensions`: RFC 9457 extension members beside the standard ones (e.g. every reason of a refusal)."""
    body = {"type": f"about:blank#{code}", "title": code.replace("_", " "), "status": status,
            "code": code, "detail": detail, **(extensions or {})}
    # bytes and ready-made headers: a denied key request is answered here, and text= would re-derive
    # the Content-Type header on every call
    response = web.Response(status=status, body=json.dumps(body).encode(), headers=PROBLEM_HEADERS)
    if headers:
        response.headers.update(headers)
    return response


def problem_for(exc: Exception, request: web.BaseRequest) -> web.Response:
    """The application/problem+json answer to an error a handler raised: an HTTPException (4xx, 5xx)
    or one of ours by PROBLEM_STATUS. Anything else is logged with its traceback and answered as a
    plain 500 that shows no internals. server/edge/middleware.py calls this for every handler."""
    if isinstance(exc, web.HTTPException):
        allow = exc.headers.get(hdrs.ALLOW)            # a 405 must say which methods are (RFC 9110 §15.5.6)
        return problem(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason,
                       **({hdrs.ALLOW: allow} if allow else {}))
    status = status_for(exc)
    if status is None:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return problem(500, "internal_error", "the server failed; the error is logged")
    if status >= 500 and not getattr(exc, "is_logged", False):     # is_logged: its raiser logs it, once
        log.warning("%s %s: %s", request.method, request.path, exc)
    code = getattr(exc, "code", "error")
    detail = PUBLIC_DETAIL.get(type(exc)) or str(exc)
    retry_after_s = getattr(exc, "retry_after_s", None)
    if retry_after_s is not None:
        return problem(status, code, detail, **{"Retry-After": str(retry_after_s)})
    if status == 401:
        realm = getattr(exc, "auth_realm", "playback")
        return problem(status, code, detail, **{"WWW-Authenticate": f'Bearer realm="{realm}"'})
    if status == 503:
        return problem(status, code, detail, **{"Retry-After": RETRY_AFTER_S})
    return problem(status, code, detail, getattr(exc, "problem_extensions", None))
