"""Thumbnails on demand: the picture at any time of an episode, at a bounded set of widths, decoded from
the published renditions and kept in the object store after first use.

    GET /thumbnails/{S}/{E}.jpg?time=12.5&width=320&token=T

A request is snapped to the episode's frame grid (the frame nearest `time`, from the renditions'
FRAME-RATE) and to the smallest configured width at or above the asked one, so the cache holds at most
frames x widths pictures per media version, whatever a scraper asks. The picture is decoded from the
smallest rendition at least that wide (less to decrypt and decode), from the one segment covering the
time (packager/publishing/seek.py, pipeline/pictures/thumbnail.py: last keyframe at or before it, at most one GOP).

Cached pictures live under the media version's prefix, v{m}/thumbnails/{width}/{frame}.{jpg|webp}, so
garbage collection removes them with the version they show. (A cache write marks that prefix as
written to, which keeps a superseded version at most one grace period longer.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction

import m3u8

from drm.keystore import KeyStore
from packager.errors import ObjectMissing
from packager.publishing.publish import MASTER_NAME
from packager.publishing.seek import TimeOutsideEpisode, read_segment_at
from packager.publishing.version_manifest import media_version_of
from packager.publishing.versions import EpisodeLocation
from packager.store import ObjectStore
from pipeline.errors import PictureWidthOutOfRange
from pipeline.pictures.thumbnail import MAX_WIDTH_PX, MIN_WIDTH_PX, thumbnail

log = logging.getLogger(__name__)

THUMBNAILS_DIR = "thumbnails"
KEY_URI_PREFIX = "/v1/keys/"
EXTENSIONS = {"jpeg": "jpg", "webp": "webp"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedThumbnail:
    time_s: float                 # the time of the frame shown (on the frame grid)
    width: int                    # the width drawn (a configured width)
    image_format: str             # "jpeg" or "webp"
    data: bytes = field(repr=False)
    is_cached: bool               # True: read from the store's cache

    @property
    def content_type(self) -> str:
        return f"image/{self.image_format}"


def snapped_width(asked: int, widths: tuple[int, ...]) -> int:
    """The smallest of `widths` (ascending) at or above `asked`, else the largest. Raises PictureWidthOutOfRange."""
    if not MIN_WIDTH_PX <= asked <= MAX_WIDTH_PX:
        raise PictureWidthOutOfRange(asked, MIN_WIDTH_PX, MAX_WIDTH_PX)
    return next((width for width in widths if width >= asked), widths[-1])


def render_thumbnail(store: ObjectStore, keystore: KeyStore, location: EpisodeLocation, *, version: int,
                     duration_s: float, at_s: float, width: int, image_format: str = "jpeg") -> RenderedThumbnail:
    """The picture of `version` (live) nearest `at_s` seconds, `width` pixels wide (already snapped).

    Raises TimeOutsideEpisode (before 0 or at/after the end), ObjectMissing, StoreError, PictureError.
    """
    if not 0 <= at_s < duration_s:
        raise TimeOutsideEpisode(f"time {at_s:g} s is outside the episode (0 to {duration_s:.3f} s); "
                                 "choose a time within the episode")
    prefix = location.version_prefix(version)
    master = m3u8.loads(store.get_bytes(f"{prefix}/{MASTER_NAME}").decode())
    variant = _variant_for(master, width)
    fps = Fraction(str(variant.stream_info.frame_rate or 25)).limit_denominator(1001)
    frame = round(Fraction(str(at_s)) * fps)
    last_frame = max(0, int(Fraction(str(duration_s)) * fps) - 1)
    frame = min(frame, last_frame)
    frame_time = Fraction(frame) / fps
    media_version = media_version_of(store, location, version)
    cache_key = (f"{location.version_prefix(media_version)}/{THUMBNAILS_DIR}/{width}/"
                 f"{frame:07d}.{EXTENSIONS[image_format]}")
    try:
        data = store.get_bytes(cache_key)
        return RenderedThumbnail(time_s=float(frame_time), width=width, image_format=image_format, data=data,
                                 is_cached=True)
    except ObjectMissing:
        pass
    found = read_segment_at(store, prefix, variant.uri, float(frame_time), key_for_uri=_key_lookup(keystore, location))
    picture = thumbnail(found.plaintext, at_s=float(frame_time), segment_start_s=found.start_s, width=width,
                        image_format=image_format, init=found.init)
    try:
        store.put_bytes(cache_key, picture.data, content_type=picture.content_type,
                        cache_control="private, max-age=86400")
    except Exception:  # the picture is made: a failed cache write costs the next request a decode
        log.warning("could not cache thumbnail %s", cache_key, exc_info=True)
    return RenderedThumbnail(time_s=float(picture.time_s), width=picture.width, image_format=image_format,
                             data=picture.data, is_cached=False)


def _variant_for(master: m3u8.M3U8, width: int):
    """The narrowest variant at least `width` wide, else the widest."""
    by_width = sorted(master.playlists, key=lambda variant: (variant.stream_info.resolution or (0, 0))[0])
    if not by_width:
        raise ObjectMissing("the master playlist lists no variant")
    return next((variant for variant in by_width if (variant.stream_info.resolution or (0, 0))[0] >= width),
                by_width[-1])


def _key_lookup(keystore: KeyStore, location: EpisodeLocation):
    return lambda uri: keystore.episode_key(uri.split("?", 1)[0].removeprefix(KEY_URI_PREFIX),
                                            location.series_id, location.episode_id)
