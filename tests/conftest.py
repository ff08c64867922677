"""Shared fixtures: a real S3 server (session), generated media (session), settings per test."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from pathlib import Path

import pytest

from drm.storage.engines import open_database
from server.config import Settings
from tests.support.media import clip
from tests.support.postgres import PostgresUnavailable, start_cluster
from tests.support.s3_server import start_test_store

# fixed for reproducible tests, but random-looking: start-up refuses keys of a repeated pattern
MASTER_KEY = base64.b64encode(hashlib.sha256(b"tests: master key").digest()).decode()
TOKEN_KEYS = "t1:" + base64.b64encode(hashlib.sha256(b"tests: token key t1").digest()).decode()


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory):
    """One SeaweedFS `weed mini` for the whole session, on free loopback ports; stopped by its PID."""
    store = start_test_store(tmp_path_factory.mktemp("s3"))
    yield store
    # its data is thrown away: no need to wait the 15 s weed mini takes to honour SIGTERM before SIGKILL
    store.stop(timeout_s=1)


@pytest.fixture
def store(s3_store):
    """An ObjectStore on a fresh bucket of the session S3 server (modules may define their own `store`)."""
    from packager.store import ObjectStore

    with ObjectStore(s3_store.store_settings(f"t-{uuid.uuid4().hex[:12]}")) as fresh:
        fresh.ensure_bucket()
        yield fresh


@pytest.fixture(scope="session")
def postgres_cluster():
    """One throwaway PostgreSQL for the session (tests/support/postgres.py), stopped by its own pg_ctl.

    Skipped, with the reason, where no server binaries can be had; but CI must run these tests, so
    with CI=true a missing PostgreSQL fails them instead.
    """
    try:
        cluster = start_cluster()
    except PostgresUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, and the PostgreSQL tests cannot run: {exc}")
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres_cluster) -> str:
    """The name of a database migrated to the current schema, for fresh copies (no connection stays open)."""

    from server.jobs.engines.procrastinate_engine import apply_schema

    name = postgres_cluster.create_database(prefix="template")
    open_database(postgres_cluster.url(name), migrate=True).close()
    apply_schema(postgres_cluster.url(name))       # the job engine's tables, as `series db migrate` adds them
    return name


@pytest.fixture
def postgres_url(postgres_cluster, postgres_template) -> str:
    """The URL of a fresh, migrated database of the session cluster, dropped after the test."""
    name = postgres_cluster.create_database(template=postgres_template)
    yield postgres_cluster.url(name)
    postgres_cluster.drop_database(name)


@pytest.fixture
def empty_postgres_url(postgres_cluster) -> str:
    """The URL of a fresh database with no schema at all, dropped after the test."""
    name = postgres_cluster.create_database()
    yield postgres_cluster.url(name)
    postgres_cluster.drop_database(name)


ENGINES = ("sqlite", "postgresql")


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    """Each test asking for it runs twice: on the embedded SQLite file and on PostgreSQL ([sqlite], [postgresql])."""
    return request.param


@pytest.fixture
def db_target(engine, tmp_path, request) -> str:
    """Where the test's database is: a fresh SQLite file path, or the URL of a fresh PostgreSQL database."""
    if engine == "sqlite":
        return str(tmp_path / "var" / "drm.storage.sqlite")
    return request.getfixturevalue("postgres_url")


def settings_env(data_dir: Path, s3_store, *, bucket: str | None = None, **overrides: str) -> dict[str, str]:
    env = {
        "SERIES_DATA_DIR": str(data_dir),
        "SERIES_S3_ENDPOINT": s3_store.endpoint,
        "SERIES_S3_ACCESS_KEY": s3_store.settings.access_key,
        "SERIES_S3_SECRET_KEY": s3_store.settings.secret_key,
        "SERIES_S3_BUCKET": bucket or f"t-{uuid.uuid4().hex[:12]}",
        "SERIES_MASTER_KEY": MASTER_KEY,
        "SERIES_TOKEN_KEYS": TOKEN_KEYS,
        "SERIES_LADDER_MAX_RENDITIONS": "2",
        "SERIES_X264_PRESET": "superfast",
    }
    env.update(overrides)
    return env


def settings_for(data_dir: Path, s3_store, **overrides: str) -> Settings:
    return Settings.from_env(settings_env(data_dir, s3_store, **overrides))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def landscape_clip(media_dir) -> Path:
    """32 s, 640x360, 25 fps, with a tone: enough for two rungs (360p, 234p) and six segments."""
    return clip(media_dir, "landscape.mp4", duration_s=32, width=640, height=360, fps=25)


@pytest.fixture(scope="session")
def short_clip(media_dir) -> Path:
    return clip(media_dir, "short.mp4", duration_s=5, width=320, height=180, fps=25)


@pytest.fixture(scope="session")
def not_media(media_dir) -> Path:
    path = media_dir / "notes.mp4"
    path.write_text("these are my notes, not a video\n" * 50)
    return path


@pytest.fixture(scope="session")
def portrait_clip(media_dir) -> Path:
    """12 s, 360x640 (9:16), 25 fps: a phone-shot episode, two segments per rendition."""
    return clip(media_dir, "portrait.mp4", duration_s=12, width=360, height=640, fps=25)


@pytest.fixture(scope="session")
def small_encoded(tmp_path_factory, media_dir):
    """A 14 s 320x180 clip transcoded once for the session (three segments): input for publish() tests."""
    from pipeline.encode.ladder import LadderSettings, plan_ladder
    from pipeline.encode.transcode import transcode

    source = clip(media_dir, "small.mp4", duration_s=14, width=320, height=180, fps=25)
    ladder = LadderSettings(max_renditions=1, preset="superfast")
    return transcode(source, plan_ladder(320, 180, ladder), tmp_path_factory.mktemp("encoded"), ladder)


@pytest.fixture(scope="session")
def small_encoded_fmp4(tmp_path_factory, media_dir):
    """The same 14 s clip as small_encoded, transcoded to fMP4 segments: input for the fMP4 tests."""
    from pipeline.encode.fmp4 import SegmentFormat
    from pipeline.encode.ladder import LadderSettings, plan_ladder
    from pipeline.encode.transcode import transcode

    source = clip(media_dir, "small.mp4", duration_s=14, width=320, height=180, fps=25)
    ladder = LadderSettings(max_renditions=1, preset="superfast")
    return transcode(source, plan_ladder(320, 180, ladder), tmp_path_factory.mktemp("encoded-fmp4"), ladder,
                     segment_format=SegmentFormat.FMP4)
