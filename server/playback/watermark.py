"""A/B delivery of watermarked episodes: each playback session's media playlists list its own sequence of
variants, and the session is recorded before its first such playlist is served.

Segment i of a marked rendition is served as variant B when session_bits(secret, session_id, count)[i] is 1
(A otherwise): a keyed hash of the token's session id, so the sequence needs no storage and is the same
on every instance, in every rendition (a player switching rungs keeps its sequence) and on every
refresh of the token (the session id is kept). Segment URIs stay object names: both variants are
public ciphertext, cacheable by any CDN, and the playlist, which is private (no-store), is all that differs
between viewers. Each variant's name carries a tag keyed by the version's variant key, kept in version.json
(packager/publishing/watermark_variants.py): the names a session sees are its own variants', and from them
it cannot derive the others', so it cannot assemble an all-A (or any other) copy that hides it. The names
come from the manifest, not from memory: the same on every instance and every refresh.

I-frame playlists list the session's variants too, each with its own range (A's as stored, B's from the
manifest, as the first pictures of A and B may end at different bytes): listing A there, as stored,
would hand every viewer the names of all A segments, whole objects a player's range does not limit.

The record (drm/access/watermark_sessions.py) is written in a thread, off the event loop and off the key path,
once per (session, media version of the episode) and process: later fetches, of any rendition, are
answered from memory, and concurrent first fetches share one write. It is awaited before the playlist is
served, so a session that received A/B segments always has its row; a failed write fails the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence

from aiohttp import web

from drm.access.tokens import PlaybackToken
from packager.publishing.version_manifest import VersionManifest
from packager.publishing.versions import EpisodeLocation
from packager.publishing.watermark_variants import variant_uri
from pipeline.watermark import session_bits
from server.access.memory import MISSING, AnswerCache
from server.config.watermark import WatermarkUnavailable
from server.services import SERVICES

_FOREVER_S = float("inf")
_BYTE_RANGE = "#EXT-X-BYTERANGE:"


class RecordedSessions:
    """(series, episode, media version, session) already recorded by this process, with the id of the secret
    its row names; event loop only."""

    def __init__(self, max_entries: int) -> None:
        self._known = AnswerCache(max_entries, max_age_s=_FOREVER_S)
        self._writing: dict[Hashable, asyncio.Future] = {}

    async def ensure(self, key: Hashable, write: Callable[[], Awaitable[str]]) -> str:
        """What `write` returned for `key`, running it unless `key` was recorded (or is being recorded) by this
        process; raises what it raises."""
        known = self._known.get(key, 0.0)
        if known is not MISSING:
            return known
        pending = self._writing.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        pending = self._writing[key] = asyncio.get_running_loop().create_future()
        try:
            recorded = await write()
        except BaseException as exc:
            pending.set_exception(exc)
            pending.exception()       # retrieved here: waiters re-raise it, and none may be waiting
            raise
        else:
            self._known.put(key, recorded, 0.0)
            pending.set_result(recorded)
            return recorded
        finally:
            del self._writing[key]


RECORDED = web.AppKey("watermark_recorded", RecordedSessions)


def install(app: web.Application, max_entries: int) -> None:
    app[RECORDED] = RecordedSessions(max_entries)


def choose_variants(text: str, bits: Sequence[int], variant_key: bytes,
                    b_i_frame_bytes: Sequence[int] | None = None) -> str:
    """The stored media playlist `text` (variant A's names) with segment i renamed to its B variant where
    bits[i] is 1; for an I-frame playlist, `b_i_frame_bytes` gives each B's range length (its
    EXT-X-BYTERANGE is rewritten with the name).

    Raises ValueError when the playlist lists another number of segments than `bits` (or
    `b_i_frame_bytes`) covers, or a URI that names no media segment.
    """
    lines = text.splitlines()
    uris = [i for i, line in enumerate(lines) if line and not line.startswith("#")]
    if len(uris) != len(bits):
        raise ValueError(f"the playlist lists {len(uris)} segments, the watermark covers {len(bits)}")
    if b_i_frame_bytes is not None and len(b_i_frame_bytes) != len(bits):
        raise ValueError(f"the playlist lists {len(uris)} segments, the manifest has {len(b_i_frame_bytes)} "
                         "B I-frame ranges")
    for segment, (line_index, bit) in enumerate(zip(uris, bits, strict=True)):
        if not bit:
            continue
        lines[line_index] = variant_uri(lines[line_index], variant_key, "b")
        if b_i_frame_bytes is not None:
            lines[_byte_range_line(lines, line_index)] = f"{_BYTE_RANGE}{b_i_frame_bytes[segment]}@0"
    return "\n".join(lines) + "\n"


def _byte_range_line(lines: Sequence[str], uri_line: int) -> int:
    """The index of the EXT-X-BYTERANGE tag of the segment whose URI is lines[uri_line]; ValueError if none."""
    for index in range(uri_line - 1, -1, -1):
        if lines[index].startswith(_BYTE_RANGE):
            return index
        if lines[index] and not lines[index].startswith("#"):
            break               # the previous segment's URI: this one has no range
    raise ValueError(f"I-frame segment {lines[uri_line]!r} has no EXT-X-BYTERANGE")


async def viewer_variants(app: web.Application, viewer: PlaybackToken, location: EpisodeLocation,
                          manifest: VersionManifest | None, rendition: str, text: str, *,
                          is_i_frames: bool = False) -> str:
    """The viewer's media (or, `is_i_frames`, I-frame) playlist of `rendition`: `text` (personalised) with this
    session's variants when the version is watermarked and the rendition marked, after recording the session;
    `text` unchanged otherwise.

    Raises WatermarkUnavailable without the service's secret, SessionSecretRetired when the session was
    recorded under a secret the service no longer has, DatabaseUnavailable if the record fails.
    """
    marks = manifest.watermark if manifest is not None else None
    if marks is None or rendition not in marks.renditions:
        return text
    services = app[SERVICES]
    watermark = services.settings.watermark
    if not watermark.is_configured:
        raise WatermarkUnavailable(location.series_id)
    media_version = manifest.media_version
    record = services.watermark_sessions.record

    def write() -> Awaitable[str]:
        return asyncio.to_thread(record, series_id=location.series_id, episode_id=location.episode_id,
                                 version=media_version, session_id=viewer.session_id, viewer_id=viewer.viewer_id,
                                 secret_id=watermark.secret_id)

    recorded = await app[RECORDED].ensure((location.series_id, location.episode_id, media_version,
                                           viewer.session_id), write)
    # the secret the session's row names: a session keeps its sequence when the secret is rotated while it
    # plays ('' is a row from before secrets had ids, keyed with the secret the service had then: this one)
    secret = watermark.secret_for(recorded) if recorded else watermark.secret
    b_i_frame_bytes = marks.b_i_frame_bytes.get(rendition, ()) if is_i_frames else None
    return choose_variants(text, session_bits(secret, viewer.session_id, marks.segment_count), marks.variant_key,
                           b_i_frame_bytes)
