"""The ingest hand-off API: upload services hand an episode over and follow its job.

    POST /v1/series/{series_id}/episodes/{episode_id}/ingest     → 202, {"job_id", ...}, Location
         JSON {"bucket": ..., "key": ..., "webhook_url"?}  an object already in the uploads bucket
         any other body                                     the episode itself, streamed to the spool
                                                            (webhook in ?webhook_url=)
    GET  /v1/jobs/{job_id}                                   state, stage percent, report, error
    GET  /v1/jobs?state=&limit=                              newest first
    POST /v1/jobs/{job_id}/cancel                            → 202: a waiting job fails `cancelled` at once,
                                                            a running one stops within seconds

Every request carries `Authorization: Bearer <SERIES_INGEST_TOKEN>`; a POST also an Idempotency-Key:
the same key with the same request answers with the same job, with a different request 422.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from drm.ids import check_id
from packager.errors import ObjectMissing, StoreError
from packager.store import ObjectStore, StoreSettings
from server.config import Settings
from server.edge.auth import AuthRequired, bearer_matches, checked_credentials
from server.edge.bodies import MalformedBody, read_json
from server.edge.metrics import METRICS, Metrics
from server.ingest.spool import sweep_spool_forever
from server.jobs.engines.configured import open_queue
from server.jobs.job_store import JobStore
from server.jobs.jobs import (
    PUBLISHED,
    QUEUED,
    RUNNING_STATES,
    SOURCE_BUCKET,
    SOURCE_SPOOL,
    STATES,
    Job,
    JobError,
    JobRequest,
    check_webhook_allowed,
    fingerprint,
    new_job_id,
)
from server.jobs.owners import local_host
from server.jobs.queue import JobQueue
from server.publishing.admission import check_admission
from server.services import SERVICES

log = logging.getLogger(__name__)

JOBS = web.AppKey("jobs", JobStore)
QUEUE = web.AppKey("job_queue", JobQueue)
UPLOADS = web.AppKey("uploads_store", ObjectStore)

JOB_COUNT_EVERY_S = 5.0
UNFINISHED_STATES = (QUEUED, *RUNNING_STATES)
INGEST_PATH = r"/v1/series/{series_id}/episodes/{episode_id}/ingest"
JOB_PATH = r"/v1/jobs/{job_id:job_[0-9a-f]{24}}"
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")     # printable ASCII, no spaces
MAX_KEY_LENGTH = 1024                                     # S3's limit on object names
SPOOL_WRITE_BYTES = 1024 * 1024
MAX_REFERENCE_BYTES = 8 * 1024                            # bucket + key (<= 1024) + webhook_url (<= 2048)


class IngestRequestError(Exception):
    """A hand-off request that cannot be accepted as sent; the message says what to change."""

    code = "bad_ingest_request"
    http_status = 400


class IngestUnauthorized(AuthRequired):
    code = "ingest_unauthorized"
    auth_realm = "ingest"


class UploadTooLarge(Exception):
    code = "upload_too_large"
    http_status = 413

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"the upload is larger than {limit_bytes} bytes (SERIES_MAX_UPLOAD_BYTES)")
        self.limit_bytes = limit_bytes

    def __reduce__(self):
        return type(self), (self.limit_bytes,)


class UploadNotFound(Exception):
    code = "upload_not_found"
    http_status = 422


def add_routes(app: web.Application, settings: Settings, *, run_jobs: bool = True) -> None:
    """Register the hand-off API and the job machinery (jobs table, worker pool) on `app`; the app's
    Services must be at app[SERVICES]. With `run_jobs` False this process accepts jobs but runs none
    (another process or instance sharing the database does)."""
    app.cleanup_ctx.append(_jobs_ctx(settings, run_jobs))
    app.router.add_post(INGEST_PATH, submit_ingest)
    app.router.add_get(JOB_PATH, get_job)
    app.router.add_get("/v1/jobs", list_jobs)
    app.router.add_post(JOB_PATH + "/cancel", cancel_job)


def _jobs_ctx(settings: Settings, run_jobs: bool):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        jobs = await asyncio.to_thread(JobStore.open, settings.database_target,
                                       busy_timeout_ms=settings.jobs.db_busy_timeout_ms)
        uploads = ObjectStore(_uploads_settings(settings))
        if settings.local_store is not None:     # the embedded setup: make the uploads bucket ready to use
            try:
                await asyncio.to_thread(uploads.ensure_bucket)
            except StoreError as exc:
                log.warning("could not create the uploads bucket: %s", exc)
        queue = open_queue(settings, jobs, run_jobs=run_jobs)
        queue.metrics.on_finished.append(lambda job: _observe_job(app[METRICS], job))
        app[JOBS], app[QUEUE], app[UPLOADS] = jobs, queue, uploads
        await queue.start()
        background = [asyncio.get_running_loop().create_task(_count_jobs_forever(jobs, app[METRICS]))]
        if run_jobs:
            background.append(asyncio.get_running_loop().create_task(sweep_spool_forever(jobs, settings)))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await queue.close()
            uploads.close()
            jobs.close()
    return ctx


async def _count_jobs_forever(jobs: JobStore, metrics: Metrics) -> None:
    # the gauge of unfinished jobs by state: one small grouped read every JOB_COUNT_EVERY_S, off the loop
    while True:
        try:
            metrics.set_job_counts(await asyncio.to_thread(jobs.unfinished_counts), UNFINISHED_STATES)
        except JobError as exc:
            log.debug("job counts: %s", exc)
        await asyncio.sleep(JOB_COUNT_EVERY_S)


def _observe_job(metrics: Metrics, job: Job) -> None:
    """series_job_duration_seconds: from the worker's start to the end (time queued is not the job's)."""
    started = job.started_at or job.created_at
    metrics.observe_job("ingest", max(0.0, (job.finished_at or started) - started),
                        "succeeded" if job.state == PUBLISHED else "failed")


def _uploads_settings(settings: Settings) -> StoreSettings:
    return replace(settings.store, bucket=settings.jobs.uploads_bucket)


def _settings(request: web.Request) -> Settings:
    return request.app[QUEUE].settings


def _authenticate(request: web.Request) -> None:
    expected = _settings(request).jobs.ingest_token
    if not expected:
        raise IngestUnauthorized("the ingest API is disabled: SERIES_INGEST_TOKEN is not set")

    def check() -> None:
        if not bearer_matches(request, expected):
            raise IngestUnauthorized("send Authorization: Bearer <SERIES_INGEST_TOKEN>")

    checked_credentials(request, check)


def _job_response(request: web.Request, job: Job, status: int) -> web.Response:
    return web.json_response(job.as_public_dict(), status=status,
                             headers={"Location": f"/v1/jobs/{job.job_id}", "Cache-Control": "no-store"})


async def submit_ingest(request: web.Request) -> web.Response:
    _authenticate(request)
    services = request.app[SERVICES]
    settings = _settings(request)
    series_id = check_id("series_id", request.match_info["series_id"])
    episode_id = check_id("episode_id", request.match_info["episode_id"])
    # every series rule (unknown series, 80 episodes, price, the creator's eligibility) before the upload
    # is taken, not after minutes of queueing; the job checks them again when it runs
    await asyncio.to_thread(check_admission, services.catalog, services.creators, series_id, episode_id,
                            can_watermark=settings.watermark.is_configured)
    key = request.headers.get("Idempotency-Key", "")
    if not IDEMPOTENCY_KEY.match(key):
        raise IngestRequestError("send an Idempotency-Key header: 1 to 255 printable ASCII characters, "
                                 "the same on every retry of this upload")
    jobs = request.app[JOBS]
    if request.content_type == "application/json":
        job_request = await _reference_request(request, settings, series_id, episode_id, key)
        job, created = await asyncio.to_thread(jobs.create, job_request)
    else:
        job, created = await _spooled_job(request, settings, series_id, episode_id, key)
    if created:
        log.info("job %s: %s episode %s of series %s queued", job.job_id, job.source_kind, episode_id, series_id)
        await request.app[QUEUE].submit(job)
    return _job_response(request, job, 202)


async def _reference_request(request: web.Request, settings: Settings, series_id: str, episode_id: str,
                             idempotency_key: str) -> JobRequest:
    try:
        body = await read_json(request, limit=MAX_REFERENCE_BYTES)
    except MalformedBody as exc:
        raise IngestRequestError(f'{exc}; send {{"bucket": ..., "key": ...}}') from None
    if not isinstance(body, dict):
        raise IngestRequestError('the body must be a JSON object: {"bucket": ..., "key": ...}')
    unknown = set(body) - {"bucket", "key", "webhook_url", "poster_at_s"}
    if unknown:
        raise IngestRequestError(f"unknown fields {sorted(unknown)!r}; expected bucket, key, webhook_url, poster_at_s")
    bucket, object_key = body.get("bucket"), body.get("key")
    if bucket != settings.jobs.uploads_bucket:
        raise IngestRequestError(f"bucket must be the uploads bucket {settings.jobs.uploads_bucket!r}")
    if not isinstance(object_key, str) or not _is_sane_key(object_key):
        raise IngestRequestError(f"key must be an object name of 1 to {MAX_KEY_LENGTH} characters, "
                                 "without control characters, '..' segments or a leading '/'")
    webhook_url = _check_webhook(body.get("webhook_url"), settings.jobs.webhook_hosts)
    poster_at_s = _check_poster_time(body.get("poster_at_s"))
    uploads = request.app[UPLOADS]
    try:
        stat = await asyncio.to_thread(uploads.stat, object_key)
    except ObjectMissing:
        raise UploadNotFound(f"no object {object_key!r} in the uploads bucket {bucket!r}; upload it first") from None
    if stat.size_bytes > settings.jobs.max_upload_bytes:
        raise UploadTooLarge(settings.jobs.max_upload_bytes)
    return JobRequest(
        series_id=series_id, episode_id=episode_id, source_kind=SOURCE_BUCKET, idempotency_key=idempotency_key,
        fingerprint=fingerprint({"series": series_id, "episode": episode_id, "bucket": bucket, "key": object_key,
                                 "etag": stat.etag, "webhook": webhook_url, **_poster_part(poster_at_s)}),
        source_bucket=bucket, source_key=object_key, size_bytes=stat.size_bytes, webhook_url=webhook_url,
        poster_at_s=poster_at_s,
    )


async def _spooled_job(request: web.Request, settings: Settings, series_id: str, episode_id: str,
                       idempotency_key: str) -> tuple[Job, bool]:
    """Stream the body to the spool (never whole in memory), then record the job; a replay drops its copy."""
    limit = settings.jobs.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise UploadTooLarge(limit)
    webhook_url = _check_webhook(request.query.get("webhook_url"), settings.jobs.webhook_hosts)
    poster_at_s = _check_poster_time(request.query.get("poster_at_s"))
    job_id = new_job_id()
    spool = settings.jobs.spool_dir
    await asyncio.to_thread(spool.mkdir, parents=True, exist_ok=True)
    path = spool / f"{job_id}.upload"
    partial = path.with_suffix(".part")
    keep = False
    try:
        digest, size = await _stream_to_file(request, partial, limit)
        if size == 0:
            raise IngestRequestError("the body is empty; send the episode's bytes, or JSON naming an uploaded object")
        await asyncio.to_thread(partial.replace, path)
        job_request = JobRequest(
            series_id=series_id, episode_id=episode_id, source_kind=SOURCE_SPOOL, idempotency_key=idempotency_key,
            fingerprint=fingerprint({"series": series_id, "episode": episode_id, "sha256": digest, "size": size,
                                     "webhook": webhook_url, **_poster_part(poster_at_s)}),
            spool_path=str(path), spool_host=local_host(), size_bytes=size, webhook_url=webhook_url,
            poster_at_s=poster_at_s,
        )
        job, created = await asyncio.to_thread(request.app[JOBS].create, job_request, job_id=job_id)
        keep = created
        return job, created
    finally:
        if not keep:
            for leftover in (partial, path):
                await asyncio.to_thread(leftover.unlink, missing_ok=True)


async def _stream_to_file(request: web.Request, path: Path, limit: int) -> tuple[str, int]:
    """Stream the body into `path`; its SHA-256 (hex) and size in bytes. Raises UploadTooLarge past `limit`.

    Hashing and writing are blocking work, so both run in a thread, a batch of about SPOOL_WRITE_BYTES
    at a time; the loop only reads the socket and counts. While one batch is written and hashed, the
    next is read, so an upload holds at most two batches in memory and the body is read once.
    """
    digest, size = hashlib.sha256(), 0
    batch: list[bytes] = []
    batch_bytes = 0
    in_flight: asyncio.Task | None = None       # the batch being written and hashed
    handle = await asyncio.to_thread(open, path, "wb")
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(limit)
            batch.append(chunk)
            batch_bytes += len(chunk)
            if batch_bytes >= SPOOL_WRITE_BYTES:
                if in_flight is not None:
                    await asyncio.shield(in_flight)     # one at a time: the digest sees the batches in order
                in_flight = asyncio.create_task(asyncio.to_thread(_write_and_hash, handle, digest, batch))
                batch, batch_bytes = [], 0
        if in_flight is not None:
            await asyncio.shield(in_flight)
        if batch:
            in_flight = asyncio.create_task(asyncio.to_thread(_write_and_hash, handle, digest, batch))
            await asyncio.shield(in_flight)
        await asyncio.to_thread(_flush_to_disk, handle)   # durable before the 202 promises the job
    finally:
        # Refused, cut off or cancelled mid-batch: never close under a write. The awaits above are
        # shielded, so a cancelled request leaves the write task running for this wait to see it end.
        if in_flight is not None:
            await asyncio.wait([in_flight])
            if not in_flight.cancelled():
                in_flight.exception()       # retrieved: the error that matters is the one raised here
        await asyncio.to_thread(handle.close)
    return digest.hexdigest(), size


def _write_and_hash(handle, digest, chunks: list[bytes]) -> None:
    for chunk in chunks:
        handle.write(chunk)
        digest.update(chunk)


def _flush_to_disk(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _is_sane_key(key: str) -> bool:
    return (0 < len(key) <= MAX_KEY_LENGTH and not key.startswith("/")
            and not any(ord(c) < 32 or ord(c) == 127 for c in key)
            and ".." not in key.split("/"))


def _check_poster_time(raw) -> float | None:
    """The poster time an upload service names (JSON number, or query text), in seconds; None if absent.
    A time past the episode's end fails the job with picture_time_out_of_range once the duration is known."""
    if raw is None or raw == "":
        return None
    try:
        value = float(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value) or value < 0:
        raise IngestRequestError(f"poster_at_s must be a time in seconds from 0, got {str(raw)[:20]!r}")
    return value


