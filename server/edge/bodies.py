"""Request bodies at the API boundary: bounded in size, JSON objects only, no unknown fields."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from aiohttp import web

from drm.errors import InvalidField

MAX_JSON_BYTES = 16 * 1024   # the largest legitimate body (a creator profile) is well under 1 KiB


class BodyTooLarge(Exception):
    code = "body_too_large"
    http_status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit

    def __reduce__(self):
        return type(self), (self.limit,)


class MalformedBody(Exception):
    code = "malformed_body"
    http_status = 400


async def read_bytes(request: web.Request, limit: int = MAX_JSON_BYTES) -> bytes:
    """The whole body, refusing (BodyTooLarge) as soon as it passes ``limit`` bytes, chunked or not."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(limit)
    body = bytearray()
    async for chunk in request.content.iter_chunked(8192):
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)
    return bytes(body)


async def read_object(
    request: web.Request, *, required: Collection[str] = (), optional: Collection[str] = (),
    limit: int = MAX_JSON_BYTES,
) -> dict[str, Any]:
    """A JSON object body with every ``required`` field and nothing outside required + optional.

    Raises BodyTooLarge (413), MalformedBody (400) for a body that is not a JSON object, and
    InvalidField (422) for a missing or unknown field.
    """
    body = await read_bytes(request, limit)
    if request.content_type != "application/json":
        raise MalformedBody(f"send the body as application/json, not {request.content_type or 'nothing'}")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedBody("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    for name in required:
        if name not in data:
            raise InvalidField(name, "is required")
    for name in data:
        if name not in required and name not in optional:
            raise InvalidField(name, "is not a field of this request")
    return data
