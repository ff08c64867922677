"""HTTP statuses for our errors, in one place: a middleware answering application/problem+json."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from drm.errors import InvalidId, NotEntitled, TokenInvalid, UnknownKey, WrongSeries
from packager.errors import ObjectMissing, StoreError
from pipeline.errors import MediaRejected
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
    RateLimited: 429,
}


def status_for(exc: Exception) -> int | None:
    for cls in type(exc).__mro__:
        if cls in PROBLEM_STATUS:
            return PROBLEM_STATUS[cls]
    return None


def problem(status: int, code: str, detail: str, **headers: str) -> web.Response:
    body = {"type": f"about:blank#{code}", "title": code.replace("_", " "), "status": status,
            "code": code, "detail": detail}
    return web.Response(status=status, text=json.dumps(body), content_type="application/problem+json",
                        headers={"Cache-Control": "no-store", **headers})


@web.middleware
async def problem_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception as exc:  # noqa: BLE001 - the one place errors become HTTP answers
        status = status_for(exc)
        if status is None:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return problem(500, "internal_error", "the server failed; the error is logged")
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.path, exc)
        code = getattr(exc, "code", "error")
        if isinstance(exc, RateLimited):
            return problem(status, code, str(exc), **{"Retry-After": str(exc.retry_after_s)})
        if status == 401:
            return problem(status, code, str(exc), **{"WWW-Authenticate": 'Bearer realm="playback"'})
        return problem(status, code, str(exc))
