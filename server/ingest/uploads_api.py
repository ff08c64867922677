"""Resumable uploads over HTTP: the tus 1.0 protocol (core, creation, creation-with-upload, termination,
expiration, checksum) at /v1/uploads, and a JSON view of uploads for upload services and the studio.

    OPTIONS /v1/uploads              Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm
    POST    /v1/uploads              create (Upload-Length, Upload-Metadata: series, episode, title, filename)
                                     → 201, Location; with an application/offset+octet-stream body, its first bytes
    HEAD    /v1/uploads/{id}         Upload-Offset: where to resume
    PATCH   /v1/uploads/{id}         bytes at Upload-Offset → 204, the new Upload-Offset
    DELETE  /v1/uploads/{id}         terminate: its bytes go, and the episode it created if that has no media
    GET     /v1/uploads/{id}         JSON: state, offset, percent, expiry, the job once complete
    GET     /v1/uploads              JSON: the caller's uploads, newest first

Callers: upload services with `Authorization: Bearer <SERIES_INGEST_TOKEN>` (any series), and creators with
their account token (their own series and their own uploads only): the creator studio uploads from the
browser with tus-js-client. Every series rule is checked at creation, before a byte is stored, as the
ingest API does; when the last byte arrives the ingest job is queued (once) as for an uploads-bucket
reference, and the episode shows its progress.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate

from aiohttp import web

from drm.catalog.catalog import check_title
from drm.errors import EpisodeExists, NotSeriesOwner
from drm.ids import field_id
from server.config import Settings
from server.edge.auth import bearer, bearer_matches, checked_credentials, require_account
from server.edge.problems import problem_for
from server.ingest.api import JOBS, QUEUE, UPLOADS, IngestUnauthorized, UploadTooLarge, _check_webhook, query_limit
from server.ingest.resumable import (
    ACTIVE,
    CHECKSUM_ALGORITHMS,
    COMPLETING,
    EXPIRED,
    INGEST_OWNER,
    OFFSET_CONTENT_TYPE,
    REJECTED,
    STATES,
    TERMINATED,
    TUS_EXTENSIONS,
    TUS_VERSION,
    UPLOAD_ID_PATTERN,
    NewUpload,
    TusVersionUnsupported,
    UnsupportedMediaType,
    Upload,
    UploadGone,
    UploadLocked,
    UploadNotFound,
    UploadRejected,
    UploadRequestError,
    creator_owner,
    parse_checksum,
    parse_metadata,
    parse_size,
    safe_filename,
)
from server.ingest.upload_chunks import receive_chunk
from server.ingest.upload_endings import UploadContext, abandon, complete_upload
from server.ingest.upload_store import UploadStore
from server.ingest.upload_sweep import STORE_SCAN_INTERVAL_S, SWEEP_INTERVAL_S, sweep_uploads
from server.publishing.admission import check_admission
from server.services import SERVICES

log = logging.getLogger(__name__)

UPLOAD_CONTEXT = web.AppKey("upload_context", UploadContext)
UPLOADS_PATH = "/v1/uploads"
UPLOAD_PATH = "/v1/uploads/{upload_id:" + UPLOAD_ID_PATTERN + "}"
JOB_HEADER = "Series-Job-Id"
MAX_METADATA_CHARS = 4096
TERMINATE_WAIT_S = 5.0      # a DELETE right after the client abandoned its PATCH waits for that request to let go


@dataclass(frozen=True, slots=True)
class Uploader:
    owner: str                          # INGEST_OWNER or "creator:<id>"
    creator_id: str | None

    def may_see(self, upload: Upload) -> bool:
        return self.creator_id is None or upload.owner == self.owner


def add_routes(app: web.Application, settings: Settings) -> None:
    """Register the tus endpoints; after server.ingest.api.add_routes (they share its jobs and uploads bucket)."""
    app.cleanup_ctx.append(_uploads_ctx(settings))
    app.router.add_route("OPTIONS", UPLOADS_PATH, _tus(options))
    app.router.add_post(UPLOADS_PATH, _tus(create_upload))
    app.router.add_get(UPLOADS_PATH, list_uploads)
    app.router.add_get(UPLOAD_PATH, get_upload, allow_head=False)
    app.router.add_head(UPLOAD_PATH, _tus(head_upload))
    app.router.add_patch(UPLOAD_PATH, _tus(patch_upload))
    app.router.add_delete(UPLOAD_PATH, _tus(terminate_upload))


def _uploads_ctx(settings: Settings):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        jobs = app[JOBS]
        context = UploadContext(settings=settings, uploads=UploadStore(jobs.db), store=app[UPLOADS], jobs=jobs,
                                catalog=app[SERVICES].catalog)
        app[UPLOAD_CONTEXT] = context
        sweeper = asyncio.create_task(_sweep(context, app))
        try:
            yield
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
    return ctx


async def _sweep(context: UploadContext, app: web.Application) -> None:
    scanned_at = 0.0
    while True:
        try:
            scan = time.monotonic() - scanned_at >= STORE_SCAN_INTERVAL_S
            _, jobs = await asyncio.to_thread(sweep_uploads, context, scan_store=scan)
            scanned_at = time.monotonic() if scan else scanned_at
            for job in jobs:
                await app[QUEUE].submit(job)
        except Exception:  # noqa: BLE001 - the sweep must outlive one bad round
            log.exception("uploads sweep failed")
        await asyncio.sleep(min(SWEEP_INTERVAL_S, context.settings.uploads.lease_s))


def _tus(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """Every tus answer, refusals included, carries Tus-Resumable (a 412 also Tus-Version)."""
    async def tus_handler(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ConnectionError:
            raise                       # the client left: the edge logs it as 499
        except Exception as exc:  # noqa: BLE001 - answered as problem+json, as the edge would
            response = problem_for(exc, request)
            response.headers["Tus-Resumable"] = TUS_VERSION
            if isinstance(exc, TusVersionUnsupported):
                response.headers["Tus-Version"] = TUS_VERSION
            return response
    tus_handler.__name__ = handler.__name__
    tus_handler.__doc__ = handler.__doc__
    return tus_handler


def _require_tus(request: web.Request) -> None:
    sent = request.headers.get("Tus-Resumable")
    if sent != TUS_VERSION:
        raise TusVersionUnsupported(f"send Tus-Resumable: {TUS_VERSION} (got {sent[:20]!r})" if sent else
                                    f"send Tus-Resumable: {TUS_VERSION}: this is a tus 1.0 endpoint")


def _uploader(request: web.Request) -> Uploader:
    """Upload services (the ingest token) or a creator (an account token); 401/403 otherwise."""
    if bearer(request) is None:
        raise IngestUnauthorized("send Authorization: Bearer <SERIES_INGEST_TOKEN> (upload services) or a creator's "
                                 "account token (the creator studio)")
    ingest_token = request.app[QUEUE].settings.jobs.ingest_token
    if ingest_token and bearer_matches(request, ingest_token):
        checked_credentials(request, lambda: None)      # a throttled address is refused, right token or not
        return Uploader(INGEST_OWNER, None)
    account = require_account(request, request.app[SERVICES], "creator")
    return Uploader(creator_owner(account.subject), account.subject)


def _headers(upload: Upload, **extra: str) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, "Upload-Offset": str(upload.offset_bytes), "Cache-Control": "no-store",
               **extra}
    if upload.state == ACTIVE:
        headers["Upload-Expires"] = formatdate(upload.expires_at, usegmt=True)
    if upload.job_id:
        headers[JOB_HEADER] = upload.job_id
    return headers


async def _visible(request: web.Request, uploader: Uploader) -> Upload:
    upload_id = request.match_info["upload_id"]
    upload = await asyncio.to_thread(request.app[UPLOAD_CONTEXT].uploads.get, upload_id)
    if not uploader.may_see(upload):
        raise UploadNotFound(upload_id)         # another creator's: as if it did not exist
    return upload


# -- tus ------------------------------------------------------------------------------------------------

async def options(request: web.Request) -> web.Response:
    """tus discovery: what this server speaks. No credentials needed."""
    return web.Response(status=204, headers={
        "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": ",".join(TUS_EXTENSIONS),
        "Tus-Max-Size": str(request.app[UPLOAD_CONTEXT].settings.jobs.max_upload_bytes),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS)})


async def create_upload(request: web.Request) -> web.Response:
    _require_tus(request)
    uploader = _uploader(request)
    context = request.app[UPLOAD_CONTEXT]
    settings = context.settings
    for unsupported in ("Upload-Defer-Length", "Upload-Concat"):
        if unsupported in request.headers:
            raise UploadRequestError(f"{unsupported} is not supported here: send Upload-Length with the file's size")
    length = parse_size("Upload-Length", request.headers.get("Upload-Length"), minimum=1)
    if length > settings.jobs.max_upload_bytes:
        raise UploadTooLarge(settings.jobs.max_upload_bytes)        # before a byte is stored
    raw_metadata = request.headers.get("Upload-Metadata", "")
    if len(raw_metadata) > MAX_METADATA_CHARS:
        raise UploadRequestError(f"Upload-Metadata is longer than {MAX_METADATA_CHARS} characters")
    metadata = parse_metadata(raw_metadata)
    missing = [key for key in ("series", "episode") if not metadata.get(key)]
    if missing:
        raise UploadRequestError(f"Upload-Metadata must name the {' and the '.join(missing)} "
                                 "(e.g. 'series a25vdHM=,episode Mw==': base64 of each value)")
    series_id = field_id("series", metadata["series"])
    episode_id = field_id("episode", metadata["episode"])
    title = check_title(metadata["title"]) if metadata.get("title") else None
    webhook_url = metadata.get("webhook_url") or None
    if webhook_url and uploader.creator_id:
        raise UploadRequestError("webhook_url is for upload services (the ingest token); the studio follows the "
                                 "episode's status instead")
    webhook_url = _check_webhook(webhook_url, settings.jobs.webhook_hosts)
    has_body = request.content_length != 0 and request.body_exists
    if has_body and request.content_type != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(f"a creation with data sends Content-Type: {OFFSET_CONTENT_TYPE}")
    checksum = parse_checksum(request.headers.get("Upload-Checksum")) if has_body else None
    services = request.app[SERVICES]
    # every series rule before anything is stored, as the ingest API does; the job checks them again
    series = await asyncio.to_thread(check_admission, services.catalog, services.creators, series_id, episode_id,
                                     can_watermark=settings.watermark.is_configured)
    if uploader.creator_id is not None and series.creator_id != uploader.creator_id:
        raise NotSeriesOwner(uploader.creator_id, series_id)
    new = NewUpload(owner=uploader.owner, series_id=series_id, episode_id=episode_id, title=title,
                    filename=safe_filename(metadata.get("filename") or metadata.get("name")), metadata=raw_metadata,
                    webhook_url=webhook_url, length_bytes=length)
    cap = settings.uploads.max_per_creator if uploader.creator_id else settings.uploads.max_per_ingest_token
    upload = await asyncio.to_thread(context.uploads.create, new, cap=cap, expiry_s=settings.uploads.expiry_s)
    try:
        # the episode exists from now on, waiting for its media: its slot is taken, the series' limit holds
        if await asyncio.to_thread(_create_episode, context, upload):
            await asyncio.to_thread(context.uploads.note_created_episode, upload.upload_id)
    except BaseException:
        await asyncio.to_thread(context.uploads.forget, upload.upload_id)
        raise
    log.info("upload %s created by %s: %d bytes for episode %s of series %s", upload.upload_id, uploader.owner,
             length, episode_id, series_id)
    location = f"{UPLOADS_PATH}/{upload.upload_id}"
    if has_body:
        try:
            upload = await _write_chunk(request, upload.upload_id, 0, checksum)
        except ConnectionError:
            raise
        except Exception as exc:  # noqa: BLE001 - the upload exists: its refusal names it, to resume
            response = problem_for(exc, request)
            response.headers.update({"Location": location, "Tus-Resumable": TUS_VERSION})
            return response
    else:
        upload = await asyncio.to_thread(context.uploads.get, upload.upload_id)
    return web.Response(status=201, headers=_headers(upload, Location=location))


def _create_episode(context: UploadContext, upload: Upload) -> bool:
    """Create the upload's episode (status uploading) unless it exists; True if it was created."""
    try:
        context.catalog.create_episode(upload.series_id, upload.episode_id, title=upload.title)
    except EpisodeExists:
        return False            # a new version of an episode that has one, or one created through the API
    return True


