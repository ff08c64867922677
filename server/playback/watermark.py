"""A/B delivery of watermarked episodes: each playback session's media playlists list its own sequence of
variants, and the session is recorded before its first such playlist is served.

Segment i of a marked rendition is served as variant B when session_bits(secret, session_id, count)[i] is 1
(A otherwise): a keyed hash of the token's session id, so the sequence needs no storage and is the same
on every instance, in every rendition (a player switching rungs keeps its sequence) and on every
refresh of the token (the session id is kept). Segment URIs stay plain object names: both variants are
public ciphertext, cacheable by any CDN, and the playlist, which is private (no-store), is all that differs
between viewers.

I-frame playlists list variant A, as stored: their byte ranges are measured on A's first picture (B's may
end elsewhere), and what they expose, one IDR picture per 2 s segment for trick play, is no episode a
leaker could publish.

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
from packager.publishing.watermark_variants import b_variant
from pipeline.watermark import session_bits
from server.access.memory import MISSING, AnswerCache
from server.config.watermark import WatermarkUnavailable
from server.services import SERVICES

_FOREVER_S = float("inf")


class RecordedSessions:
    """(series, episode, media version, session) already recorded by this process; event loop only."""

    def __init__(self, max_entries: int) -> None:
        self._known = AnswerCache(max_entries, max_age_s=_FOREVER_S)
        self._writing: dict[Hashable, asyncio.Future] = {}

    async def ensure(self, key: Hashable, write: Callable[[], Awaitable[object]]) -> None:
        """Run `write` unless `key` was recorded (or is being recorded) by this process; raises what it raises."""
        if self._known.get(key, 0.0) is not MISSING:
            return
        pending = self._writing.get(key)
        if pending is not None:
            await asyncio.shield(pending)
            return
        pending = self._writing[key] = asyncio.get_running_loop().create_future()
        try:
            await write()
        except BaseException as exc:
            pending.set_exception(exc)
            pending.exception()       # retrieved here: waiters re-raise it, and none may be waiting
            raise
        else:
            self._known.put(key, True, 0.0)
            pending.set_result(None)
        finally:
            del self._writing[key]


RECORDED = web.AppKey("watermark_recorded", RecordedSessions)


def install(app: web.Application, max_entries: int) -> None:
    app[RECORDED] = RecordedSessions(max_entries)


def choose_variants(text: str, bits: Sequence[int]) -> str:
    """The media playlist `text` with segment i's URI turned into its B variant where bits[i] is 1.

    Raises ValueError when the playlist lists another number of segments than `bits` covers.
    """
    lines = text.splitlines()
    uris = [i for i, line in enumerate(lines) if line and not line.startswith("#")]
    if len(uris) != len(bits):
        raise ValueError(f"the playlist lists {len(uris)} segments, the watermark covers {len(bits)}")
    for line_index, bit in zip(uris, bits, strict=True):
        if bit:
            lines[line_index] = b_variant(lines[line_index])
    return "\n".join(lines) + "\n"


async def viewer_variants(app: web.Application, viewer: PlaybackToken, location: EpisodeLocation,
                          manifest: VersionManifest | None, rendition: str, text: str) -> str:
    """The viewer's media playlist of `rendition`: `text` (personalised) with this session's variants when the
    version is watermarked and the rendition marked, after recording the session; `text` unchanged otherwise.

    Raises WatermarkUnavailable without the service's secret, DatabaseUnavailable if the record fails.
    """
    marks = manifest.watermark if manifest is not None else None
    if marks is None or rendition not in marks.renditions:
        return text
    services = app[SERVICES]
    secret = services.settings.watermark.secret
    if secret is None:
        raise WatermarkUnavailable(location.series_id)
    media_version = manifest.media_version
    record = services.watermark_sessions.record

    async def write() -> None:
        await asyncio.to_thread(record, series_id=location.series_id, episode_id=location.episode_id,
                                version=media_version, session_id=viewer.session_id, viewer_id=viewer.viewer_id)

    await app[RECORDED].ensure((location.series_id, location.episode_id, media_version, viewer.session_id), write)
    return choose_variants(text, session_bits(secret, viewer.session_id, marks.segment_count))
