"""The web app's built files (dist/, written by client/build.mjs): each named by a hash of its content,
listed in dist/manifest.json under its logical name ("app.js" -> "app-3F2K7QXU.js"), and served as
immutable for a year. A new build gets new names, so a page never mixes files of two builds."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

DIST = Path(__file__).with_name("dist")
MANIFEST = "manifest.json"
IMMUTABLE = "public, max-age=31536000, immutable"
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml", ".png": "image/png", ".woff2": "font/woff2"}
# a built file's name: a name, a dash, esbuild's 8-character content hash, an extension we serve
_HASHED_NAME = re.compile(r"[A-Za-z0-9_.-]+-[A-Z0-9]{8}\.(?:js|css|svg|png|woff2)")


class WebAssetsMissing(Exception):
    code = "web_assets_missing"
    http_status = 503

    def __init__(self, dist: Path) -> None:
        super().__init__(f"the web app is not built ({dist / MANIFEST} is missing): run `npm ci && npm run build` "
                         "in the project root (./run demo, ./run serve and ./run tests do it)")


@dataclass(frozen=True, slots=True)
class WebAssets:
    dist: Path
    entries: dict[str, str] = field(default_factory=dict)      # logical name -> hashed file name; {}: not built

    @classmethod
    def find(cls, dist: Path | None = None) -> WebAssets:
        dist = dist or DIST
        try:
            entries = json.loads((dist / MANIFEST).read_text())
        except (OSError, ValueError):
            return cls(dist)
        if not isinstance(entries, dict) or not all(isinstance(v, str) and _HASHED_NAME.fullmatch(v)
                                                    for v in entries.values()):
            return cls(dist)
        return cls(dist, entries)

    @property
    def is_built(self) -> bool:
        return bool(self.entries)

    def url(self, logical: str) -> str:
        """/assets/<hashed name> of a logical name; raises WebAssetsMissing when the app is not built."""
        if logical not in self.entries:
            raise WebAssetsMissing(self.dist)
        return f"/assets/{self.entries[logical]}"

    def file(self, name: str) -> tuple[Path, str] | None:
        """The file and content type for /assets/{name}: only a hashed build output (code-split chunks
        included), never anything else under dist/."""
        if not _HASHED_NAME.fullmatch(name):
            return None
        path = self.dist / name
        if not path.is_file():
            return None
        return path, CONTENT_TYPES[path.suffix]
