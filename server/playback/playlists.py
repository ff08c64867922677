"""Per-viewer playlists: the stored playlists with the viewer's token written into every child URI.

Players do not carry a parent playlist's query string over to relative URIs (KBVE/kbve#14967,
PeerTube#5617), and Safari cannot add headers, so the token must be in each URI itself.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_KEY_URI = re.compile(r'URI="([^"]*)"')


def with_token(uri: str, token: str) -> str:
    separator = "&" if "?" in uri else "?"
    return f"{uri}{separator}token={quote(token, safe='')}"


def master_url(public_url: str, series_id: str, episode_id: str, token: str) -> str:
    """The absolute URL a viewer's player opens for an episode: its master playlist with the token."""
    return with_token(f"{public_url}/v1/series/{series_id}/episodes/{episode_id}/master.m3u8", token)


# master tags whose URI attribute names a playlist of the version: I-frame playlists, subtitle renditions
# (EXT-X-MEDIA), the storyboard's image playlist
_VERSIONED_URI_TAGS = ("#EXT-X-I-FRAME-STREAM-INF:", "#EXT-X-MEDIA:", "#EXT-X-IMAGE-STREAM-INF:")
_STORYBOARD_CUE = re.compile(r"^([^\s#]+)(#xywh=\d+,\d+,\d+,\d+)$")


def personalize_master(text: str, token: str, version: int) -> str:
    """Point variant, I-frame, subtitle and image playlist URIs at the live version's and add the token to
    each, and to the EXT-X-SESSION-KEY URI (it must match the media playlists' key URIs, RFC 8216 §4.3.4.5)."""
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            line = with_token(f"v{version}/{line}", token)
        elif line.startswith(_VERSIONED_URI_TAGS):
            line = _KEY_URI.sub(lambda m: f'URI="{with_token(f"v{version}/{m.group(1)}", token)}"', line)
        elif line.startswith("#EXT-X-SESSION-KEY:"):
            line = _KEY_URI.sub(lambda m: f'URI="{with_token(m.group(1), token)}"', line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def personalize_media(text: str, token: str) -> str:
    """Add the token to every key URI (media and I-frame playlists alike); segment URIs stay as stored
    (ciphertext, cacheable by anyone), and so does an fMP4 EXT-X-MAP URI (the init holds no media)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-KEY:"):
            line = _KEY_URI.sub(lambda m: f'URI="{with_token(m.group(1), token)}"', line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def personalize_uris(text: str, token: str) -> str:
    """Add the token to every URI line of a playlist whose entries are gated: a subtitle playlist's WebVTT
    segments, the storyboard's image playlist's sheets."""
    return "\n".join(with_token(line, token) if line and not line.startswith("#") else line
                     for line in text.splitlines()) + "\n"


def personalize_storyboard(text: str, token: str, base: str = "") -> str:
    """The storyboard's WebVTT thumbnails track with the token on every sheet URI, before the #xywh
    fragment (`sheet_000.jpg?token=T#xywh=0,0,160,90`); `base` is put in front of each (e.g. "v3/storyboard/"
    when served from outside the version's directory)."""
    def rewritten(line: str) -> str:
        match = _STORYBOARD_CUE.match(line)
        return with_token(base + match.group(1), token) + match.group(2) if match else line

    return "\n".join(rewritten(line) for line in text.splitlines()) + "\n"