def _poster_part(poster_at_s: float | None) -> dict:
    """The poster time's part of a request's fingerprint: nothing when absent, so a request made before
    poster times existed still matches its retry (its Idempotency-Key replays, not 422)."""
    return {} if poster_at_s is None else {"poster_at_s": poster_at_s}


def _check_webhook(url: object, allowed_hosts: tuple[str, ...]) -> str | None:
    if url is None or url == "":
        return None
    if not isinstance(url, str) or len(url) > 2048:
        raise IngestRequestError("webhook_url must be an http(s) URL of at most 2048 characters")
    try:
        parts = urlsplit(url)
        valid = bool(parts.scheme) and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        valid = False
    if not valid or any(ord(c) < 33 for c in url):
        raise IngestRequestError(f"webhook_url {url[:100]!r} is not an http(s) URL")
    check_webhook_allowed(url, allowed_hosts)     # 422: well formed, but not a place we send to
    return url


async def get_job(request: web.Request) -> web.Response:
    _authenticate(request)
    job = await asyncio.to_thread(request.app[JOBS].get, request.match_info["job_id"])
    return web.json_response(job.as_public_dict(), headers={"Cache-Control": "no-store"})


async def list_jobs(request: web.Request) -> web.Response:
    _authenticate(request)
    state = request.query.get("state") or None
    if state is not None and state not in STATES:
        raise IngestRequestError(f"state must be one of {', '.join(STATES)}")
    jobs = await asyncio.to_thread(request.app[JOBS].list, state=state, limit=query_limit(request))
    return web.json_response({"jobs": [job.as_public_dict() for job in jobs]}, headers={"Cache-Control": "no-store"})


def query_limit(request: web.Request) -> int:
    """?limit= of a listing: 1 to 500, 50 when absent. Raises IngestRequestError."""
    raw_limit = request.query.get("limit", "50")
    # not str.isdigit(): it accepts "²", which int() refuses
    if not re.fullmatch(r"[0-9]{1,3}", raw_limit) or not 1 <= int(raw_limit) <= 500:
        raise IngestRequestError("limit must be an integer from 1 to 500")
    return int(raw_limit)


async def cancel_job(request: web.Request) -> web.Response:
    """Cancel a job: 202 with the job as it is now (failed `cancelled`, or still running while its child
    stops); a finished job is answered as it is, unchanged (200)."""
    _authenticate(request)
    job = await request.app[QUEUE].cancel(request.match_info["job_id"])
    log.info("job %s: cancel requested (%s)", job.job_id, job.state)
    status = 200 if job.is_finished and job.error_code != "cancelled" else 202
    return _job_response(request, job, status)