async def head_upload(request: web.Request) -> web.Response:
    """Where the upload stands: resume from Upload-Offset."""
    _require_tus(request)
    upload = await _visible(request, _uploader(request))
    context = request.app[UPLOAD_CONTEXT]
    now = context.uploads.now()
    if upload.state in (TERMINATED, EXPIRED) or upload.is_expired(now):
        raise UploadGone(upload.upload_id, TERMINATED if upload.state == TERMINATED else EXPIRED)
    if upload.state == REJECTED:
        raise UploadRejected(upload.upload_id, upload.error or {})
    if upload.state == COMPLETING and not upload.is_held(now):
        upload = await _complete_left_over(request, upload)
    headers = _headers(upload, **{"Upload-Length": str(upload.length_bytes)})
    if upload.metadata:
        headers["Upload-Metadata"] = upload.metadata
    return web.Response(status=200, headers=headers)


async def patch_upload(request: web.Request) -> web.Response:
    """Bytes at Upload-Offset; 204 with the new offset (the job's id once the last byte is in)."""
    _require_tus(request)
    uploader = _uploader(request)
    if request.content_type != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(f"send the chunk with Content-Type: {OFFSET_CONTENT_TYPE}")
    offset = parse_size("Upload-Offset", request.headers.get("Upload-Offset"))
    checksum = parse_checksum(request.headers.get("Upload-Checksum"))
    upload = await _visible(request, uploader)
    upload = await _write_chunk(request, upload.upload_id, offset, checksum)
    return web.Response(status=204, headers=_headers(upload))


