"""The two variants of a watermarked version's segments, their keyed names, and the version's private reference.

A watermarked rendition's segments exist twice, A and B, differing by an imperceptible mark
(pipeline/watermark). Both are stored side by side in the rendition's directory, each under a name no viewer
can derive from the other:

    v{n}/{rendition}/seg_00007.<tag a>.ts   variant A: what the stored media playlist lists
    v{n}/{rendition}/seg_00007.<tag b>.ts   variant B: same key, same IV, same duration, same IDR alignment
    v{n}/version.json                       its watermark entry holds the variant key (never served)
    v{n}/watermark/reference.bin            what detection needs (holds the seed): never served
    watermark/v{n}.bin                      the same, kept when garbage collection removes v{n} (retention.py)

tag = the first 16 hex digits (64 bits) of HMAC-SHA256(variant key, "a:7" or "b:7"), the variant key being
16 random bytes made per version at publish. Keyed because segments are public ciphertext under one key and
IV: with guessable names (seg_00007.b.ts beside seg_00007.ts) a leaker reads their own playlist, fetches the
other variant of every segment and publishes an all-A copy that no trace can name. A viewer only ever sees
the names of its own session's variants (server/playback/watermark.py); a wrong guess is one of 2^64 and
404s. What it does not stop: two colluding buyers who compare playlists learn both names of the segments
where their sequences differ (collusion is not addressed).

Side by side rather than a/ and b/ folders: the stored playlists stay exactly those of an unmarked version
(A everywhere, only the names carry a tag), so conformance, verification, republishing (which rebases segment
URIs into another version's directory) and garbage collection (a version is one prefix) treat a watermarked
version like any other; a viewer's playlist turns A into B by renaming the segment, wherever its URI points.
Same key and IV for both: a viewer's key requests do not tell which variant they play, and the
EXT-X-KEY lines of the stored playlist serve both. The fMP4 init segment is one, shared (not a variant).

The reference is under the version prefix, so a failed publish discards it with the rest and nothing
refers to an unpublished one; the playback routes serve rendition segments, playlists, captions and
pictures by name pattern, none of which matches it or version.json.
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import m3u8

from packager.encrypt import decrypt_prefix, decrypt_segment
from packager.publishing.verify import DecodeSegment, resolve
from packager.publishing.versions import EpisodeLocation
from packager.store import ObjectStore

VARIANTS = ("a", "b")
VARIANT_KEY_BYTES = 16
TAG_HEX_DIGITS = 16                             # 64 bits: guessing a sibling's name is hopeless
REFERENCE_NAME = "watermark/reference.bin"      # under the version prefix
REFERENCE_TYPE = "application/octet-stream"
ARCHIVE_DIR = "watermark"                       # under the episode's prefix, beside the versions
# a media segment's URI: any directory part, its index, its tag if it is a variant, its extension
_SEGMENT_URI = re.compile(r"^(?P<directory>(?:.*/)?)seg_(?P<index>\d{5})(?:\.[0-9a-f]{%d})?(?P<extension>\.(?:ts|m4s))$"
                          % TAG_HEX_DIGITS)


@dataclass(frozen=True, slots=True, kw_only=True)
class WatermarkEntry:
    """What version.json says of a watermarked version (absent for an unmarked one)."""

    reference: str                  # the reference's object name under the media version's prefix
    renditions: tuple[str, ...]     # the renditions whose segments have a B variant
    segment_count: int              # per rendition: one bit per segment
    # names both variants of every segment (variant_uri); private like the reference: whoever holds it can
    # fetch any variant, so version.json, which holds it, is never served
    variant_key: bytes = field(repr=False)
    # per marked rendition, the I-frame range length of each segment's B variant (A's are in the stored
    # I-frame playlist): a viewer's I-frame playlist lists its own variants too, never a name it must not know
    b_i_frame_bytes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def new_variant_key() -> bytes:
    """16 random bytes: a watermarked version's variant key, made once at publish."""
    return secrets.token_bytes(VARIANT_KEY_BYTES)


def variant_tag(variant_key: bytes, variant: str, index: int) -> str:
    """The tag in the name of `variant` ("a" or "b") of segment `index`: 16 hex digits of
    HMAC-SHA256(variant_key, "b:7"). Raises ValueError for another variant."""
    if variant not in VARIANTS:
        raise ValueError(f"{variant!r} is no watermark variant; expected one of {', '.join(VARIANTS)}")
    digest = hmac.new(variant_key, f"{variant}:{index}".encode(), hashlib.sha256).hexdigest()
    return digest[:TAG_HEX_DIGITS]


def variant_uri(uri: str, variant_key: bytes, variant: str) -> str:
    """The name (or URI: a directory part and a query are kept) of `variant` of the segment `uri` names,
    plain (seg_00007.ts, as the transcode writes it) or either variant's: seg_00007.<tag>.ts.

    Raises ValueError for a URI that names no media segment (an init segment has no variants).
    """
    path, query = uri.split("?", 1) if "?" in uri else (uri, "")
    match = _SEGMENT_URI.match(path)
    if match is None:
        raise ValueError(f"{uri!r} is not a media segment's URI")
    index = int(match.group("index"))
    name = f"seg_{index:05d}.{variant_tag(variant_key, variant, index)}{match.group('extension')}"
    return match.group("directory") + name + (f"?{query}" if query else "")


