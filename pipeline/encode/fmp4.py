"""Fragmented MP4 (fMP4) segments for HLS: how the muxer is set up, and how its output is cut.

One `mp4` muxer per rendition writes a single fragmented file, and that file is then cut at its box
boundaries into the clear init segment (ftyp + moov, no samples) and one `.m4s` media segment per HLS
segment (moof + mdat). Why this and not FFmpeg's `hls` muxer or the `segment` muxer with mp4:

- one muxer for the whole rendition keeps `tfdt` (baseMediaDecodeTime) continuous by construction,
  where a muxer per segment (the segment muxer) starts each file's timeline again;
- fragments start only at video keyframes (`frag_keyframe`), and `min_frag_duration` skips the GOP
  IDRs inside a segment, so each segment is exactly one moof + mdat starting with the forced IDR at
  the same frame numbers as the TS cuts (renditions stay aligned); the `hls` muxer cuts by time,
  which misses cuts with B-frames like the segment muxer's time test does (see transcode.py);
- `empty_moov` keeps samples out of the init segment, `default_base_moof` makes every trun offset
  relative to its own moof (a segment is self-contained once cut out), `negative_cts_offsets`
  (trun version 1) lets B-frames reorder without an edit list, which fragmented files cannot carry.

The brand is iso6, not CMAF's cmfc: our segments mux audio with video, and a CMAF track holds one
media stream, so claiming cmfc would be false. RFC 8216 §3.3 fMP4 needs neither.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import TranscodeError

INIT_NAME = "init.mp4"
FRAGMENTED_NAME = "fragmented.mp4"       # the muxer's whole output, cut up and removed by split()
MEDIA_SEGMENT_PATTERN = "seg_{:05d}.m4s"
_COPY_CHUNK_BYTES = 1 << 20


class SegmentFormat(StrEnum):
    """The container of HLS media segments: MPEG-TS (the default, widest support) or fMP4."""

    TS = "ts"
    FMP4 = "fmp4"


def muxer_options(*, gop_s: float, segment_every_gops: int) -> dict[str, str]:
    """Options for FFmpeg's `mp4` muxer that make one fragment per HLS segment.

    A fragment is cut at the first video keyframe at least `min_frag_duration` after its start.
    IDRs come every `gop_s`, segments every `segment_every_gops` GOPs: half a GOP short of a segment
    passes over the IDRs inside the segment and stops at the next segment's first IDR, even when
    frame rounding (29.97 fps) moves an IDR by a frame.
    """
    min_fragment_s = (segment_every_gops - 0.5) * gop_s
    return {
        "movflags": "+frag_keyframe+empty_moov+default_base_moof+negative_cts_offsets+skip_trailer",
        "min_frag_duration": str(int(min_fragment_s * 1_000_000)),
    }


def _box_header(header: bytes, offset: int, end: int) -> tuple[bytes, int]:
    size, kind = struct.unpack_from(">I4s", header)
    if size == 1:                     # 64-bit largesize follows the type
        size = struct.unpack_from(">Q", header, 8)[0]
    elif size == 0:                   # the box runs to the end of the data
        size = end - offset
    if size < 8 or offset + size > end:
        raise TranscodeError(f"fragmented MP4: box {kind!r} at offset {offset} claims {size} bytes, "
                             f"past the end of the data ({end})")
    return kind, size


def _iter_file_boxes(handle: BinaryIO, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, offset, size) of each top-level box of an open file, reading box headers only: a 20-minute
    rendition never sits in memory. packager/fragmented_mp4.boxes() is the in-memory parser."""
    offset = 0
    while offset + 8 <= end:
        handle.seek(offset)
        kind, size = _box_header(handle.read(16), offset, end)
        yield kind, offset, size
        offset += size


def split(directory: Path) -> tuple[Path, list[Path]]:
    """Cut directory/fragmented.mp4 into init.mp4 and one seg_NNNNN.m4s per fragment.

    Returns (init path, segment paths). The caller checks the count against its frame grid, as it
    does for the TS segment muxer. Raises TranscodeError when the file has no moov or no fragment.
    Streams the file: memory stays at one copy buffer whatever the episode's length.
    """
    source = directory / FRAGMENTED_NAME
    with source.open("rb") as handle:
        end = os.fstat(handle.fileno()).st_size
        boxes = list(_iter_file_boxes(handle, end))      # top-level boxes only: a few per segment
        fragment_starts = [offset for kind, offset, _ in boxes if kind == b"moof"]
        if not fragment_starts or not any(kind == b"moov" for kind, _, _ in boxes):
            raise TranscodeError(f"{directory.name}: the fMP4 muxer wrote no moov or no fragment")
        init_path = directory / INIT_NAME
        _copy_range(handle, 0, fragment_starts[0], init_path)
        # skip_trailer: no mfra after the last fragment, so each fragment runs to the next one
        bounds = [*fragment_starts, end]
        paths = []
        for index in range(len(fragment_starts)):
            path = directory / MEDIA_SEGMENT_PATTERN.format(index)
            _copy_range(handle, bounds[index], bounds[index + 1], path)
            paths.append(path)
    source.unlink()
    return init_path, paths


def _copy_range(handle: BinaryIO, start: int, end: int, destination: Path) -> None:
    handle.seek(start)
    remaining = end - start
    with destination.open("wb") as out:
        while remaining:
            chunk = handle.read(min(remaining, _COPY_CHUNK_BYTES))
            if not chunk:
                raise TranscodeError(f"fragmented MP4 ended {remaining} bytes early while cutting {destination.name}")
            out.write(chunk)
            remaining -= len(chunk)

