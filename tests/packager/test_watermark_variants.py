"""The B variant's name beside its A wherever a URI points, and a watermarked version's reference kept when
garbage collection removes the version (real store)."""

from __future__ import annotations

import pytest

from packager.publishing.retention import RetentionPlan, delete_versions, keep_reference
from packager.publishing.version_manifest import VersionManifest, read_manifest, write_manifest
from packager.publishing.versions import EpisodeLocation
from packager.publishing.watermark_variants import (
    REFERENCE_NAME,
    WatermarkEntry,
    archived_reference_key,
    b_variant,
    put_reference,
)

LOCATION = EpisodeLocation(series_id="s1", episode_id="e1")


@pytest.mark.parametrize("a, b", [
    ("seg_00007.ts", "seg_00007.b.ts"),
    ("seg_00000.m4s", "seg_00000.b.m4s"),
    ("../../v2/360p/seg_00012.ts", "../../v2/360p/seg_00012.b.ts"),      # a republished version's URI
    ("seg_00003.ts?token=abc", "seg_00003.b.ts?token=abc"),
])
def test_the_b_variant_sits_beside_its_a(a, b):
    assert b_variant(a) == b


@pytest.mark.parametrize("uri", ["init.mp4", "index.m3u8", "seg_7.ts", "seg_00007.b.ts.x"])
def test_only_media_segments_have_variants(uri):
    with pytest.raises(ValueError):
        b_variant(uri)


def manifest(version: int, media_version: int, *, marked: bool) -> VersionManifest:
    entry = WatermarkEntry(reference=REFERENCE_NAME, renditions=("360p", "234p"), segment_count=16)
    return VersionManifest(version=version, media_version=media_version, duration_s=32.0, timestamp_map_mpegts=None,
                           watermark=entry if marked else None)


def test_the_manifest_says_a_version_is_watermarked(store):
    write_manifest(store, LOCATION, manifest(1, 1, marked=True))
    write_manifest(store, LOCATION, manifest(2, 2, marked=False))
    assert read_manifest(store, LOCATION, 1).watermark.renditions == ("360p", "234p")
    assert read_manifest(store, LOCATION, 1).is_watermarked and not read_manifest(store, LOCATION, 2).is_watermarked


def test_a_collected_versions_reference_is_kept_and_its_variants_go(store):
    for version, media, marked in ((1, 1, True), (2, 1, True), (3, 3, False)):
        write_manifest(store, LOCATION, manifest(version, media, marked=marked))
    prefix = LOCATION.version_prefix(1)
    put_reference(store, prefix, b"reference of v1")
    store.put_bytes(f"{prefix}/360p/seg_00000.ts", b"a")
    store.put_bytes(f"{prefix}/360p/seg_00000.b.ts", b"b")
    assert not keep_reference(store, LOCATION, 2)     # built from v1: its reference is v1's
    assert not keep_reference(store, LOCATION, 3)     # not watermarked
    plan = RetentionPlan(location=LOCATION, live_version=3, keep=(3,), delete=(1, 2))
    delete_versions(store, plan)
    assert store.list_keys(prefix + "/") == []        # both variants went with the version
    assert store.get_bytes(archived_reference_key(LOCATION, 1)) == b"reference of v1"
    assert not store.exists(archived_reference_key(LOCATION, 2))
