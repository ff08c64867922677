"""Garbage collection of episode versions and their keys, against the real store and key database."""

from __future__ import annotations

import json
import time

import pytest

from drm.errors import UnknownKey
from packager.publishing.publish import EpisodeLocation
from packager.publishing.versions import stored_episodes
from server.config import Settings
from server.publishing.episode import ingest_episode
from server.publishing.garbage import collect_garbage
from server.services import Services
from tests.conftest import settings_env
from tests.server.cli.test_cli import series
from tests.support.catalog import add_series
from tests.support.media import clip

SERIES, EPISODE = "s1", "1"
LOCATION = EpisodeLocation(series_id=SERIES, episode_id=EPISODE)


@pytest.fixture
def env(tmp_path, s3_store):
    return settings_env(tmp_path, s3_store, SERIES_MIN_DURATION_S="5", SERIES_LADDER_MAX_RENDITIONS="1")


@pytest.fixture
def services(env):
    services = Services.open(Settings.from_env(env))
    services.store.ensure_bucket()
    add_series(services, SERIES)
    yield services
    services.close()


def ingest(services: Services, source):
    return ingest_episode(source, series_id=SERIES, episode_id=EPISODE, settings=services.settings,
                          store=services.store, keystore=services.keystore, catalog=services.catalog)


def versions_in_store(services: Services) -> set[int]:
    return {int(key.split("/v")[1].split("/")[0]) for key in services.store.list_keys(LOCATION.prefix + "/v")}


def assert_keys(services: Services, key_ids, *, exist: bool) -> None:
    for key_id in key_ids:
        if exist:
            services.keystore.get(key_id)
        else:
            with pytest.raises(UnknownKey):
                services.keystore.get(key_id)


def test_live_and_previous_stay_older_versions_go_with_their_keys(env, services, media_dir):
    source = clip(media_dir, "small.mp4", duration_s=14, width=320, height=180, fps=25)
    v1 = ingest(services, source)
    time.sleep(2.5)      # v1 must be idle longer than the grace period below; v2 and v3 not
    v2, v3 = ingest(services, source), ingest(services, source)
    assert versions_in_store(services) == {1, 2, 3}        # the post-publish GC keeps all within 6 h

    now = time.time()
    (planned,) = collect_garbage(services.store, services.keystore, grace_s=2, dry_run=True, now=now)
    assert (planned.plan.live_version, planned.plan.keep, planned.plan.delete) == (3, (2, 3), (1,))
    assert versions_in_store(services) == {1, 2, 3}        # a dry run deletes nothing
    assert_keys(services, v1.key_ids, exist=True)

    (done,) = collect_garbage(services.store, services.keystore, grace_s=2, now=now)
    assert done.objects_deleted > 0 and done.keys_deleted == len(v1.key_ids)
    assert versions_in_store(services) == {2, 3}
    assert_keys(services, v1.key_ids, exist=False)
    assert_keys(services, v2.key_ids + v3.key_ids, exist=True)

    # past the grace period the previous version goes too; the live one never does
    (later,) = collect_garbage(services.store, services.keystore, grace_s=2, now=now + 60)
    assert later.plan.delete == (2,)
    assert versions_in_store(services) == {3}
    assert_keys(services, v2.key_ids, exist=False)
    assert_keys(services, v3.key_ids, exist=True)

    result = series(env, "gc", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["episodes"]
    assert (row["series"], row["episode"], row["live"], row["keep"], row["delete"]) == (SERIES, EPISODE, 3, [3], [])


def test_keys_of_a_publish_that_crashed_before_uploading_are_collected(services):
    keys = services.keystore.create_keys(SERIES, "9", 2, version=1)
    now = time.time()
    (recent,) = collect_garbage(services.store, services.keystore, grace_s=60, now=now)
    assert recent.plan.keep == (1,) and recent.plan.delete == ()   # may still be publishing
    (stale,) = collect_garbage(services.store, services.keystore, grace_s=60, now=now + 120)
    assert stale.plan.live_version is None and stale.plan.delete == (1,) and stale.keys_deleted == 2
    assert_keys(services, [k.key_id for k in keys], exist=False)


def test_gc_finds_every_episode_level_by_level_orphans_included(services):
    for key in ("series/s-a/episodes/1/v1/360p/index.m3u8", "series/s-a/episodes/2/v3/master.m3u8",
                "series/s-b/episodes/1/v1/master.m3u8",      # a publish that died: no pointer, no keys
                "series/s-a/cover.jpg"):                     # not an episode
        services.store.put_bytes(key, b"x")
    found = [(location.series_id, location.episode_id) for location in stored_episodes(services.store)]
    assert found == [("s-a", "1"), ("s-a", "2"), ("s-b", "1")]
    collected = collect_garbage(services.store, services.keystore, grace_s=60, now=time.time() + 120)
    assert [(c.plan.location.series_id, c.plan.location.episode_id, c.plan.delete) for c in collected] == [
        ("s-a", "1", (1,)), ("s-a", "2", (3,)), ("s-b", "1", (1,))]
    assert services.store.list_keys("series/") == ["series/s-a/cover.jpg"]
