"""Request bodies at the API boundary: bounded in size and in nesting depth, JSON objects only, no
unknown fields. Every JSON body the service reads is parsed here (parse_json), so a 3000-deep array of
6 KB is a 400 problem, not a RecursionError deep in the json module answered as a 500."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from aiohttp import web

from drm.errors import InvalidField

MAX_JSON_BYTES = 16 * 1024   # the largest legitimate body (a creator profile) is well under 1 KiB
MAX_JSON_DEPTH = 16          # our deepest body (a payment event) nests 2 levels
# a JSON string (skipped whole: brackets inside strings do not nest), or one bracket
_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


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


READ_BODY = web.RequestKey("read_body", bytes)    # a body already read (to fingerprint it): read once


async def read_bytes(request: web.Request, limit: int = MAX_JSON_BYTES) -> bytes:
    """The whole body, refusing (BodyTooLarge) as soon as it passes ``limit`` bytes, chunked or not.
    Read once per request: a second call returns what the first read."""
    if READ_BODY in request:
        return request[READ_BODY]
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(limit)
    body = bytearray()
    async for chunk in request.content.iter_chunked(8192):
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)
    request[READ_BODY] = bytes(body)
    return request[READ_BODY]


def parse_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`body` parsed as JSON, refusing (MalformedBody) anything nested deeper than `max_depth` before the
    parser sees it, and every decode error (bad UTF-8, bad JSON) with a sentence the client can act on."""
    depth = 0
    for match in _STRUCTURE.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise MalformedBody(f"the JSON body nests deeper than {max_depth} levels")
        elif token in (b"]", b"}"):
            depth -= 1
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise MalformedBody("the body is not valid UTF-8 JSON") from None
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise MalformedBody(f"the body is not valid JSON ({str(exc)[:80]})") from None


async def read_json(request: web.Request, *, limit: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The body read with read_bytes (size-bounded) and parsed with parse_json (depth-bounded)."""
    return parse_json(await read_bytes(request, limit), max_depth=max_depth)


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
    data = parse_json(body)
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    for name in required:
        if name not in data:
            raise InvalidField(name, "is required")
    for name in data:
        if name not in required and name not in optional:
            raise InvalidField(name, "is not a field of this request")
    return data
