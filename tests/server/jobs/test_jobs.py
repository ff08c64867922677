"""The jobs table on its own, on both engines: idempotency, attempt fencing, restart recovery; a locked
SQLite file (test_job_store_races.py: writers racing, and PostgreSQL going away)."""

from __future__ import annotations

import base64
import json
import sqlite3

import pytest

from server.config import JobSettings, Settings, SettingsError
from server.jobs.job_store import JobStore
from server.jobs.jobs import (
    FAILED,
    PUBLISHED,
    QUEUED,
    SOURCE_BUCKET,
    SOURCE_SPOOL,
    TRANSCODING,
    IdempotencyConflict,
    JobNotFound,
    JobRequest,
    JobStoreUnavailable,
    WebhookNotAllowed,
    check_webhook_allowed,
    describe_duration,
    fingerprint,
    upload_note,
)


def request(key: str = "k1", *, series_id: str = "s1") -> JobRequest:
    return JobRequest(series_id=series_id, episode_id="1", source_kind=SOURCE_SPOOL, idempotency_key=key,
                      fingerprint=fingerprint({"series": series_id, "key": key}), spool_path="/spool/x", size_bytes=3)


def test_an_idempotency_key_names_one_job_for_one_request(job_store):
    job, created = job_store.create(request())
    again, created_again = job_store.create(request())
    assert (created, created_again) == (True, False)
    assert again == job and job.state == QUEUED and job.attempt == 1
    with pytest.raises(IdempotencyConflict) as raised:
        job_store.create(request(series_id="other"))
    assert raised.value.job_id == job.job_id
    with pytest.raises(JobNotFound):
        job_store.get("job_" + "0" * 24)


def test_a_superseded_attempt_cannot_write(job_store):
    job, _ = job_store.create(request())
    assert job_store.advance(job.job_id, 1, TRANSCODING, 0.5)
    assert job_store.recover(max_attempts=3, upload_retention_s=3600) == ([job.job_id], [])       # the service restarted mid-job
    recovered = job_store.get(job.job_id)
    assert (recovered.state, recovered.attempt, recovered.stage_fraction) == (QUEUED, 2, 0.0)
    assert not job_store.advance(job.job_id, 1, TRANSCODING, 0.9)         # the old worker is ignored
    assert not job_store.finish_published(job.job_id, 1, version=7)
    assert job_store.finish_published(job.job_id, 2, version=1)
    assert not job_store.fail(job.job_id, 2, "late", "a finished job stays finished")
    finished = job_store.get(job.job_id)
    assert (finished.state, finished.version, finished.error_code) == (PUBLISHED, 1, None)


def test_a_failure_worth_retrying_queues_the_next_attempt_in_one_step(job_store):
    job, _ = job_store.create(request())
    assert job_store.advance(job.job_id, 1, TRANSCODING, 0.7)
    assert job_store.requeue_after_failure(job.job_id, 1, "store_unavailable", "S3 at 127.0.0.1:1 is unreachable")
    waiting = job_store.get(job.job_id)
    assert (waiting.state, waiting.attempt, waiting.stage_fraction, waiting.error_code) == (
        QUEUED, 2, 0.0, "store_unavailable")
    assert not job_store.requeue_after_failure(job.job_id, 1, "store_unavailable", "a stale worker again")
    assert job_store.finish_published(job.job_id, 2, version=1)
    assert job_store.get(job.job_id).error_code is None


def test_a_job_interrupted_too_often_fails_with_a_reason(job_store):
    job, _ = job_store.create(request())
    for attempt in (1, 2):
        assert job_store.advance(job.job_id, attempt, TRANSCODING, 0.1)
        job_store.recover(max_attempts=3, upload_retention_s=3600)
    assert job_store.advance(job.job_id, 3, TRANSCODING, 0.1)
    assert job_store.recover(max_attempts=3, upload_retention_s=7 * 24 * 3600) == ([], [job.job_id])
    failed = job_store.get(job.job_id)
    assert (failed.state, failed.error_code) == (FAILED, "interrupted")
    assert "the upload is kept for 7 days" in failed.error_message      # then the spool sweep deletes it


@pytest.mark.parametrize(("seconds", "said"), [
    (7 * 24 * 3600, "7 days"), (86400, "1 day"), (90000, "25 hours"), (3600, "1 hour"), (5400, "90 minutes"),
    (45, "45 seconds"), (604801, "about 7 days"), (3600.5, "about 1 hour"),
])
def test_a_retention_window_is_said_the_way_people_say_it(seconds, said):
    assert describe_duration(seconds) == said


