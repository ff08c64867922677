"""Opaque page cursors for keyset pagination: a page ends with the sort key of its last row, and the next
page starts after it, so rows inserted meanwhile never shift the pages (no OFFSET).

A cursor names the listing it came from (with its filters): handed to another listing, or with other
filters, it is refused rather than silently answering something else. Cursors are not signed: one a
client forges can only start a listing it may already read at another place.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from drm.errors import InvalidCursor, InvalidField

MAX_CURSOR_CHARS = 512
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None     # None on the last page


def encode_cursor(listing: str, key: Sequence[object]) -> str:
    """The cursor continuing `listing` after the row whose sort key is `key` (strings and numbers)."""
    payload = json.dumps([listing, list(key)], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str, types: Sequence[type]) -> tuple:
    """The sort key a cursor of `listing` carries, each part of the given type; raises InvalidCursor."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_CHARS:
        raise InvalidCursor(f"cursor must be 1 to {MAX_CURSOR_CHARS} characters, as a previous page gave it")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor("cursor is not one this service gave; pass next_cursor from a previous page") from None
    if not (isinstance(decoded, list) and len(decoded) == 2 and isinstance(decoded[1], list)):
        raise InvalidCursor("cursor is not one this service gave; pass next_cursor from a previous page")
    if decoded[0] != listing:
        raise InvalidCursor("cursor belongs to another listing or to other filters; list again from the first page")
    key = decoded[1]
    if len(key) != len(types) or not all(_is(value, kind) for value, kind in zip(key, types)):
        raise InvalidCursor("cursor is not one this service gave; pass next_cursor from a previous page")
    return tuple(float(value) if kind is float else value for value, kind in zip(key, types))


def _is(value: object, kind: type) -> bool:
    if kind is float:
        return type(value) in (int, float)
    return type(value) is kind


def check_page_size(limit: object, *, maximum: int = MAX_PAGE_SIZE) -> int:
    """A page size of 1..maximum; raises InvalidField (the caller names the parameter `limit`)."""
    if type(limit) is not int or not 1 <= limit <= maximum:
        raise InvalidField("limit", f"expected an integer from 1 to {maximum}, got {limit!r}")
    return limit
