"""ObjectStore's multipart calls against the real S3 server: parts joined in order, a repeated completion
taken as done, abort and listing, S3's 5 MiB floor on every part but the last, errors translated."""

from __future__ import annotations

import os
from uuid import uuid4

import pytest

from packager.errors import MultipartMissing, StoreError
from packager.store import MIN_PART_BYTES, ObjectStore


@pytest.fixture
def store(s3_store):
    with ObjectStore(s3_store.store_settings(f"t-{uuid4().hex[:12]}")) as fresh:
        fresh.ensure_bucket()
        yield fresh


def test_parts_join_into_one_object_and_a_repeated_completion_stands(store):
    first, last = os.urandom(MIN_PART_BYTES), os.urandom(1234)
    upload_id = store.start_multipart("tus/a/media/x.mp4")
    assert [(item.key, item.upload_id) for item in store.list_multipart("tus/")] == [("tus/a/media/x.mp4", upload_id)]
    parts = [store.upload_part("tus/a/media/x.mp4", upload_id, 1, first),
             store.upload_part("tus/a/media/x.mp4", upload_id, 2, bytearray(last))]
    assert [(part.number, part.size_bytes) for part in parts] == [(1, MIN_PART_BYTES), (2, 1234)]
    store.complete_multipart("tus/a/media/x.mp4", upload_id, parts)
    store.complete_multipart("tus/a/media/x.mp4", upload_id, parts)      # a retry after a lost answer
    assert store.get_bytes("tus/a/media/x.mp4") == first + last
    assert store.list_multipart("tus/") == []


def test_a_part_below_the_floor_but_the_last_is_refused_at_completion(store):
    upload_id = store.start_multipart("small")
    parts = [store.upload_part("small", upload_id, number, b"x" * 100) for number in (1, 2)]
    with pytest.raises(StoreError, match="EntityTooSmall"):
        store.complete_multipart("small", upload_id, parts)
    assert store.abort_multipart("small", upload_id) is True


def test_an_aborted_upload_is_gone(store):
    upload_id = store.start_multipart("gone")
    store.upload_part("gone", upload_id, 1, b"abc")
    assert store.abort_multipart("gone", upload_id) is True
    assert store.list_multipart("") == []
    with pytest.raises(MultipartMissing) as missing:
        store.upload_part("gone", upload_id, 2, b"def")
    assert missing.value.code == "multipart_missing" and missing.value.key == "gone"
    with pytest.raises(MultipartMissing):
        store.complete_multipart("gone", upload_id, [])
    with pytest.raises(ValueError):
        store.upload_part("gone", upload_id, 0, b"")


def test_more_open_uploads_than_a_page_are_all_found_by_aborting_what_is_listed(store):
    opened = {store.start_multipart(f"tus/u{index:04d}/media/f") for index in range(1005)}
    found: set[str] = set()
    for _ in range(3):                      # SeaweedFS lists one page; S3 stores page through them at once
        listed = store.list_multipart("tus/")
        if not listed:
            break
        assert all(item.initiated_at > 0 and item.key.startswith("tus/u") for item in listed)
        found |= {item.upload_id for item in listed}
        for item in listed:
            store.abort_multipart(item.key, item.upload_id)
    assert found == opened and store.list_multipart("tus/") == []
