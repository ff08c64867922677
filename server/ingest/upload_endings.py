"""How a resumable upload ends: completed (its parts joined into one object and its ingest job queued,
exactly once), or abandoned (terminated, expired, rejected: its multipart upload aborted, its objects
deleted, and the episode it created withdrawn). Synchronous; the API calls it in a thread, the sweep
(server/ingest/upload_sweep.py) and `series gc` directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from drm.catalog.catalog import Catalog
from drm.errors import DrmError
from packager.errors import MultipartMissing
from packager.store import ObjectStore
from server.config import Settings
from server.ingest.resumable import COMPLETING, REJECTED, Upload, UploadError, upload_prefix
from server.ingest.upload_store import UploadStore
from server.jobs.job_store import JobStore
from server.jobs.jobs import SOURCE_BUCKET, Job, JobRequest, fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadContext:
    """What upload code works with: settings, the uploads table, the uploads bucket, jobs, the catalog."""

    settings: Settings
    uploads: UploadStore
    store: ObjectStore                  # the uploads bucket (SERIES_UPLOADS_BUCKET)
    jobs: JobStore
    catalog: Catalog


class UploadLost(UploadError):
    """The store no longer has the upload's parts (aborted behind our back); the file must be sent again."""

    code = "upload_lost"
    http_status = 500


class UploadLeaseLost(UploadError):
    """Another holder took the upload over while this request still wrote it (its lease had run out)."""

    code = "upload_locked"
    http_status = 409


def job_idempotency_key(upload_id: str) -> str:
    # a space: the ingest API refuses keys with one, so no client can take this key for something else
    return f"tus {upload_id}"


def complete_upload(ctx: UploadContext, upload: Upload, holder: str) -> Job:
    """Join a completing upload's parts into its object and queue its ingest job; the job.

    Safe to repeat from any instance (a lost answer, a crash between the steps): the join is idempotent
    and the job's Idempotency-Key is the upload's, so the job is queued exactly once. Raises StoreError or
    JobStoreUnavailable (transient: the upload stays completing and the sweep finishes it), the catalog's
    refusal of the episode (the upload is then rejected and cleared), UploadLost.
    """
    if upload.state != COMPLETING:
        raise ValueError(f"upload {upload.upload_id} is {upload.state}, not completing")
    try:
        ctx.store.complete_multipart(upload.object_key, upload.multipart_id or "", list(upload.parts))
    except MultipartMissing as exc:
        error = {"code": UploadLost.code, "message": "the store lost the upload's parts; upload the file again"}
        abandon(ctx, upload, holder, REJECTED, error=error)
        raise UploadLost(f"upload {upload.upload_id}: {error['message']}") from exc
    request = JobRequest(
        series_id=upload.series_id, episode_id=upload.episode_id, source_kind=SOURCE_BUCKET,
        idempotency_key=job_idempotency_key(upload.upload_id),
        fingerprint=fingerprint({"upload": upload.upload_id, "key": upload.object_key, "size": upload.length_bytes}),
        source_bucket=ctx.store.bucket, source_key=upload.object_key, size_bytes=upload.length_bytes,
        webhook_url=upload.webhook_url,
    )
    try:
        job, created = ctx.jobs.create(request)
    except DrmError as exc:     # the series refused the episode meanwhile: full, archived, the episode deleted
        abandon(ctx, upload, holder, REJECTED, error={"code": exc.code, "message": str(exc)})
        raise
    ctx.uploads.finish(upload.upload_id, holder, job.job_id)
    if created:
        log.info("upload %s complete (%d bytes, %d parts): job %s queued for episode %s of series %s",
                 upload.upload_id, upload.length_bytes, len(upload.parts), job.job_id, upload.episode_id,
                 upload.series_id)
    return job


def abandon(ctx: UploadContext, upload: Upload, holder: str, state: str, *, error: dict | None = None) -> bool:
    """End a held upload as `state` (terminated, expired, rejected), withdraw the episode it created if that
    never got media, and clear its objects. False if `holder` had lost it. A store failure while clearing
    is logged: the ended upload's objects are cleared by the next sweep."""
    if not ctx.uploads.end(upload.upload_id, holder, state, error=error):
        return False
    if upload.created_episode:
        try:
            ctx.catalog.withdraw_episode(upload.series_id, upload.episode_id)
        except DrmError as exc:     # the series itself went: nothing to withdraw
            log.info("upload %s: its episode was not withdrawn: %s", upload.upload_id, exc)
    log.info("upload %s %s at %d of %d bytes", upload.upload_id, state, upload.offset_bytes, upload.length_bytes)
    try:
        clear_objects(ctx, upload)
    except Exception as exc:  # noqa: BLE001 - the ending stands; the sweep clears what is left
        log.warning("upload %s: its objects were not cleared yet (%s); the next sweep clears them", upload.upload_id,
                    exc)
    return True


def clear_objects(ctx: UploadContext, upload: Upload) -> int:
    """Abort the upload's multipart uploads (the recorded one, and any a crash left unrecorded) and delete
    every object under its prefix; how many objects. Raises StoreError (nothing is marked cleared then)."""
    if upload.multipart_id:
        ctx.store.abort_multipart(upload.object_key, upload.multipart_id)
    for leftover in ctx.store.list_multipart(upload_prefix(upload.upload_id)):     # started, never recorded
        ctx.store.abort_multipart(leftover.key, leftover.upload_id)
    deleted = ctx.store.delete_prefix(upload_prefix(upload.upload_id))
    ctx.uploads.mark_cleared(upload.upload_id)
    return deleted
