"""Validation of the ids that name viewers, series, episodes, keys and sessions."""

from __future__ import annotations

import re

from drm.errors import ID_PATTERN, InvalidField, InvalidId

_ID_RE = re.compile(ID_PATTERN)


def check_id(kind: str, value: str) -> str:
    """Return ``value`` unchanged if it is a valid id, else raise InvalidId naming ``kind``.

    Ids become object-store path parts and URL segments, so anything that could
    traverse ("../x"), nest ("a/b") or be empty is refused here, at the edge.
    """
    # fullmatch, not match: "$" alone also matches before a trailing "\n".
    if not isinstance(value, str) or _ID_RE.fullmatch(value) is None:
        raise InvalidId(kind, value)
    return value


def field_id(field: str, value: object) -> str:
    """check_id for a request field: a bad value is an InvalidField (422), not an unknown path (404)."""
    try:
        return check_id(field, value)  # type: ignore[arg-type]
    except InvalidId as exc:
        raise InvalidField(field, str(exc)) from exc
