"""The two variants of a watermarked version's segments, and its private reference.

A watermarked rendition's segments exist twice, A and B, differing by an imperceptible mark
(pipeline/watermark). Both are stored side by side in the rendition's directory:

    v{n}/{rendition}/seg_00007.ts       variant A: what the stored media playlist lists
    v{n}/{rendition}/seg_00007.b.ts     variant B: same key, same IV, same duration, same IDR alignment
    v{n}/watermark/reference.bin        what detection needs (holds the seed): never served
    watermark/v{n}.bin                  the same, kept when garbage collection removes v{n} (retention.py)

Side by side rather than a/ and b/ folders: the stored playlists stay exactly those of an unmarked version
(A everywhere), so conformance, verification, republishing (which rebases segment URIs into another
version's directory) and garbage collection (a version is one prefix) treat a watermarked version like any
other; a viewer's playlist turns A into B by a suffix on the segment's name, wherever its URI points.
Same key and IV for both: a viewer's key requests do not tell which variant they play, and the
EXT-X-KEY lines of the stored playlist serve both.

The reference is under the version prefix, so a failed publish discards it with the rest and nothing
refers to an unpublished one; the playback routes serve rendition segments, playlists, captions and
pictures by name pattern, none of which matches it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

import m3u8

from packager.encrypt import decrypt_segment
from packager.publishing.verify import DecodeSegment, resolve
from packager.publishing.versions import EpisodeLocation
from packager.store import ObjectStore

B_MARK = ".b"                                   # seg_00007.ts -> seg_00007.b.ts
REFERENCE_NAME = "watermark/reference.bin"      # under the version prefix
REFERENCE_TYPE = "application/octet-stream"
ARCHIVE_DIR = "watermark"                       # under the episode's prefix, beside the versions
_SEGMENT_NAME = re.compile(r"^(.*seg_\d{5})(\.(?:ts|m4s))$")


@dataclass(frozen=True, slots=True, kw_only=True)
class WatermarkEntry:
    """What version.json says of a watermarked version (absent for an unmarked one)."""

    reference: str                  # the reference's object name under the media version's prefix
    renditions: tuple[str, ...]     # the renditions whose segments have a B variant
    segment_count: int              # per rendition: one bit per segment


def b_variant(uri: str) -> str:
    """The B variant's name (or URI: a relative path is kept) of the A segment `uri`.

    Raises ValueError for a URI that names no media segment (an init segment has no variants).
    """
    path, query = uri.split("?", 1) if "?" in uri else (uri, "")
    match = _SEGMENT_NAME.match(path)
    if match is None:
        raise ValueError(f"{uri!r} is not a media segment's URI")
    return f"{match.group(1)}{B_MARK}{match.group(2)}" + (f"?{query}" if query else "")


def archived_reference_key(location: EpisodeLocation, version: int) -> str:
    """Where the reference of a collected version is kept (under the episode's prefix, not the version's)."""
    return f"{location.prefix}/{ARCHIVE_DIR}/v{version}.bin"


def put_reference(store: ObjectStore, prefix: str, data: bytes) -> None:
    """Store a version's watermark reference (private: no-store, never served)."""
    store.put_bytes(f"{prefix}/{REFERENCE_NAME}", data, content_type=REFERENCE_TYPE, cache_control="no-store")


def verify_b_variants(store: ObjectStore, prefix: str, renditions: Mapping[str, str], *,
                      keys_by_uri: Mapping[str, bytes], decode_segment: DecodeSegment | None) -> list[str]:
    """Problems with the B variants of a stored version (empty: fine); `renditions` maps each marked rendition
    to its media playlist URI under `prefix`.

    For each, the B variant of the last segment (in the last key period) is fetched, decrypted with the
    key and IV of A's EXT-X-KEY and, with `decode_segment`, decoded: it must start with a key frame and
    hold as many pictures as A (identical durations, so a player switching variants keeps time). Every
    other B object must exist. Raises StoreError.
    """
    problems: list[str] = []
    for name, uri in renditions.items():
        playlist = m3u8.loads(store.get_bytes(f"{prefix}/{uri}").decode())
        wanted = {resolve(prefix, b_variant(segment.uri), uri): segment.uri for segment in playlist.segments}
        stored: set[str] = set()
        for directory in {posixpath.dirname(key) for key in wanted}:     # one listing per directory
            stored.update(store.list_keys(directory + "/"))
        problems += [f"{name}: B variant of {a} is missing" for key, a in wanted.items() if key not in stored]
        if not playlist.segments:
            continue
        last = playlist.segments[-1]
        key, iv = keys_by_uri.get(last.key.uri), bytes.fromhex(last.key.iv[2:])
        if key is None:
            problems.append(f"{name}: {last.uri}'s EXT-X-KEY names no key of this version")
            continue
        init = store.get_bytes(resolve(prefix, playlist.segment_map[0].uri, uri)) if playlist.segment_map else b""
        try:
            a = decrypt_segment(store.get_bytes(resolve(prefix, last.uri, uri)), key, iv)
            b = decrypt_segment(store.get_bytes(resolve(prefix, b_variant(last.uri), uri)), key, iv)
        except ValueError as exc:   # bad padding: not encrypted with A's key and IV
            problems.append(f"{name}: B variant of {last.uri} does not decrypt with A's key and IV: {exc}")
            continue
        if decode_segment is None:
            continue
        decoded_a, decoded_b = decode_segment(init + a), decode_segment(init + b)
        if not decoded_b.starts_with_key_frame:
            problems.append(f"{name}: B variant of {last.uri} does not start with a key frame")
        if decoded_b.video_frames != decoded_a.video_frames:
            problems.append(f"{name}: B variant of {last.uri} holds {decoded_b.video_frames} pictures, "
                            f"A holds {decoded_a.video_frames}")
    return problems