def archived_reference_key(location: EpisodeLocation, version: int) -> str:
    """Where the reference of a collected version is kept (under the episode's prefix, not the version's)."""
    return f"{location.prefix}/{ARCHIVE_DIR}/v{version}.bin"


def put_reference(store: ObjectStore, prefix: str, data: bytes) -> None:
    """Store a version's watermark reference (private: no-store, never served)."""
    store.put_bytes(f"{prefix}/{REFERENCE_NAME}", data, content_type=REFERENCE_TYPE, cache_control="no-store")


def verify_b_variants(store: ObjectStore, prefix: str, renditions: Mapping[str, str], *, variant_key: bytes,
                      b_i_frame_bytes: Mapping[str, Sequence[int]], keys_by_uri: Mapping[str, bytes],
                      decode_segment: DecodeSegment | None) -> list[str]:
    """Problems with the B variants of a stored version (empty: fine); `renditions` maps each marked rendition
    to its media playlist URI under `prefix`, whose segments must be the A variants named with `variant_key`;
    `b_i_frame_bytes` gives each marked rendition's B I-frame range lengths.

    For each, the B variant of the last segment (in the last key period) is fetched, decrypted with the
    key and IV of A's EXT-X-KEY and, with `decode_segment`, decoded: it must start with a key frame and
    hold as many pictures as A (identical durations, so a player switching variants keeps time), and its
    I-frame range must hold exactly one picture. Every other B object must exist. Raises StoreError.
    """
    problems: list[str] = []
    for name, uri in renditions.items():
        playlist = m3u8.loads(store.get_bytes(f"{prefix}/{uri}").decode())
        problems += [f"{name}: {segment.uri} is not variant A's keyed name" for segment in playlist.segments
                     if segment.uri != variant_uri(segment.uri, variant_key, "a")]
        b_uris = [variant_uri(segment.uri, variant_key, "b") for segment in playlist.segments]
        wanted = {resolve(prefix, b_uri, uri): segment.uri for b_uri, segment in zip(b_uris, playlist.segments)}
        stored: set[str] = set()
        for directory in {posixpath.dirname(key) for key in wanted}:     # one listing per directory
            stored.update(store.list_keys(directory + "/"))
        missing = [key for key in wanted if key not in stored]
        problems += [f"{name}: B variant of {wanted[key]} is missing" for key in missing]
        i_frame_lengths = tuple(b_i_frame_bytes.get(name, ()))
        if len(i_frame_lengths) != len(playlist.segments):
            problems.append(f"{name}: the manifest gives {len(i_frame_lengths)} B I-frame ranges for "
                            f"{len(playlist.segments)} segments")
        if not playlist.segments or resolve(prefix, b_uris[-1], uri) in missing:
            continue
        last = playlist.segments[-1]
        key, iv = keys_by_uri.get(last.key.uri), bytes.fromhex(last.key.iv[2:])
        if key is None:
            problems.append(f"{name}: {last.uri}'s EXT-X-KEY names no key of this version")
            continue
        init = store.get_bytes(resolve(prefix, playlist.segment_map[0].uri, uri)) if playlist.segment_map else b""
        b_ciphertext = store.get_bytes(resolve(prefix, b_uris[-1], uri))
        try:
            a = decrypt_segment(store.get_bytes(resolve(prefix, last.uri, uri)), key, iv)
            b = decrypt_segment(b_ciphertext, key, iv)
        except ValueError as exc:   # bad padding: not encrypted with A's key and IV
            problems.append(f"{name}: B variant of {last.uri} does not decrypt with A's key and IV: {exc}")
            continue
        if decode_segment is not None:
            problems += _decode_b(decode_segment, f"{name}: B variant of {last.uri}", init, a, b,
                                  decrypt_prefix(b_ciphertext[:i_frame_lengths[-1]], key, iv)
                                  if len(i_frame_lengths) == len(playlist.segments) else None)
    return problems


def _decode_b(decode_segment: DecodeSegment, where: str, init: bytes, a: bytes, b: bytes,
              b_i_frame: bytes | None) -> list[str]:
    """Problems decoding B (`b_i_frame`: its I-frame range decrypted, as a player fetches it alone)."""
    try:
        decoded_a, decoded_b = decode_segment(init + a), decode_segment(init + b)
        pictures = decode_segment(init + b_i_frame).video_frames if b_i_frame is not None else 1
    except Exception as exc:  # noqa: BLE001 - any failure to play is a verification failure
        return [f"{where} (or its I-frame range) does not decode: {exc}"]
    problems = []
    if not decoded_b.starts_with_key_frame:
        problems.append(f"{where} does not start with a key frame")
    if decoded_b.video_frames != decoded_a.video_frames:
        problems.append(f"{where} holds {decoded_b.video_frames} pictures, A holds {decoded_a.video_frames}")
    if pictures != 1:
        problems.append(f"{where}: its I-frame range holds {pictures} pictures, expected 1")
    return problems
