"""Spooled uploads of failed jobs are kept for SERIES_FAILED_UPLOAD_RETENTION_S and then swept, with
orphans; a queued or running job's upload never is. Real files, real SQLite, the real service and CLI."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time

import pytest

from packager.store import ObjectStore
from server.app import create_app
from server.config import Settings, SettingsError
from server.ingest.spool import FAILED_JOB, ORPHAN, PUBLISHED_JOB, sweep_spool
from server.jobs.job_store import JobStore
from server.jobs.jobs import SOURCE_SPOOL, TRANSCODING, JobRequest, fingerprint
from tests.support.jobs import ingest_env, ingest_settings

DAY_S = 24 * 3600.0
WEEK_S = 7 * DAY_S


def _spooled_job(jobs: JobStore, spool_dir, key: str, episode_id: str):
    path = spool_dir / f"{key}.upload"
    path.write_bytes(key.encode())
    job, _ = jobs.create(JobRequest(series_id="s-spool", episode_id=episode_id, source_kind=SOURCE_SPOOL,
                                    idempotency_key=key, fingerprint=fingerprint({"key": key}),
                                    spool_path=str(path), size_bytes=len(key)))
    return job, path


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_sweep_keeps_live_uploads_and_takes_failed_ones_past_the_window_and_orphans(tmp_path):
    spool = tmp_path / "uploads"
    spool.mkdir()
    jobs = JobStore.open(tmp_path / "series.db")
    try:
        queued, queued_path = _spooled_job(jobs, spool, "queued", "1")
        running, running_path = _spooled_job(jobs, spool, "running", "2")
        assert jobs.claim(running.job_id, 1, "owner", lease_s=60)
        assert jobs.advance(running.job_id, 1, TRANSCODING, 0.5, owner="owner")
        failed, failed_path = _spooled_job(jobs, spool, "failed", "3")
        assert jobs.fail(failed.job_id, 1, "media_rejected", "too short")
        published, published_path = _spooled_job(jobs, spool, "published", "4")
        assert jobs.finish_published(published.job_id, 1, 1)      # its worker died before deleting it
        orphan = spool / "job_0123456789abcdef01234567.upload"    # written, then the service crashed
        partial = spool / "job_76543210fedcba9876543210.part"     # an upload cut off mid-stream
        for path in (orphan, partial):
            path.write_bytes(b"debris")
        for path in (queued_path, running_path, orphan, partial):
            _age(path, 8 * DAY_S)

        swept = sweep_spool(jobs, spool, retention_s=WEEK_S)
        assert {(u.path, u.reason) for u in swept} == {(published_path, PUBLISHED_JOB), (orphan, ORPHAN),
                                                       (partial, ORPHAN)}
        assert failed_path.exists()                                # failed today: kept for the window
        assert not any(path.exists() for path in (published_path, orphan, partial))

        later = time.time() + 8 * DAY_S
        planned = sweep_spool(jobs, spool, retention_s=WEEK_S, now=later, dry_run=True)
        assert [(u.path, u.reason, u.job_id) for u in planned] == [(failed_path, FAILED_JOB, failed.job_id)]
        assert failed_path.exists()                                # a dry run deletes nothing
        assert sweep_spool(jobs, spool, retention_s=WEEK_S, now=later) == planned
        assert sorted(spool.iterdir()) == sorted([queued_path, running_path])   # never a live job's upload
        assert sweep_spool(jobs, spool, retention_s=WEEK_S, now=later + 365 * DAY_S) == []
    finally:
        jobs.close()


async def test_the_service_sweeps_the_spool_at_start_up(tmp_path, s3_store, aiohttp_client):
    settings = ingest_settings(tmp_path, s3_store)
    settings.jobs.spool_dir.mkdir(parents=True)
    jobs = JobStore.open(settings.db_path)
    try:
        failed, failed_path = _spooled_job(jobs, settings.jobs.spool_dir, "failed-long-ago", "1")
        assert jobs.fail(failed.job_id, 1, "media_rejected", "too short")
    finally:
        jobs.close()
    with sqlite3.connect(settings.db_path) as conn:     # the job failed eight days ago
        conn.execute("UPDATE ingest_jobs SET finished_at = finished_at - ?", (8 * DAY_S,))
    orphan = settings.jobs.spool_dir / "job_0123456789abcdef01234567.upload"
    orphan.write_bytes(b"debris")
    _age(orphan, 8 * DAY_S)
    fresh_orphan = settings.jobs.spool_dir / "job_76543210fedcba9876543210.upload"
    fresh_orphan.write_bytes(b"maybe an upload being recorded right now")

    client = await aiohttp_client(create_app(settings))
    try:
        deadline = time.monotonic() + 30
        while failed_path.exists() or orphan.exists():
            assert time.monotonic() < deadline, "the service did not sweep its spool"
            await asyncio.sleep(0.05)
    finally:
        await client.close()
    assert list(settings.jobs.spool_dir.iterdir()) == [fresh_orphan]


def test_series_gc_sweeps_the_spool_too(tmp_path, s3_store, capsys, monkeypatch):
    from server.cli.main import main

    env = ingest_env(tmp_path, s3_store)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(env)
    with ObjectStore(settings.store) as store:
        store.ensure_bucket()
    settings.jobs.spool_dir.mkdir(parents=True)
    orphan = settings.jobs.spool_dir / "job_0123456789abcdef01234567.upload"
    orphan.write_bytes(b"debris")
    _age(orphan, 8 * DAY_S)
    assert main(["gc", "--dry-run", "--json"]) == 0
    (upload,) = json.loads(capsys.readouterr().out)["uploads"]
    assert (upload["path"], upload["reason"], upload["size_bytes"]) == (str(orphan), "orphan", 6)
    assert orphan.exists()
    assert main(["gc"]) == 0
    assert f"spooled upload {orphan} (orphan, 6 bytes): deleted" in capsys.readouterr().out
    assert not orphan.exists()
    with pytest.raises(SystemExit):
        main(["gc", "--help"])
    assert "SERIES_FAILED_UPLOAD_RETENTION_S" in capsys.readouterr().out      # --help tells


def test_failed_upload_retention_setting(tmp_path):
    base = {"SERIES_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).jobs.failed_upload_retention_s == WEEK_S
    assert Settings.from_env({**base, "SERIES_FAILED_UPLOAD_RETENTION_S": "7200"}).jobs.failed_upload_retention_s \
        == 7200
    for bad in ("60", "-1", "nan", "a week"):
        with pytest.raises(SettingsError, match="SERIES_FAILED_UPLOAD_RETENTION_S"):
            Settings.from_env({**base, "SERIES_FAILED_UPLOAD_RETENTION_S": bad})