async def _write_chunk(request: web.Request, upload_id: str, offset: int, checksum) -> Upload:
    """Hold the upload at `offset`, store the body, and complete the upload if that was its last byte.

    In a task of its own: a client that leaves mid-body may cancel the handler (a runner with
    handler_cancellation), but never the storing, so that what arrived is kept and the upload let go.
    """
    task = asyncio.ensure_future(_store_chunk(request, upload_id, offset, checksum))
    # retrieved: when the handler was cancelled, its error was for a client that is gone
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return await asyncio.shield(task)


async def _store_chunk(request: web.Request, upload_id: str, offset: int, checksum) -> Upload:
    context = request.app[UPLOAD_CONTEXT]
    holder = "patch:" + secrets.token_hex(8)
    upload = await asyncio.to_thread(context.uploads.claim, upload_id, holder, context.settings.uploads.lease_s,
                                     offset=offset)
    try:
        upload = await receive_chunk(context, upload, holder, request.content, content_length=request.content_length,
                                     checksum=checksum)
        if upload.state == COMPLETING:
            job = await asyncio.to_thread(complete_upload, context, upload, holder)
            await request.app[QUEUE].submit(job)
            upload = await asyncio.to_thread(context.uploads.get, upload_id)
    finally:
        await asyncio.to_thread(context.uploads.release, upload_id, holder)
    return upload