def test_an_upload_in_the_uploads_bucket_is_not_said_to_expire(job_store):
    spooled, _ = job_store.create(request("spooled"))
    named, _ = job_store.create(JobRequest(series_id="s1", episode_id="2", source_kind=SOURCE_BUCKET,
                                      idempotency_key="named", fingerprint=fingerprint({"key": "named"}),
                                      source_bucket="uploads", source_key="ep2.mp4"))
    assert upload_note(spooled, 2 * 86400) == "the upload is kept for 2 days"
    assert upload_note(named, 2 * 86400) == "the upload stays in the uploads bucket"   # the sweep never takes it


def test_a_locked_database_is_unavailable_not_an_error_and_changes_nothing(jobs, tmp_path):
    holder = sqlite3.connect(tmp_path / "series.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(JobStoreUnavailable):
            jobs.create(request())
        assert jobs.list() == []                       # WAL: readers still read
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    job, created = jobs.create(request())
    assert created and [j.job_id for j in jobs.list()] == [job.job_id]
    assert jobs.db.query("PRAGMA integrity_check")[0][0] == "ok"


def test_job_settings_from_the_environment(tmp_path):
    local = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)})
    assert len(local.jobs.ingest_token) >= 32                         # generated once for the local setup
    assert Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)}).jobs.ingest_token == local.jobs.ingest_token
    assert local.jobs.ingest_token not in repr(local)
    assert local.jobs.spool_dir == tmp_path / "uploads"
    assert local.jobs.webhook_secret.startswith("whsec_")                 # its own, not the ingest token
    assert local.jobs.webhook_secret != local.jobs.ingest_token
    token, hook_secret = "Ingest-0123456789-abcdefghijk", "whsec_" + base64.b64encode(bytes(range(32))).decode()
    configured = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), "SERIES_INGEST_TOKEN": token,
                                    "SERIES_INGEST_WORKERS": "2", "SERIES_JOB_WEBHOOK_SECRET": hook_secret})
    assert (configured.jobs.ingest_token, configured.jobs.workers, configured.jobs.webhook_secret) == (
        token, 2, hook_secret)
    with pytest.raises(SettingsError, match="SERIES_INGEST_WORKERS"):
        Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), "SERIES_INGEST_WORKERS": "0"})
    with pytest.raises(SettingsError, match="SERIES_INGEST_TOKEN") as raised:
        Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), "SERIES_INGEST_TOKEN": "short-secret"})
    assert "short-secret" not in str(raised.value)


def test_operators_list_and_show_jobs_with_the_cli(tmp_path, monkeypatch, capsys):
    from server.cli.main import main

    monkeypatch.setenv("SERIES_DATA_DIR", str(tmp_path))
    jobs = JobStore.open(Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)}).db_path)
    try:
        job, _ = jobs.create(request())
        jobs.advance(job.job_id, 1, TRANSCODING, 0.1)
        jobs.fail(job.job_id, 1, "store_unavailable", "S3 at 127.0.0.1:1 is unreachable")
    finally:
        jobs.close()
    assert main(["jobs", "--json"]) == 0
    assert [(j["job_id"], j["state"]) for j in json.loads(capsys.readouterr().out)] == [(job.job_id, FAILED)]
    assert main(["jobs", job.job_id]) == 0
    assert "error store_unavailable: S3 at 127.0.0.1:1 is unreachable" in capsys.readouterr().out
    assert main(["jobs", "job_" + "0" * 24]) == 1
    assert "job_not_found" in capsys.readouterr().err


def test_webhook_hosts_are_an_allow_list_of_hosts_and_host_ports(tmp_path):
    allowed = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path),
                                 "SERIES_JOB_WEBHOOK_HOSTS": " Hooks.Example.com , 10.0.0.7:8443,[::1]:9000"}).jobs
    assert allowed.webhook_hosts == ("hooks.example.com", "10.0.0.7:8443", "[::1]:9000")
    for url in ("https://HOOKS.example.com/x", "http://hooks.example.com:8080/x", "https://10.0.0.7:8443/done",
                "http://[::1]:9000/h"):
        check_webhook_allowed(url, allowed.webhook_hosts)
    for url in ("http://10.0.0.7/done", "https://10.0.0.7:8444/done", "http://127.0.0.1/x", "ftp://hooks.example.com/",
                "http://user:pw@hooks.example.com/", "http://hooks.example.com.evil.test/", "http://[::1]:9001/h"):
        with pytest.raises(WebhookNotAllowed):
            check_webhook_allowed(url, allowed.webhook_hosts)
    with pytest.raises(WebhookNotAllowed):     # the default allows nothing
        check_webhook_allowed("https://hooks.example.com/x", JobSettings().webhook_hosts)
    with pytest.raises(SettingsError, match="SERIES_JOB_WEBHOOK_HOSTS"):
        Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), "SERIES_JOB_WEBHOOK_HOSTS": "hooks.example.com/path"})
