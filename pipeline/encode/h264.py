"""Reading the H.264 bitstream the encoder produced: the SPS and the RFC 6381 codec string from it."""

from __future__ import annotations

from collections.abc import Iterator


def find_sps(annexb: bytes) -> bytes | None:
    for nal in _nal_units(annexb):
        if nal and nal[0] & 0x1F == 7:
            return nal
    return None


def _nal_units(data: bytes) -> Iterator[bytes]:
    starts = [i + 3 for i in range(len(data) - 3) if data[i : i + 3] == b"\x00\x00\x01"]
    for position, start in enumerate(starts):
        end = starts[position + 1] - 3 if position + 1 < len(starts) else len(data)
        yield data[start:end].rstrip(b"\x00")


def avc1_codec(sps: bytes) -> str:
    """RFC 6381 `avc1.PPCCLL` from an H.264 SPS NAL unit (profile_idc, constraint flags, level_idc)."""
    return f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"