async def _complete_left_over(request: web.Request, upload: Upload) -> Upload:
    """A completing upload nobody holds (its request died after the last byte): complete it now rather than
    at the next sweep. Best effort: on failure the sweep completes it."""
    context = request.app[UPLOAD_CONTEXT]
    holder = "head:" + secrets.token_hex(8)
    try:
        held = await asyncio.to_thread(context.uploads.claim, upload.upload_id, holder,
                                       context.settings.uploads.lease_s, states=(COMPLETING,))
        job = await asyncio.to_thread(complete_upload, context, held, holder)
        await request.app[QUEUE].submit(job)
    except Exception as exc:  # noqa: BLE001 - the HEAD answers the offset either way
        log.info("upload %s: completion left for the sweep: %s", upload.upload_id, exc)
    finally:
        await asyncio.to_thread(context.uploads.release, upload.upload_id, holder)
    return await asyncio.to_thread(context.uploads.get, upload.upload_id)


async def terminate_upload(request: web.Request) -> web.Response:
    """Terminate: the bytes go, and the episode the upload created if it never got media."""
    _require_tus(request)
    upload = await _visible(request, _uploader(request))
    context = request.app[UPLOAD_CONTEXT]
    holder = "delete:" + secrets.token_hex(8)
    deadline = time.monotonic() + TERMINATE_WAIT_S
    while True:
        try:
            held = await asyncio.to_thread(context.uploads.claim, upload.upload_id, holder,
                                           context.settings.uploads.lease_s)
            break
        except UploadLocked:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.2)
    await asyncio.to_thread(abandon, context, held, holder, TERMINATED)
    return web.Response(status=204, headers={"Tus-Resumable": TUS_VERSION})


# -- JSON ---------------------------------------------------------------------------------------------------

async def get_upload(request: web.Request) -> web.Response:
    upload = await _visible(request, _uploader(request))
    now = request.app[UPLOAD_CONTEXT].uploads.now()
    return web.json_response(upload.as_public_dict(now), headers={"Cache-Control": "no-store"})


async def list_uploads(request: web.Request) -> web.Response:
    uploader = _uploader(request)
    state = request.query.get("state") or None
    if state is not None and state not in STATES:
        raise UploadRequestError(f"state must be one of {', '.join(STATES)}")
    uploads = request.app[UPLOAD_CONTEXT].uploads
    listed = await asyncio.to_thread(uploads.list, owner=None if uploader.creator_id is None else uploader.owner,
                                     states=(state,) if state else (), limit=query_limit(request))
    now = uploads.now()
    return web.json_response({"uploads": [upload.as_public_dict(now) for upload in listed]},
                             headers={"Cache-Control": "no-store"})
