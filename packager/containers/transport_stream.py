"""Just enough MPEG-TS (ISO/IEC 13818-1) parsing to find where a segment's first video picture ends.

I-frame playlists address each segment's leading IDR picture as a byte range. The packager must not
import PyAV, and all it needs is packet boundaries: PAT → PMT → the video PID → the offset of the
packet that starts the second video PES (FFmpeg's muxer writes one PES per video access unit).
"""

from __future__ import annotations

from packager.errors import MalformedSegment

PACKET_BYTES = 188
SYNC_BYTE = 0x47
_PAT_PID = 0x0000
# H.264, HEVC, MPEG-2 video: the stream types our segments (or a future pipeline) can carry
_VIDEO_STREAM_TYPES = frozenset({0x1B, 0x24, 0x02})


def first_video_access_unit_end(data: bytes) -> int:
    """Byte offset (a multiple of 188) where the segment's first video access unit ends.

    Everything before it — PAT, PMT, interleaved audio and the whole first picture — is what a
    player needs to show that picture. Raises MalformedSegment when the data has no video stream.
    """
    video_pid: int | None = None
    pmt_pids: set[int] = set()
    video_starts = 0
    for offset in range(0, len(data) - PACKET_BYTES + 1, PACKET_BYTES):
        packet = data[offset:offset + PACKET_BYTES]
        if packet[0] != SYNC_BYTE:
            raise MalformedSegment(f"no MPEG-TS sync byte at offset {offset}; the segment is not a transport stream")
        is_unit_start = bool(packet[1] & 0x40)
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        payload = _payload(packet)
        if pid == video_pid:
            if is_unit_start:
                video_starts += 1
                if video_starts == 2:
                    return offset
        elif video_pid is None and is_unit_start and payload:
            if pid == _PAT_PID:
                pmt_pids.update(_pmt_pids(_section(payload)))
            elif pid in pmt_pids:
                video_pid = _video_pid(_section(payload))
    if video_pid is None or video_starts == 0:
        raise MalformedSegment("the segment has no video stream (no H.264/HEVC PID in its PMT)")
    return (len(data) // PACKET_BYTES) * PACKET_BYTES


def _payload(packet: bytes) -> bytes:
    adaptation_field_control = (packet[3] >> 4) & 0x3
    start = 4
    if adaptation_field_control & 0x2:
        start += 1 + packet[4]
    if not adaptation_field_control & 0x1:
        return b""
    return packet[start:]


def _section(payload: bytes) -> bytes:
    """The PSI section a payload starts (after its pointer_field), cut to section_length, CRC dropped."""
    start = 1 + payload[0]
    section = payload[start:]
    if len(section) < 3:
        return b""
    length = ((section[1] & 0x0F) << 8) | section[2]
    return section[:3 + length - 4]


def _pmt_pids(pat: bytes) -> set[int]:
    pids = set()
    for entry in range(8, len(pat) - 3, 4):
        program_number = (pat[entry] << 8) | pat[entry + 1]
        if program_number != 0:        # program 0 is the network PID, not a PMT
            pids.add(((pat[entry + 2] & 0x1F) << 8) | pat[entry + 3])
    return pids


def _video_pid(pmt: bytes) -> int | None:
    if len(pmt) < 12:
        return None
    program_info_length = ((pmt[10] & 0x0F) << 8) | pmt[11]
    position = 12 + program_info_length
    while position + 5 <= len(pmt):
        stream_type = pmt[position]
        pid = ((pmt[position + 1] & 0x1F) << 8) | pmt[position + 2]
        info_length = ((pmt[position + 3] & 0x0F) << 8) | pmt[position + 4]
        if stream_type in _VIDEO_STREAM_TYPES:
            return pid
        position += 5 + info_length
    return None


def first_video_pts(data: bytes) -> int:
    """The PTS (90 kHz) of the segment's first video PES: its leading IDR picture, shown first.

    X-TIMESTAMP-MAP in subtitle segments maps cue time 0 to this value (RFC 8216 §3.5).
    Raises MalformedSegment when the segment has no video PES with a PTS.
    """
    video_pid: int | None = None
    pmt_pids: set[int] = set()
    for offset in range(0, len(data) - PACKET_BYTES + 1, PACKET_BYTES):
        packet = data[offset:offset + PACKET_BYTES]
        if packet[0] != SYNC_BYTE:
            raise MalformedSegment(f"no MPEG-TS sync byte at offset {offset}; the segment is not a transport stream")
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        payload = _payload(packet)
        if not packet[1] & 0x40 or not payload:
            continue
        if pid == video_pid:
            return _pes_pts(payload)
        if video_pid is None:
            if pid == _PAT_PID:
                pmt_pids.update(_pmt_pids(_section(payload)))
            elif pid in pmt_pids:
                video_pid = _video_pid(_section(payload))
    raise MalformedSegment("the segment has no video PES (no H.264/HEVC PID in its PMT, or no packet of it)")


def _pes_pts(pes: bytes) -> int:
    # PES header (ISO/IEC 13818-1 §2.4.3.6): start code 00 00 01, stream id, length, flags, PTS 5 bytes
    if len(pes) < 14 or pes[:3] != b"\x00\x00\x01" or not pes[7] & 0x80:
        raise MalformedSegment("the first video PES has no PTS")
    b = pes[9:14]
    return ((b[0] >> 1) & 0x07) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1
