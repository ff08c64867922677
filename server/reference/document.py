"""The OpenAPI document: openapi/base.yaml plus the paths and components of every other file there,
merged once at start-up (never per request: the key path pays nothing for it).

Written by hand rather than generated from the handlers: it is the contract clients read, reviewed as
such, and the handlers stay plain aiohttp with no per-request validation layer. Tests keep it true: every
route the app registers must be described (and nothing else), real responses are validated against it,
and schemathesis runs over every operation (tests/server/reference/).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

DIRECTORY = Path(__file__).with_name("openapi")
BASE = "base.yaml"


class DocumentError(Exception):
    """Two files describe the same path or component, or a file is not a mapping."""


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The merged document (cached: the files do not change while the service runs)."""
    document = _load(DIRECTORY / BASE)
    document.setdefault("paths", {})
    for path in sorted(DIRECTORY.glob("*.yaml")):
        if path.name == BASE:
            continue
        part = _load(path)
        for name, item in part.get("paths", {}).items():
            if name in document["paths"]:
                raise DocumentError(f"{path.name}: path {name} is described twice")
            document["paths"][name] = item
        for section, entries in part.get("components", {}).items():
            merged = document.setdefault("components", {}).setdefault(section, {})
            for name, entry in entries.items():
                if name in merged:
                    raise DocumentError(f"{path.name}: components.{section}.{name} is defined twice")
                merged[name] = entry
    return document


@functools.cache
def openapi_json() -> bytes:
    return json.dumps(openapi_document(), separators=(",", ":")).encode()


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    if not isinstance(loaded, dict):
        raise DocumentError(f"{path.name} is not a YAML mapping")
    return loaded
