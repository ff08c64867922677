"""Receiving one tus chunk (a PATCH body, or a creation-with-upload POST body) into the store.

The body is read as it arrives and cut into S3 parts of SERIES_UPLOAD_PART_BYTES: at most one part is in
memory per request. The bytes after the last full part go to a fresh tail object when the request ends,
and the next PATCH, on whichever instance, reads them back and carries them into its first part; the
row names the tail and how many of its bytes count, so a tail written by a request that then lost the
upload is never read. A request cut off mid-body keeps every byte that arrived (the client resumes from
the offset HEAD gives) unless it carried an Upload-Checksum: then the chunk is kept whole or not at all.

Without a checksum, each full part is recorded as soon as it is stored, so a drop loses nothing already
sent. With one, parts are stored as they fill but recorded only once the digest matches; parts stored
for a chunk that failed its checksum are replaced by the next chunk's and left out of the final object.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from contextlib import suppress

from aiohttp import StreamReader

from packager.store import StoredPart
from server.ingest.resumable import (
    ACTIVE,
    COMPLETING,
    Checksum,
    ChecksumMismatch,
    Upload,
    UploadLengthExceeded,
    upload_prefix,
)
from server.ingest.upload_endings import UploadContext, UploadLeaseLost, UploadLost

log = logging.getLogger(__name__)

# a client gone mid-body shows up as one of these from the body stream, depending on when and how it left
_CUT_OFF = (ConnectionError, EOFError)


class ClientGone(ConnectionError):
    """The client left before its chunk could be judged (a chunk with a checksum): nothing was kept."""


async def receive_chunk(ctx: UploadContext, upload: Upload, holder: str, body: StreamReader, *,
                        content_length: int | None, checksum: Checksum | None) -> Upload:
    """Store the body as the bytes of `upload` from its offset (`upload` is held by `holder`); the upload as
    recorded afterwards: COMPLETING when the body brought its last byte (the caller completes it).

    Raises UploadLengthExceeded (the body runs past Upload-Length), ChecksumMismatch (nothing of the chunk
    kept), ClientGone, UploadLeaseLost, UploadLost, StoreError or JobStoreUnavailable. Never lets go of the
    upload: the caller does.
    """
    remaining = upload.length_bytes - upload.offset_bytes
    if content_length is not None and content_length > remaining:
        raise UploadLengthExceeded(f"the chunk has {content_length} bytes, but only {remaining} are left of the "
                                   f"{upload.length_bytes} announced in Upload-Length")
    writer = _PartWriter(ctx, upload, holder, checksum)
    await writer.load_tail()
    settings = ctx.settings.uploads
    received, is_cut_off = 0, False
    renew_at = time.monotonic() + settings.lease_s / 3
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(body.readany(), settings.idle_s)
            except asyncio.TimeoutError:
                log.info("upload %s: nothing arrived for %.0f s; keeping what did", upload.upload_id, settings.idle_s)
                is_cut_off = True
                break
            if not chunk:
                break
            received += len(chunk)
            if received > remaining:
                raise UploadLengthExceeded(f"the chunk runs past the {upload.length_bytes} bytes announced in "
                                           "Upload-Length")
            await writer.add(chunk)
            if time.monotonic() >= renew_at:
                if not await asyncio.to_thread(ctx.uploads.renew, upload.upload_id, holder, settings.lease_s):
                    raise UploadLeaseLost(f"upload {upload.upload_id} was taken over while this request wrote it")
                renew_at = time.monotonic() + settings.lease_s / 3
    except _CUT_OFF as exc:
        log.info("upload %s: the client left mid-chunk after %d bytes (%s)", upload.upload_id, received, exc)
        is_cut_off = True
    if content_length is not None and received < content_length:
        is_cut_off = True
    # the rest runs even if the client is gone, and is not cancelled with the request: what arrived is kept
    return await asyncio.shield(asyncio.ensure_future(writer.close(is_cut_off=is_cut_off)))


class _PartWriter:
    """The parts and tail of one chunk. `buffer` holds the bytes after the last stored part: the tail carried
    over from earlier chunks (its first `fresh_from` bytes), then this chunk's."""

    def __init__(self, ctx: UploadContext, upload: Upload, holder: str, checksum: Checksum | None) -> None:
        self.ctx, self.upload, self.holder, self.checksum = ctx, upload, holder, checksum
        self.part_bytes = ctx.settings.uploads.part_bytes
        self.expiry_s = ctx.settings.uploads.expiry_s
        self.hash = checksum.new_hash() if checksum else None
        self.parts: list[StoredPart] = list(upload.parts)       # recorded
        self.pending: list[StoredPart] = []                     # stored, recorded once the checksum matches
        self.multipart_id = upload.multipart_id
        self.buffer = bytearray()
        self.fresh_from = 0

    async def load_tail(self) -> None:
        if not self.upload.tail_bytes:
            return
        tail = await asyncio.to_thread(self.ctx.store.get_bytes, self.upload.tail_key or "",
                                       length=self.upload.tail_bytes)
        if len(tail) != self.upload.tail_bytes:
            raise UploadLost(f"upload {self.upload.upload_id}: its tail object has {len(tail)} bytes, not the "
                             f"{self.upload.tail_bytes} recorded")
        self.buffer = bytearray(tail)
        self.fresh_from = len(tail)

    async def add(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            room = self.part_bytes - len(self.buffer)
            self.buffer += view[:room]
            view = view[room:]
            if len(self.buffer) == self.part_bytes:
                data, fresh_from = self.buffer, self.fresh_from
                self.buffer, self.fresh_from = bytearray(), 0    # the part's bytes leave with `data`
                await asyncio.to_thread(self._store_part, data, fresh_from, record=self.hash is None)

    async def close(self, *, is_cut_off: bool) -> Upload:
        if self.hash is not None:
            if is_cut_off:
                raise ClientGone(f"upload {self.upload.upload_id}: the client left mid-chunk; a chunk with a "
                                 "checksum is kept whole or not at all")
            self.hash.update(memoryview(self.buffer)[self.fresh_from:])
            if self.hash.digest() != self.checksum.digest:
                raise ChecksumMismatch(self.checksum.algorithm)
            self.parts.extend(self.pending)
            self.pending = []
        return await asyncio.to_thread(self._record_end)

    # -- in a thread -----------------------------------------------------------------------------------------

    def _store_part(self, data: bytearray, fresh_from: int, *, record: bool) -> None:
        if self.hash is not None:
            self.hash.update(memoryview(data)[fresh_from:])
        if self.multipart_id is None:
            self.multipart_id = self.ctx.store.start_multipart(self.upload.object_key)
            self._check(self.ctx.uploads.set_multipart(self.upload.upload_id, self.holder, self.multipart_id))
        number = len(self.parts) + len(self.pending) + 1
        part = self.ctx.store.upload_part(self.upload.object_key, self.multipart_id, number, data)
        if not record:
            self.pending.append(part)
            return
        self.parts.append(part)
        self._check(self.ctx.uploads.record(self.upload.upload_id, self.holder, parts=self.parts, tail_key=None,
                                            tail_bytes=0, expiry_s=self.expiry_s))

    def _record_end(self) -> Upload:
        upload, uploads = self.upload, self.ctx.uploads
        kept = sum(part.size_bytes for part in self.parts) + len(self.buffer)
        if kept == upload.length_bytes:
            if self.buffer:                                     # the last part may be smaller than the others
                self._store_part(self.buffer, len(self.buffer), record=False)
                self.parts.extend(self.pending)
            self._check(uploads.record(upload.upload_id, self.holder, parts=self.parts, tail_key=None, tail_bytes=0,
                                       expiry_s=self.expiry_s, state=COMPLETING))
        elif len(self.parts) != len(upload.parts) or len(self.buffer) != upload.tail_bytes:
            tail_key = None
            if self.buffer:
                tail_key = f"{upload_prefix(upload.upload_id)}tail/{secrets.token_hex(8)}"
                self.ctx.store.put_bytes(tail_key, bytes(self.buffer))
            self._check(uploads.record(upload.upload_id, self.holder, parts=self.parts, tail_key=tail_key,
                                       tail_bytes=len(self.buffer), expiry_s=self.expiry_s, state=ACTIVE))
        else:
            return uploads.get(upload.upload_id)                # nothing new arrived
        if upload.tail_key:                                     # replaced: the row no longer names it
            with suppress(Exception):
                self.ctx.store.delete_prefix(upload.tail_key)
        return uploads.get(upload.upload_id)

    def _check(self, written: bool) -> None:
        if not written:
            raise UploadLeaseLost(f"upload {self.upload.upload_id} was taken over while this request wrote it "
                                  "(its lease had run out)")
