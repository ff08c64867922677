"""The keyed names of a segment's A and B variants wherever a URI points, the variant key kept in version.json,
and a watermarked version's reference kept when garbage collection removes the version (real store)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import pytest

from packager.publishing.retention import RetentionPlan, delete_versions, keep_reference
from packager.publishing.version_manifest import VersionManifest, read_manifest, write_manifest
from packager.publishing.versions import EpisodeLocation
from packager.publishing.watermark_variants import (
    REFERENCE_NAME,
    WatermarkEntry,
    archived_reference_key,
    new_variant_key,
    put_reference,
    variant_tag,
    variant_uri,
)

LOCATION = EpisodeLocation(series_id="s1", episode_id="e1")


KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


def tag(variant: str, index: int, key: bytes = KEY) -> str:
    return hmac.new(key, f"{variant}:{index}".encode(), hashlib.sha256).hexdigest()[:16]


def test_a_tag_is_64_bits_of_hmac_sha256_of_the_variant_and_index():
    assert variant_tag(KEY, "a", 7) == tag("a", 7) and re.fullmatch(r"[0-9a-f]{16}", tag("a", 7))
    assert len({variant_tag(KEY, v, i) for v in ("a", "b") for i in range(100)}) == 200
    assert variant_tag(new_variant_key(), "b", 7) != variant_tag(KEY, "b", 7)
    assert len(new_variant_key()) == 16 and new_variant_key() != new_variant_key()
    with pytest.raises(ValueError, match="'c' is no watermark variant"):
        variant_tag(KEY, "c", 7)


@pytest.mark.parametrize("uri, expected", [
    ("seg_00007.ts", "seg_00007.{}.ts"),
    ("seg_00000.m4s", "seg_00000.{}.m4s"),
    ("../../v2/360p/seg_00012.ts", "../../v2/360p/seg_00012.{}.ts"),      # a republished version's URI
    ("seg_00003.ts?token=abc", "seg_00003.{}.ts?token=abc"),
])
def test_each_variant_has_a_keyed_name_wherever_the_uri_points(uri, expected):
    index = int(re.search(r"seg_(\d{5})", uri).group(1))
    a, b = variant_uri(uri, KEY, "a"), variant_uri(uri, KEY, "b")
    assert (a, b) == (expected.format(tag("a", index)), expected.format(tag("b", index)))
    # from either variant's name (what a playlist lists) to either: the key is needed, not the name
    assert variant_uri(a, KEY, "b") == b and variant_uri(b, KEY, "a") == a and variant_uri(a, KEY, "a") == a


@pytest.mark.parametrize("uri", ["init.mp4", "index.m3u8", "seg_7.ts", "seg_00007.b.ts", "seg_00007.ts.x",
                                 "seg_00007.0123456789ABCDEF.ts", "seg_00007.0123456789abcde.ts", "seg_00007.vtt"])
def test_only_media_segments_have_variants(uri):
    with pytest.raises(ValueError, match="not a media segment"):
        variant_uri(uri, KEY, "b")


def manifest(version: int, media_version: int, *, marked: bool) -> VersionManifest:
    entry = WatermarkEntry(reference=REFERENCE_NAME, renditions=("360p", "234p"), segment_count=16, variant_key=KEY,
                           b_i_frame_bytes={"360p": (4000,) * 16, "234p": (2000,) * 16})
    return VersionManifest(version=version, media_version=media_version, duration_s=32.0, timestamp_map_mpegts=None,
                           watermark=entry if marked else None)


def test_the_manifest_says_a_version_is_watermarked(store):
    write_manifest(store, LOCATION, manifest(1, 1, marked=True))
    write_manifest(store, LOCATION, manifest(2, 2, marked=False))
    assert read_manifest(store, LOCATION, 1).watermark.renditions == ("360p", "234p")
    assert read_manifest(store, LOCATION, 1).is_watermarked and not read_manifest(store, LOCATION, 2).is_watermarked
    assert read_manifest(store, LOCATION, 1).watermark == manifest(1, 1, marked=True).watermark


def test_the_variant_key_is_kept_in_the_manifest_and_out_of_reprs(store):
    write_manifest(store, LOCATION, manifest(1, 1, marked=True))
    stored = store.get_bytes(f"{LOCATION.version_prefix(1)}/version.json")
    assert json.loads(stored)["watermark"]["variant_key"] == KEY.hex()
    assert read_manifest(store, LOCATION, 1).watermark.variant_key == KEY
    shown = repr(read_manifest(store, LOCATION, 1))
    assert KEY.hex() not in shown and str(KEY) not in shown and "variant_key" not in shown
    assert store.stat(f"{LOCATION.version_prefix(1)}/version.json").cache_control == "no-store"


def test_a_watermark_entry_without_a_variant_key_is_refused(store):
    raw = json.loads(manifest(1, 1, marked=True).to_json())
    del raw["watermark"]["variant_key"]
    store.put_bytes(f"{LOCATION.version_prefix(1)}/version.json", json.dumps(raw).encode())
    with pytest.raises(ValueError, match="no variant_key.*re-ingest"):
        read_manifest(store, LOCATION, 1)


def test_a_collected_versions_reference_is_kept_and_its_variants_go(store):
    for version, media, marked in ((1, 1, True), (2, 1, True), (3, 3, False)):
        write_manifest(store, LOCATION, manifest(version, media, marked=marked))
    prefix = LOCATION.version_prefix(1)
    put_reference(store, prefix, b"reference of v1")
    store.put_bytes(f"{prefix}/360p/{variant_uri('seg_00000.ts', KEY, 'a')}", b"a")
    store.put_bytes(f"{prefix}/360p/{variant_uri('seg_00000.ts', KEY, 'b')}", b"b")
    assert not keep_reference(store, LOCATION, 2)     # built from v1: its reference is v1's
    assert not keep_reference(store, LOCATION, 3)     # not watermarked
    plan = RetentionPlan(location=LOCATION, live_version=3, keep=(3,), delete=(1, 2))
    delete_versions(store, plan)
    assert store.list_keys(prefix + "/") == []        # both variants went with the version
    assert store.get_bytes(archived_reference_key(LOCATION, 1)) == b"reference of v1"
    assert not store.exists(archived_reference_key(LOCATION, 2))
