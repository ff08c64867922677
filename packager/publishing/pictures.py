"""Posters and the trick-play storyboard of a version, as objects beside its renditions.

    v{n}/posters/poster_{width}.jpg, poster_{width}.webp      public: the storefront shows them
    v{n}/storyboard/sheet_000.jpg, ...                        gated like thumbnails and captions
    v{n}/storyboard/storyboard.vtt                            cues "sheet_000.jpg#xywh=x,y,w,h"
    v{n}/storyboard/images.m3u8                               the same sheets as an HLS image media playlist

Storyboard: both the WebVTT thumbnails track (what web players' preview plug-ins read) and an image
media playlist named by EXT-X-IMAGE-STREAM-INF in the master (Roku's trick-play format, read by TV
apps; players that do not know the tag ignore it). The sheet URIs in both are relative, so the
server must add the viewer's token to them when it serves the storyboard (they are gated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from packager.hls.playlist import ImageSheet, ImageVariant, render_image_playlist
from packager.publishing.version_manifest import PosterEntry, StoryboardEntry
from packager.store import ObjectStore
from pipeline.pictures.sampler import Poster
from pipeline.pictures.storyboard import Storyboard, render_storyboard_vtt

POSTERS_DIR = "posters"
STORYBOARD_DIR = "storyboard"
STORYBOARD_VTT_NAME = "storyboard.vtt"
IMAGE_PLAYLIST_NAME = "images.m3u8"
IMAGE_CACHE = "public, max-age=31536000, immutable"
_EXTENSIONS = {"jpeg": "jpg", "webp": "webp"}


def poster_name(width: int, image_format: str) -> str:
    return f"poster_{width}.{_EXTENSIONS[image_format]}"


def poster_entry(poster: Poster) -> PosterEntry:
    """What version.json says of `poster`: its time and the objects upload_poster() writes."""
    images = tuple({"width": image.width, "height": image.height, "format": image.format,
                    "name": poster_name(image.width, image.format)} for image in poster.images)
    return PosterEntry(time_s=float(poster.time_s), is_chosen=poster.is_chosen, images=images)


def upload_poster(store: ObjectStore, version_prefix: str, poster: Poster) -> None:
    """Write every image of `poster` under version_prefix/posters/. Raises StoreError."""
    for image in poster.images:
        store.put_bytes(f"{version_prefix}/{POSTERS_DIR}/{poster_name(image.width, image.format)}", image.data,
                        content_type=image.content_type, cache_control=IMAGE_CACHE)


def storyboard_entry(storyboard: Storyboard) -> StoryboardEntry:
    """What version.json says of `storyboard`: its grid and the objects upload_storyboard() writes."""
    return StoryboardEntry(vtt_name=STORYBOARD_VTT_NAME, playlist_name=IMAGE_PLAYLIST_NAME,
                           sheets=tuple(f"sheet_{index:03d}.jpg" for index in range(len(storyboard.sheets))),
                           tile_width=storyboard.tile_size.width, tile_height=storyboard.tile_size.height,
                           columns=storyboard.columns, rows=storyboard.rows, interval_s=storyboard.interval_s,
                           tile_count=storyboard.tile_count)


def upload_storyboard(store: ObjectStore, version_prefix: str, storyboard: Storyboard) -> ImageVariant:
    """Write the sheets, the WebVTT track and the image playlist; the master's entry for them. Raises StoreError."""
    directory = f"{version_prefix}/{STORYBOARD_DIR}"
    entry = storyboard_entry(storyboard)
    names = list(entry.sheets)
    for name, sheet in zip(names, storyboard.sheets):
        store.put_bytes(f"{directory}/{name}", sheet, content_type="image/jpeg", cache_control=IMAGE_CACHE)
    store.put_bytes(f"{directory}/{STORYBOARD_VTT_NAME}",
                    render_storyboard_vtt(storyboard, lambda index: names[index]).encode(),
                    content_type="text/vtt; charset=utf-8", cache_control=IMAGE_CACHE)
    durations = storyboard.sheet_durations_s()
    playlist = render_image_playlist([ImageSheet(uri=name, duration_s=d) for name, d in zip(names, durations)],
                                     tile_width=storyboard.tile_size.width, tile_height=storyboard.tile_size.height,
                                     columns=storyboard.columns, rows=storyboard.rows,
                                     tile_duration_s=storyboard.interval_s)
    store.put_bytes(f"{directory}/{IMAGE_PLAYLIST_NAME}", playlist.encode(),
                    content_type="application/vnd.apple.mpegurl", cache_control=IMAGE_CACHE)
    return image_variant(entry, [len(sheet) for sheet in storyboard.sheets], durations)


def image_variant(entry: StoryboardEntry, sheet_sizes: Sequence[int], durations_s: Sequence) -> ImageVariant:
    """The master's EXT-X-IMAGE-STREAM-INF: BANDWIDTH is the largest sheet's bit rate over what it covers."""
    peak = max((size * 8 / float(duration) for size, duration in zip(sheet_sizes, durations_s) if duration > 0),
               default=0)
    return ImageVariant(uri=f"{STORYBOARD_DIR}/{IMAGE_PLAYLIST_NAME}", bandwidth_bps=max(1, math.ceil(peak)),
                        tile_width=entry.tile_width, tile_height=entry.tile_height)
