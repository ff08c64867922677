"""Just enough ISO BMFF (ISO/IEC 14496-12) parsing to package fMP4 segments.

The counterpart of transport_stream.py: I-frame playlists address each media segment's leading IDR
picture as a byte range from offset 0. For fMP4 that is the moof plus the first video sample in the
mdat; its end comes from the video track's traf (tfhd + trun). The video track's id is read from
the init segment (the trak whose hdlr says 'vide'). No PyAV here (layering).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from packager.errors import MalformedSegment

_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"moof", b"traf"})
# tfhd flags (ISO/IEC 14496-12 §8.8.7)
_TFHD_BASE_DATA_OFFSET = 0x000001
_TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002
_TFHD_DEFAULT_SAMPLE_DURATION = 0x000008
_TFHD_DEFAULT_SAMPLE_SIZE = 0x000010
_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
# trun flags (§8.8.8)
_TRUN_DATA_OFFSET = 0x000001
_TRUN_FIRST_SAMPLE_FLAGS = 0x000004
_TRUN_SAMPLE_DURATION = 0x000100
_TRUN_SAMPLE_SIZE = 0x000200


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, offset, size) of each box in data[start:end], at that level only. Raises MalformedSegment."""
    end = len(data) if end is None else end
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, offset + 8)[0], 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise MalformedSegment(f"box {kind!r} at offset {offset} claims {size} bytes, past the end ({end})")
        yield kind, offset, size
        offset += size


def _children(data: bytes, offset: int, size: int) -> Iterator[tuple[bytes, int, int]]:
    return boxes(data, offset + 8, offset + size)


def _find(data: bytes, offset: int, size: int, kind: bytes) -> tuple[int, int] | None:
    return next(((o, s) for k, o, s in _children(data, offset, size) if k == kind), None)


def is_init_segment(data: bytes) -> bool:
    """True for a clear init segment: ftyp then moov, and no movie fragment or media data."""
    try:
        kinds = [kind for kind, _, _ in boxes(data)]
    except MalformedSegment:
        return False
    return kinds[:2] == [b"ftyp", b"moov"] and b"moof" not in kinds and b"mdat" not in kinds


def video_track_id(init: bytes) -> int:
    """track_ID of the first video trak of an init segment. Raises MalformedSegment without one."""
    for kind, offset, size in boxes(init):
        if kind != b"moov":
            continue
        for trak_kind, trak_offset, trak_size in _children(init, offset, size):
            if trak_kind != b"trak":
                continue
            tkhd, mdia = _find(init, trak_offset, trak_size, b"tkhd"), _find(init, trak_offset, trak_size, b"mdia")
            hdlr = _find(init, *mdia, b"hdlr") if mdia else None
            # hdlr: header, version/flags (4), pre_defined (4), handler_type (4)
            if tkhd and hdlr and init[hdlr[0] + 16:hdlr[0] + 20] == b"vide":
                version = init[tkhd[0] + 8]
                # tkhd: header, version/flags, creation and modification times (4 or 8 bytes each), track_ID
                return struct.unpack_from(">I", init, tkhd[0] + (28 if version == 1 else 20))[0]
    raise MalformedSegment("the init segment has no video track (no trak with a 'vide' handler)")


def first_video_sample_end(segment: bytes, track_id: int) -> int:
    """Byte offset where the first video sample of the segment's first moof ends.

    Everything before it — the moof and the first picture in the mdat — is what a player needs to
    show that picture. Raises MalformedSegment when the segment has no fragment of `track_id`.
    """
    for kind, offset, size in boxes(segment):
        if kind != b"moof":
            continue
        trafs = [(o, s) for k, o, s in _children(segment, offset, size) if k == b"traf"]
        for number, (traf_offset, traf_size) in enumerate(trafs):
            end = _first_sample_end(segment, offset, traf_offset, traf_size, track_id, is_first_traf=number == 0)
            if end is not None:
                return end
        break
    raise MalformedSegment(f"the segment's first moof has no samples of video track {track_id}")


