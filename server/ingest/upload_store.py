"""The resumable_uploads table (drm/storage/migrations.py, version 5): every upload's offset, parts, tail, owner and
expiry, shared by every instance, so that any of them can take the next chunk.

One request at a time writes an upload: a PATCH (or a termination, or the sweep) first *claims* it, an
UPDATE that succeeds only at the offset the client sent and while no one else holds it, under a lease
the holder renews while bytes arrive. Every later write names the holder, so a holder whose lease ran
out (a stalled instance) can no longer change what the next one wrote. Two PATCHes at one offset: one
claims it, the other gets 409.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from drm.storage.database import Database, Row
from packager.store import StoredPart
from server.ingest.resumable import (
    ACTIVE,
    COMPLETED,
    COMPLETING,
    EXPIRED,
    OPEN_STATES,
    REJECTED,
    TERMINATED,
    NewUpload,
    OffsetMismatch,
    TooManyUploads,
    Upload,
    UploadFinished,
    UploadGone,
    UploadInProgress,
    UploadLocked,
    UploadNotFound,
    owner_creator,
)
from server.jobs.job_rows import translated_errors

_OPEN = ",".join(f"'{state}'" for state in OPEN_STATES)


class UploadStore:
    """Reads and fenced writes of resumable_uploads. Thread-safe (Database serializes); synchronous."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self._clock = clock

    # -- creating ---------------------------------------------------------------------------------------

    def create(self, new: NewUpload, *, cap: int, expiry_s: float) -> Upload:
        """Record a new active upload. Raises TooManyUploads when its owner has `cap` open uploads already
        (expired ones do not count), UploadInProgress when its episode has one."""
        now = self._clock()
        with self._translated(), self.db.transaction() as tx:
            tx.lock(f"uploads:{new.owner}")
            tx.lock(f"uploads:{new.series_id}/{new.episode_id}")
            open_count = tx.fetch_one(f"SELECT COUNT(*) FROM resumable_uploads WHERE owner = ? AND state IN ({_OPEN})"
                                      " AND NOT (state = ? AND expires_at <= ?)", (new.owner, ACTIVE, now))[0]
            if open_count >= cap:
                who = f"creator {owner_creator(new.owner)}" if owner_creator(new.owner) else "the ingest token"
                raise TooManyUploads(who, cap)
            same = tx.fetch_one(f"SELECT upload_id FROM resumable_uploads WHERE series_id = ? AND episode_id = ?"
                                f" AND state IN ({_OPEN}) AND NOT (state = ? AND expires_at <= ?)",
                                (new.series_id, new.episode_id, ACTIVE, now))
            if same is not None:
                raise UploadInProgress(new.series_id, new.episode_id, same["upload_id"])
            tx.execute(
                "INSERT INTO resumable_uploads (upload_id, owner, series_id, episode_id, title, filename, metadata,"
                " webhook_url, length_bytes, object_key, state, created_at, updated_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (new.upload_id, new.owner, new.series_id, new.episode_id, new.title, new.filename, new.metadata,
                 new.webhook_url, new.length_bytes, new.object_key, ACTIVE, now, now, now + expiry_s))
        return self.get(new.upload_id)

    def note_created_episode(self, upload_id: str) -> None:
        """The upload created its episode: abandoned, it withdraws it again."""
        with self._translated(), self.db.transaction() as tx:
            tx.execute("UPDATE resumable_uploads SET created_episode = 1 WHERE upload_id = ?", (upload_id,))

    def forget(self, upload_id: str) -> None:
        """Delete the row of an upload whose creation failed before anything was stored."""
        with self._translated(), self.db.transaction() as tx:
            tx.execute("DELETE FROM resumable_uploads WHERE upload_id = ? AND offset_bytes = 0 AND multipart_id IS NULL",
                       (upload_id,))

    # -- reading ----------------------------------------------------------------------------------------

    def get(self, upload_id: str) -> Upload:
        with self._translated():
            row = self.db.query_one("SELECT * FROM resumable_uploads WHERE upload_id = ?", (upload_id,))
        if row is None:
            raise UploadNotFound(upload_id)
        return _upload(row)

    def list(self, *, owner: str | None = None, states: Sequence[str] = (), limit: int = 50) -> list[Upload]:
        """Newest first; only `owner`'s when given, only in `states` when given."""
        clauses, parameters = [], []
        if owner is not None:
            clauses.append("owner = ?")
            parameters.append(owner)
        if states:
            clauses.append(f"state IN ({','.join('?' * len(states))})")
            parameters.extend(states)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._translated():
            rows = self.db.query(f"SELECT * FROM resumable_uploads{where} ORDER BY created_at DESC, upload_id"
                                 " LIMIT ?", (*parameters, limit))
        return [_upload(row) for row in rows]

    def with_states(self, states: Sequence[str], *, uncleared_only: bool = False) -> list[Upload]:
        """Every upload in `states` (for the sweep), oldest first."""
        cleared = " AND cleared_at IS NULL" if uncleared_only else ""
        with self._translated():
            rows = self.db.query(f"SELECT * FROM resumable_uploads WHERE state IN ({','.join('?' * len(states))})"
                                 f"{cleared} ORDER BY created_at", tuple(states))
        return [_upload(row) for row in rows]

    def known(self, upload_ids: Sequence[str]) -> dict[str, Upload]:
        found: dict[str, Upload] = {}
        for start in range(0, len(upload_ids), 500):
            batch = tuple(upload_ids[start:start + 500])
            with self._translated():
                rows = self.db.query(f"SELECT * FROM resumable_uploads WHERE upload_id IN"
                                     f" ({','.join('?' * len(batch))})", batch)
            found.update((row["upload_id"], _upload(row)) for row in rows)
        return found

    # -- holding an upload --------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def claim(self, upload_id: str, holder: str, lease_s: float, *, offset: int | None = None,
              states: Sequence[str] = (ACTIVE,), include_expired: bool = False) -> Upload:
        """Hold the upload for `holder` for `lease_s` seconds: at `offset` (a PATCH; None: wherever it stands)
        and in one of `states`; an active upload past its expiry only with `include_expired` (the sweep).
        Raises UploadNotFound, UploadGone (terminated or expired), UploadFinished (it has every byte, or
        ended otherwise), OffsetMismatch, UploadLocked (someone else holds it)."""
        now = self._clock()
        state_list = ",".join("?" * len(states))
        at_offset = " AND offset_bytes = ?" if offset is not None else ""
        unexpired = "" if include_expired else " AND NOT (state = ? AND expires_at <= ?)"
        with self._translated(), self.db.transaction() as tx:
            changed = tx.execute(
                f"UPDATE resumable_uploads SET holder = ?, held_until = ? WHERE upload_id = ? AND state IN ({state_list})"
                f"{unexpired} AND (holder IS NULL OR held_until <= ?){at_offset}",
                (holder, now + lease_s, upload_id, *states, *(() if include_expired else (ACTIVE, now)), now,
                 *((offset,) if offset is not None else ()))).rowcount
        upload = self.get(upload_id)
        if changed == 1:
            return upload
        if upload.state in (TERMINATED, EXPIRED) or (upload.is_expired(now) and not include_expired):
            raise UploadGone(upload_id, TERMINATED if upload.state == TERMINATED else EXPIRED)
        if upload.state not in states:
            raise UploadFinished(f"upload {upload_id} is {upload.state}"
                                 + (f" (job {upload.job_id})" if upload.job_id else "")
                                 + "; it takes no more bytes and cannot be terminated")
        if offset is not None and upload.offset_bytes != offset:
            raise OffsetMismatch(upload_id, offset, upload.offset_bytes)
        raise UploadLocked(f"another request is writing upload {upload_id} right now; ask with HEAD and resume "
                           "from the offset it gives once that request ends")

    def renew(self, upload_id: str, holder: str, lease_s: float) -> bool:
        """Extend `holder`'s lease; False when it no longer holds the upload."""
        with self._translated(), self.db.transaction() as tx:
            return tx.execute("UPDATE resumable_uploads SET held_until = ? WHERE upload_id = ? AND holder = ?",
                              (self._clock() + lease_s, upload_id, holder)).rowcount == 1

    def release(self, upload_id: str, holder: str) -> None:
        with self._translated(), self.db.transaction() as tx:
            tx.execute("UPDATE resumable_uploads SET holder = NULL, held_until = NULL WHERE upload_id = ? AND holder = ?",
                       (upload_id, holder))

    # -- fenced writes: each names the holder, and changes nothing once it lost the upload ------------------

    def set_multipart(self, upload_id: str, holder: str, multipart_id: str) -> bool:
        """Remember the S3 upload id as soon as it exists, so termination and expiry can abort it."""
        return self._write(upload_id, holder, "multipart_id = ?", (multipart_id,))

    def record(self, upload_id: str, holder: str, *, parts: Sequence[StoredPart], tail_key: str | None,
               tail_bytes: int, expiry_s: float, state: str = ACTIVE) -> bool:
        """The bytes kept so far: `parts` and the first `tail_bytes` of `tail_key` (the offset is their sum);
        the expiry moves on. `state` COMPLETING when they are every byte. False if `holder` lost the upload."""
        now = self._clock()
        offset = sum(part.size_bytes for part in parts) + tail_bytes
        return self._write(
            upload_id, holder,
            "parts = ?, tail_key = ?, tail_bytes = ?, offset_bytes = ?, state = ?, expires_at = ?, updated_at = ?",
            (_parts_json(parts), tail_key, tail_bytes, offset, state, now + expiry_s, now))

    def finish(self, upload_id: str, holder: str, job_id: str) -> bool:
        """Completing → completed: the object is joined and its job `job_id` queued. Lets go of the upload."""
        now = self._clock()
        return self._write(upload_id, holder, "state = ?, job_id = ?, ended_at = ?, updated_at = ?, holder = NULL,"
                           " held_until = NULL", (COMPLETED, job_id, now, now), states=(COMPLETING,))

    def end(self, upload_id: str, holder: str, state: str, *, error: dict | None = None) -> bool:
        """End the upload as `state` (terminated, expired, rejected) and let go of it; its objects go next."""
        if state not in (TERMINATED, EXPIRED, REJECTED):
            raise ValueError(f"end() takes terminated, expired or rejected, not {state!r}")
        now = self._clock()
        return self._write(upload_id, holder, "state = ?, error = ?, ended_at = ?, updated_at = ?, holder = NULL,"
                           " held_until = NULL", (state, json.dumps(error) if error else None, now, now),
                           states=(ACTIVE, COMPLETING))

    def mark_cleared(self, upload_id: str) -> None:
        """Its objects and multipart upload left the store."""
        with self._translated(), self.db.transaction() as tx:
            tx.execute("UPDATE resumable_uploads SET cleared_at = ?, multipart_id = NULL, tail_key = NULL"
                       " WHERE upload_id = ?", (self._clock(), upload_id))

    def purge(self, before: float) -> int:
        """Delete the rows of uploads that ended and were cleared before `before`; how many."""
        with self._translated(), self.db.transaction() as tx:
            return tx.execute("DELETE FROM resumable_uploads WHERE cleared_at IS NOT NULL AND ended_at < ?",
                              (before,)).rowcount

    def _write(self, upload_id: str, holder: str, assignments: str, parameters: tuple, *,
               states: Sequence[str] = OPEN_STATES) -> bool:
        with self._translated(), self.db.transaction() as tx:
            return tx.execute(
                f"UPDATE resumable_uploads SET {assignments} WHERE upload_id = ? AND holder = ?"
                f" AND state IN ({','.join('?' * len(states))})",
                (*parameters, upload_id, holder, *states)).rowcount == 1

    def _translated(self):
        return translated_errors("uploads")


def _parts_json(parts: Sequence[StoredPart]) -> str:
    return json.dumps([[part.number, part.etag, part.size_bytes] for part in parts], separators=(",", ":"))


def _upload(row: Row) -> Upload:
    values = dict(row)
    values["parts"] = tuple(StoredPart(number=number, etag=etag, size_bytes=size)
                            for number, etag, size in json.loads(values["parts"]))
    values["created_episode"] = bool(values["created_episode"])
    values["error"] = json.loads(values["error"]) if values["error"] else None
    return Upload(**values)

