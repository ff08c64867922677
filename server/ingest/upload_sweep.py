"""The uploads sweep: what resumable uploads leave behind, ended and cleared.

- An active upload that received nothing for SERIES_UPLOAD_EXPIRY_S expires: its multipart upload is
  aborted, its tail and parts deleted, and the episode it created (never given media) withdrawn.
- A completing upload whose request died between its last byte and its job (a crash, the store down)
  is completed here: the join and the job are idempotent, so the job is still queued exactly once.
- A completed upload's object goes once its job published, or failed more than
  SERIES_FAILED_UPLOAD_RETENTION_S ago (kept meanwhile, as a failed job's spooled upload is).
- Terminated, expired and rejected uploads whose objects are still there (the store was down when they
  ended) are cleared; rows of uploads cleared longer than the retention ago are forgotten.
- With `scan_store`: multipart uploads and objects under tus/ that no open upload owns and that are over
  an hour old (a crash between starting a multipart upload and recording it, a row forgotten) go too.

The service sweeps every minute (the store scan hourly), in a thread; `series gc` sweeps on demand.
Every step claims the upload first, so instances sweeping at once never work on the same upload.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from drm.errors import DrmError
from packager.errors import StoreError
from server.ingest.jobs import FAILED, Job, JobNotFound, JobStoreUnavailable
from server.ingest.resumable import (
    ACTIVE,
    COMPLETED,
    COMPLETING,
    ENDED_STATES,
    EXPIRED,
    UPLOADS_PREFIX,
    UploadError,
    upload_id_of,
)
from server.ingest.upload_endings import UploadContext, abandon, clear_objects, complete_upload

log = logging.getLogger(__name__)

ORPHAN_AGE_S = 3600.0       # an unowned multipart upload or object younger than this may be a creation under way
SWEEP_INTERVAL_S = 60.0
STORE_SCAN_INTERVAL_S = 3600.0

EXPIRED_UPLOAD, COMPLETED_UPLOAD, CLEARED, ORPHAN = "expired", "completed", "cleared", "orphan"


@dataclass(frozen=True, slots=True, kw_only=True)
class SweptUpload:
    upload_id: str | None       # None: an object or multipart upload no row names
    action: str                 # EXPIRED_UPLOAD, COMPLETED_UPLOAD, CLEARED, ORPHAN
    detail: str

    def as_dict(self) -> dict:
        return {"upload_id": self.upload_id, "action": self.action, "detail": self.detail}


def sweep_uploads(ctx: UploadContext, *, scan_store: bool = True, dry_run: bool = False) -> tuple[list[SweptUpload],
                                                                                                   list[Job]]:
    """One sweep (see the module docstring): what was (or, with `dry_run`, would be) done, and the jobs it
    queued (the caller hands them to its runner). A store or database failure on one upload is logged and
    the sweep goes on; the next one retries."""
    holder = "sweep:" + secrets.token_hex(8)
    swept: list[SweptUpload] = []
    jobs: list[Job] = []
    now = ctx.uploads.now()
    lease_s = ctx.settings.uploads.lease_s
    for upload in ctx.uploads.with_states((ACTIVE, COMPLETING)):
        if upload.is_held(now) or not (upload.is_expired(now) or upload.state == COMPLETING):
            continue
        action = EXPIRED_UPLOAD if upload.state == ACTIVE else COMPLETED_UPLOAD
        detail = f"{upload.offset_bytes} of {upload.length_bytes} bytes, series {upload.series_id} episode " \
                 f"{upload.episode_id}"
        if dry_run:
            swept.append(SweptUpload(upload_id=upload.upload_id, action=action, detail=detail))
            continue
        try:
            held = ctx.uploads.claim(upload.upload_id, holder, lease_s, states=(upload.state,), include_expired=True)
        except UploadError:
            continue                    # another instance, or a PATCH, took it first
        try:
            if action == EXPIRED_UPLOAD:
                if abandon(ctx, held, holder, EXPIRED):
                    swept.append(SweptUpload(upload_id=upload.upload_id, action=action, detail=detail))
            else:
                jobs.append(complete_upload(ctx, held, holder))
                swept.append(SweptUpload(upload_id=upload.upload_id, action=action, detail=f"job {jobs[-1].job_id}"))
        except (StoreError, JobStoreUnavailable) as exc:
            log.warning("uploads sweep: upload %s: %s; the next sweep tries again", upload.upload_id, exc)
        except (DrmError, UploadError) as exc:      # rejected at completion: already ended and cleared
            swept.append(SweptUpload(upload_id=upload.upload_id, action=CLEARED, detail=f"rejected: {exc}"))
        finally:
            ctx.uploads.release(upload.upload_id, holder)
    swept.extend(_clear_ended(ctx, now, dry_run=dry_run))
    if scan_store:
        swept.extend(_clear_orphans(ctx, now, dry_run=dry_run))
    if not dry_run:
        ctx.uploads.purge(now - ctx.settings.jobs.failed_upload_retention_s)
    if swept and not dry_run:
        log.info("uploads sweep: %d expired, %d completed, %d cleared, %d orphans",
                 *(sum(item.action == action for item in swept)
                   for action in (EXPIRED_UPLOAD, COMPLETED_UPLOAD, CLEARED, ORPHAN)))
    return swept, jobs


def _clear_ended(ctx: UploadContext, now: float, *, dry_run: bool) -> list[SweptUpload]:
    swept = []
    retention_s = ctx.settings.jobs.failed_upload_retention_s
    for upload in ctx.uploads.with_states(ENDED_STATES, uncleared_only=True):
        detail = upload.state
        if upload.state == COMPLETED and upload.job_id:
            try:
                job = ctx.jobs.get(upload.job_id)
            except JobNotFound:
                job = None
            if job is not None and not job.is_finished:
                continue                # its worker still needs the object
            if job is not None and job.state == FAILED and (job.finished_at or now) > now - retention_s:
                continue                # kept for a while, as a failed job's spooled upload is
            detail = f"completed, job {upload.job_id} {job.state if job else 'gone'}"
        if dry_run:
            swept.append(SweptUpload(upload_id=upload.upload_id, action=CLEARED, detail=detail))
            continue
        try:
            deleted = clear_objects(ctx, upload)
        except StoreError as exc:
            log.warning("uploads sweep: the objects of upload %s stay for now: %s", upload.upload_id, exc)
            continue
        swept.append(SweptUpload(upload_id=upload.upload_id, action=CLEARED, detail=f"{detail}, {deleted} objects"))
    return swept


def _clear_orphans(ctx: UploadContext, now: float, *, dry_run: bool) -> list[SweptUpload]:
    """Multipart uploads and object prefixes under tus/ that no open upload owns, older than ORPHAN_AGE_S."""
    try:
        multiparts = ctx.store.list_multipart(UPLOADS_PREFIX)
        prefixes = ctx.store.list_prefixes(UPLOADS_PREFIX)
    except StoreError as exc:
        log.warning("uploads sweep: the store scan was skipped: %s", exc)
        return []
    ids = {upload_id_of(item.key) for item in multiparts} | {upload_id_of(prefix) for prefix in prefixes}
    known = ctx.uploads.known(sorted(upload_id for upload_id in ids if upload_id))
    swept = []
    for multipart in multiparts:
        upload = known.get(upload_id_of(multipart.key) or "")
        if upload is not None and upload.is_open and (upload.multipart_id == multipart.upload_id
                                                      or multipart.initiated_at > now - ORPHAN_AGE_S):
            continue
        if upload is None and multipart.initiated_at > now - ORPHAN_AGE_S:
            continue
        if not dry_run:
            try:
                ctx.store.abort_multipart(multipart.key, multipart.upload_id)
            except StoreError as exc:
                log.warning("uploads sweep: could not abort the multipart upload of %s: %s", multipart.key, exc)
                continue
        swept.append(SweptUpload(upload_id=upload.upload_id if upload else None, action=ORPHAN,
                                 detail=f"multipart upload of {multipart.key}"))
    for prefix in prefixes:
        if upload_id_of(prefix) in known:
            continue                    # its row decides (an ended upload's objects go in _clear_ended)
        try:
            objects = ctx.store.list_objects(prefix)
            if not objects or any(item.modified_at > now - ORPHAN_AGE_S for item in objects):
                continue
            if not dry_run:
                ctx.store.delete_prefix(prefix)
        except StoreError as exc:
            log.warning("uploads sweep: could not delete the orphaned objects under %s: %s", prefix, exc)
            continue
        swept.append(SweptUpload(upload_id=None, action=ORPHAN,
                                 detail=f"{len(objects)} objects under {prefix} that no upload names"))
    return swept