def _first_sample_end(data: bytes, moof_offset: int, traf_offset: int, traf_size: int, track_id: int, *,
                      is_first_traf: bool) -> int | None:
    tfhd, trun = _find(data, traf_offset, traf_size, b"tfhd"), _find(data, traf_offset, traf_size, b"trun")
    if tfhd is None or trun is None:
        return None
    tfhd_flags = int.from_bytes(data[tfhd[0] + 9:tfhd[0] + 12], "big")
    position = tfhd[0] + 12
    if struct.unpack_from(">I", data, position)[0] != track_id:
        return None
    position += 4
    base = moof_offset                     # default-base-is-moof, or the first traf of a moof (§8.8.7.1)
    if tfhd_flags & _TFHD_BASE_DATA_OFFSET:
        base = struct.unpack_from(">Q", data, position)[0]
        position += 8
    elif not tfhd_flags & _TFHD_DEFAULT_BASE_IS_MOOF and not is_first_traf:
        # later trafs would continue after the previous traf's data: never written by our muxer
        raise MalformedSegment("a traf without default-base-is-moof after the first: its data offset is implicit")
    if tfhd_flags & _TFHD_SAMPLE_DESCRIPTION_INDEX:
        position += 4
    if tfhd_flags & _TFHD_DEFAULT_SAMPLE_DURATION:
        position += 4
    default_size = struct.unpack_from(">I", data, position)[0] if tfhd_flags & _TFHD_DEFAULT_SAMPLE_SIZE else None
    trun_flags = int.from_bytes(data[trun[0] + 9:trun[0] + 12], "big")
    sample_count = struct.unpack_from(">I", data, trun[0] + 12)[0]
    if sample_count == 0 or not trun_flags & _TRUN_DATA_OFFSET:
        raise MalformedSegment(f"track {track_id}'s trun has no samples or no data offset")
    data_offset = struct.unpack_from(">i", data, trun[0] + 16)[0]
    position = trun[0] + 20
    if trun_flags & _TRUN_FIRST_SAMPLE_FLAGS:
        position += 4
    if trun_flags & _TRUN_SAMPLE_DURATION:
        position += 4
    size = struct.unpack_from(">I", data, position)[0] if trun_flags & _TRUN_SAMPLE_SIZE else default_size
    if size is None:
        raise MalformedSegment(f"track {track_id}'s first sample has no size in trun or tfhd")
    end = base + data_offset + size
    if end > len(data):
        raise MalformedSegment(f"track {track_id}'s first sample ends at {end}, past the segment ({len(data)} bytes)")
    return end


_TRUN_SAMPLE_FLAGS = 0x000400
_TRUN_SAMPLE_COMPOSITION_OFFSET = 0x000800


def first_video_presentation_90k(init: bytes, segment: bytes) -> int:
    """When the segment's first video sample is shown, in 90 kHz units of the track's timeline.

    tfdt's baseMediaDecodeTime plus the first sample's composition offset (the leading IDR is the first
    sample in decode and in presentation order), in the timescale of the video track's mdhd. This is
    what X-TIMESTAMP-MAP's MPEGTS value means for fMP4 (hls.js and AVPlayer scale it from 90 kHz).
    Raises MalformedSegment.
    """
    track_id = video_track_id(init)
    timescale = _video_timescale(init)
    for kind, offset, size in boxes(segment):
        if kind != b"moof":
            continue
        for traf_kind, traf_offset, traf_size in _children(segment, offset, size):
            if traf_kind != b"traf":
                continue
            tfhd = _find(segment, traf_offset, traf_size, b"tfhd")
            tfdt = _find(segment, traf_offset, traf_size, b"tfdt")
            trun = _find(segment, traf_offset, traf_size, b"trun")
            if not tfhd or not tfdt or struct.unpack_from(">I", segment, tfhd[0] + 12)[0] != track_id:
                continue
            is_64_bit = segment[tfdt[0] + 8] == 1
            decode_time = (struct.unpack_from(">Q", segment, tfdt[0] + 12)[0] if is_64_bit
                           else struct.unpack_from(">I", segment, tfdt[0] + 12)[0])
            return round((decode_time + (_first_composition_offset(segment, trun) if trun else 0)) * 90000 / timescale)
        break
    raise MalformedSegment(f"the segment's first moof has no tfdt for video track {track_id}")


def _first_composition_offset(data: bytes, trun: tuple[int, int]) -> int:
    version = data[trun[0] + 8]
    flags = int.from_bytes(data[trun[0] + 9:trun[0] + 12], "big")
    if not flags & _TRUN_SAMPLE_COMPOSITION_OFFSET:
        return 0
    position = trun[0] + 16
    position += 4 if flags & _TRUN_DATA_OFFSET else 0
    position += 4 if flags & _TRUN_FIRST_SAMPLE_FLAGS else 0
    position += 4 * sum(bool(flags & bit) for bit in (_TRUN_SAMPLE_DURATION, _TRUN_SAMPLE_SIZE, _TRUN_SAMPLE_FLAGS))
    return struct.unpack_from(">i" if version == 1 else ">I", data, position)[0]


def _video_timescale(init: bytes) -> int:
    track_id = video_track_id(init)
    for kind, offset, size in boxes(init):
        if kind != b"moov":
            continue
        for trak_kind, trak_offset, trak_size in _children(init, offset, size):
            tkhd, mdia = _find(init, trak_offset, trak_size, b"tkhd"), _find(init, trak_offset, trak_size, b"mdia")
            if trak_kind != b"trak" or not tkhd or not mdia:
                continue
            version = init[tkhd[0] + 8]
            if struct.unpack_from(">I", init, tkhd[0] + (28 if version == 1 else 20))[0] != track_id:
                continue
            mdhd = _find(init, *mdia, b"mdhd")
            if mdhd:
                # mdhd: header, version/flags, creation and modification times (4 or 8 bytes each), timescale
                return struct.unpack_from(">I", init, mdhd[0] + (28 if init[mdhd[0] + 8] == 1 else 20))[0]
    raise MalformedSegment("the init segment's video track has no mdhd timescale")
