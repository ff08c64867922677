"""The episode half of SqlCatalog (drm/catalog/catalog.py): episodes' places in their series, titles, status,
unpublishing and deletion, and the writes ingest makes as an episode's media is processed (its reads are in
episode_reads.py).

Every change of one series' episodes runs in a transaction holding the series row (SeriesRecords.
_lock_series), so the 80-episode limit and the order hold under any number of writers on either
engine. Positions are 1..n without gaps among the episodes not deleted; they are separate from ids.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from drm.access.entitlement_changes import record_episode_change
from drm.catalog.episode_reads import EpisodeReads
from drm.catalog.records import (
    ARCHIVED,
    MAX_EPISODES,
    QUEUED,
    STAGES,
    UPLOADING,
    Episode,
    check_description,
    check_duration,
    check_position,
    check_title,
)
from drm.errors import (
    EpisodeDeleted,
    EpisodeExists,
    EpisodeLimitReached,
    InvalidField,
    SeriesStateConflict,
    UnknownEpisode,
)
from drm.ids import check_id, field_id
from drm.storage.database import Database, Row, Transaction

log = logging.getLogger(__name__)


class EpisodeRecords(EpisodeReads):
    """Episode operations; mixed into SqlCatalog, which sets `_db`, `_clock`, `_episode_bounds_s` and
    provides `_lock_series` (SeriesRecords)."""

    _db: Database
    _clock: Callable[[], float]
    _episode_bounds_s: tuple[float, float]
    _lock_series: Callable[[Transaction, str], Row]
    _episode_listeners: tuple[Callable[[str, str], None], ...]

    # -- who must hear of a change ------------------------------------------------------------------

    def on_episode_change(self, listener: Callable[[str, str], None]) -> Callable[[], None]:
        """Call ``listener(series_id, episode_id)`` after each committed write through this catalog that
        changes what decides access to an episode (in the writer's thread); returns what removes it.
        Other processes' writes arrive through the change feed."""
        self._episode_listeners = (*self._episode_listeners, listener)

        def remove() -> None:
            self._episode_listeners = tuple(other for other in self._episode_listeners if other is not listener)
        return remove

    def _episode_changed(self, tx: Transaction, series_id: str, episode_id: str) -> None:
        """Inside the writer's transaction: the change feed learns that this episode's facts changed."""
        record_episode_change(tx, series_id, episode_id, self._clock())

    def _notify_episode(self, *episodes: tuple[str, str]) -> None:
        """After the commit: this process's caches forget these episodes' facts."""
        for series_id, episode_id in episodes:
            for listener in self._episode_listeners:
                listener(series_id, episode_id)

    # -- creating ---------------------------------------------------------------------------------

    def create_episode(self, series_id: str, episode_id: str, *, title: str | None = None,
                       description: str = "", position: int | None = None,
                       is_free_preview: bool = False) -> Episode:
        """An episode waiting for its upload (status uploading), at `position` (default: last).

        Raises UnknownSeries, EpisodeExists, EpisodeDeleted (its id awaits gc), EpisodeLimitReached,
        SeriesStateConflict (archived series), InvalidField.
        """
        field_id("episode_id", episode_id)
        shown = check_title(title if title is not None else f"Episode {episode_id}")
        text = check_description(description)
        if type(is_free_preview) is not bool:
            raise InvalidField("is_free_preview", f"expected true or false, got {is_free_preview!r}")
        with self._db.transaction() as tx:
            order = self._admit(tx, series_id, episode_id)
            if order is None:
                raise EpisodeExists(series_id, episode_id)
            if position is not None:
                check_position(position, len(order) + 1)
            self._insert(tx, series_id, episode_id, title=shown, description=text, stage=UPLOADING,
                         is_free_preview=is_free_preview)
            order.insert((position or len(order) + 1) - 1, episode_id)
            self._write_order(tx, series_id, order)
        self._notify_episode((series_id, episode_id))
        log.info("episode %s/%s created at %d", series_id, episode_id, position or len(order))
        return self.get_episode(series_id, episode_id)

    def register_upload_within(self, tx: Transaction, series_id: str, episode_id: str, job_id: str) -> bool:
        """Inside an ingest job's creation: the episode (made now, last in the order, if new) is
        processing that job from here on. True if the episode is new.

        Raises the limits create_episode() does, so a job is never queued for an episode the series
        cannot take; the job's row and the episode's are written in the caller's one transaction.
        """
        order = self._admit(tx, series_id, episode_id)
        is_new = order is not None
        if is_new:
            self._insert(tx, series_id, episode_id, title=f"Episode {episode_id}", description="", stage=QUEUED,
                         is_free_preview=False, job_id=job_id)
            self._write_order(tx, series_id, [*order, episode_id])
        else:
            tx.execute("UPDATE episodes SET job_id = ?, stage = ?, stage_percent = 0, error = NULL, updated_at = ?"
                       " WHERE series_id = ? AND episode_id = ?", (job_id, QUEUED, self._clock(), series_id, episode_id))
        return is_new

    def reserve_episode(
        self, series_id: str, episode_id: str, *, duration_s: float, is_free_preview: bool | None = None
    ) -> bool:
        """Hold a slot for an episode about to be ingested; True if the episode is new.

        Called before the transcode so that an unknown series (UnknownSeries), an 81st episode
        (EpisodeLimitReached) or a bad duration (InvalidField) publishes nothing. Re-ingesting an
        existing episode (or one created by the API or an ingest job) takes no new slot, and
        ``is_free_preview`` applies to a new episode only (mark_published sets it for a new version).
        """
        check_id("episode_id", episode_id)
        check_duration(duration_s, self._episode_bounds_s)
        with self._db.transaction() as tx:
            order = self._admit(tx, series_id, episode_id)
            if order is None:
                return False
            self._insert(tx, series_id, episode_id, title=f"Episode {episode_id}", description="",
                         stage="validating", is_free_preview=bool(is_free_preview), duration_s=float(duration_s))
            self._write_order(tx, series_id, [*order, episode_id])
        self._notify_episode((series_id, episode_id))
        return True

    def _admit(self, tx: Transaction, series_id: str, episode_id: str) -> list[str] | None:
        """Under the series lock: None if the episode exists (not deleted), else the current order, after
        checking that the series takes a new episode."""
        series = self._lock_series(tx, series_id)
        existing = tx.fetch_one("SELECT deleted_at FROM episodes WHERE series_id = ? AND episode_id = ?",
                                (series_id, episode_id))
        if existing is not None:
            if existing["deleted_at"] is not None:
                raise EpisodeDeleted(series_id, episode_id)
            return None
        if series["status"] == ARCHIVED:
            raise SeriesStateConflict("series_archived", f"series {series_id} is archived and takes no new "
                                      "episodes; its buyers keep the ones it has")
        order = self._order(tx, series_id)
        if len(order) >= MAX_EPISODES:
            raise EpisodeLimitReached(series_id, MAX_EPISODES)
        return order

    def _insert(self, tx: Transaction, series_id: str, episode_id: str, *, title: str, description: str,
                stage: str, is_free_preview: bool, job_id: str | None = None, duration_s: float = 0.0) -> None:
        now = self._clock()
        tx.execute(
            "INSERT INTO episodes (series_id, episode_id, duration_s, is_free_preview, published_version, created_at,"
            " updated_at, title, description, stage, job_id) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
            (series_id, episode_id, duration_s, int(is_free_preview), now, now, title, description, stage, job_id))
        self._episode_changed(tx, series_id, episode_id)

    # -- ingest's writes ----------------------------------------------------------------------------

    def mark_published(
        self, series_id: str, episode_id: str, *, version: int, duration_s: float,
        is_free_preview: bool | None = None, renditions: Sequence[str] = (),
    ) -> Episode:
        """Record that ``version`` of a reserved episode is live, with its decoded duration and renditions;
        the series' cover when it has none yet.

        ``is_free_preview`` (None keeps it) changes the flag only now, so a failed re-ingest changes nothing.
        Raises UnknownEpisode, EpisodeDeleted (deleted while it was processed: gc removes what was published).
        """
        check_duration(duration_s, self._episode_bounds_s)
        now = self._clock()
        with self._db.transaction() as tx:
            row = tx.fetch_one("SELECT deleted_at FROM episodes WHERE series_id = ? AND episode_id = ?",
                               (series_id, episode_id))
            if row is None:
                raise UnknownEpisode(series_id, episode_id)
            if row["deleted_at"] is not None:
                raise EpisodeDeleted(series_id, episode_id)
            tx.execute(
                "UPDATE episodes SET published_version = ?, duration_s = ?, updated_at = ?, ready_at = ?,"
                " renditions = ?, is_free_preview = COALESCE(?, is_free_preview),"
                " stage = CASE WHEN stage = ? THEN NULL ELSE stage END, error = NULL"
                " WHERE series_id = ? AND episode_id = ?",
                (version, float(duration_s), now, now, json.dumps(list(renditions)),
                 None if is_free_preview is None else int(is_free_preview), "validating", series_id, episode_id))
            # a series without a cover takes its first published episode's poster (the creator may pick another)
            tx.execute("UPDATE series SET cover_episode_id = ? WHERE series_id = ? AND cover_episode_id IS NULL",
                       (episode_id, series_id))
            if is_free_preview is not None:
                self._episode_changed(tx, series_id, episode_id)
        if is_free_preview is not None:
            self._notify_episode((series_id, episode_id))
        log.info("catalog: %s/%s is live as v%d", series_id, episode_id, version)
        return self.get_episode(series_id, episode_id)

    def release_episode(self, series_id: str, episode_id: str) -> None:
        """Give back the slot of a reservation whose first ingest failed; published episodes stay."""
        with self._db.transaction() as tx:
            self._lock_series(tx, series_id)
            gone = tx.execute("DELETE FROM episodes WHERE series_id = ? AND episode_id = ?"
                              " AND published_version IS NULL AND job_id IS NULL AND stage = ?",
                              (series_id, episode_id, "validating")).rowcount
            if gone:
                self._write_order(tx, series_id, self._order(tx, series_id))
                self._episode_changed(tx, series_id, episode_id)
        if gone:
            self._notify_episode((series_id, episode_id))

    def withdraw_episode(self, series_id: str, episode_id: str) -> bool:
        """Remove an episode that never received its media (status uploading: no job, never published),
        closing up the order and freeing its id at once, as if it had never been created; False (nothing
        changed) once it has moved on. For an upload that created the episode and was then abandoned."""
        with self._db.transaction() as tx:
            self._lock_series(tx, series_id)
            gone = tx.execute("DELETE FROM episodes WHERE series_id = ? AND episode_id = ? AND published_version IS NULL"
                              " AND job_id IS NULL AND stage = ? AND deleted_at IS NULL",
                              (series_id, episode_id, UPLOADING)).rowcount
            if gone:
                tx.execute("UPDATE series SET cover_episode_id = NULL WHERE series_id = ? AND cover_episode_id = ?",
                           (series_id, episode_id))
                self._write_order(tx, series_id, self._order(tx, series_id))
        if gone:
            log.info("episode %s/%s withdrawn: its upload was abandoned before any media arrived", series_id,
                     episode_id)
        return bool(gone)

    def record_stage_within(self, tx: Transaction, job_id: str, stage: str, percent: float = 0.0,
                            error: dict[str, Any] | None = None) -> None:
        """The episode processing `job_id` is at `stage` (a job state, or "failed" with `error`: code,
        message, reasons). One UPDATE by job id; an episode a later job took over, or a deleted one, is
        left as it is. Written with the job's own state, in the job store's transaction."""
        if stage not in STAGES and stage != "published":
            raise ValueError(f"unknown stage {stage!r}")
        if stage == "published":
            tx.execute("UPDATE episodes SET stage = NULL, stage_percent = 0, error = NULL"
                       " WHERE job_id = ? AND deleted_at IS NULL", (job_id,))
            return
        tx.execute("UPDATE episodes SET stage = ?, stage_percent = ?, error = ? WHERE job_id = ? AND deleted_at IS NULL",
                   (stage, round(max(0.0, min(100.0, percent)), 1), json.dumps(error) if error else None, job_id))

    # -- the creator's changes ----------------------------------------------------------------------

    def update_episode(self, series_id: str, episode_id: str, *, title: str | None = None,
                       description: str | None = None, is_free_preview: bool | None = None,
                       position: int | None = None) -> Episode:
        """Change the given fields (None keeps one), moving the episode when `position` is given; all
        are checked before anything is written. Raises UnknownEpisode, InvalidField."""
        changes: dict[str, object] = {}
        if title is not None:
            changes["title"] = check_title(title)
        if description is not None:
            changes["description"] = check_description(description)
        if is_free_preview is not None:
            if type(is_free_preview) is not bool:
                raise InvalidField("is_free_preview", f"expected true or false, got {is_free_preview!r}")
            changes["is_free_preview"] = int(is_free_preview)
        with self._db.transaction() as tx:
            self._lock_series(tx, series_id)
            self._require_episode(tx, series_id, episode_id)
            if position is not None:
                order = self._order(tx, series_id)
                check_position(position, len(order))
                order.remove(episode_id)
                order.insert(position - 1, episode_id)
                self._write_order(tx, series_id, order)
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)
                tx.execute(f"UPDATE episodes SET {assignments}, updated_at = ? WHERE series_id = ? AND episode_id = ?",
                           (*changes.values(), self._clock(), series_id, episode_id))
            if "is_free_preview" in changes:
                self._episode_changed(tx, series_id, episode_id)
        if "is_free_preview" in changes:
            self._notify_episode((series_id, episode_id))
        return self.get_episode(series_id, episode_id)

    def set_free_preview(self, series_id: str, episode_id: str, is_free_preview: bool) -> Episode:
        """Mark or unmark an episode as a free preview; raises UnknownEpisode, InvalidField."""
        if type(is_free_preview) is not bool:
            raise InvalidField("is_free_preview", f"expected true or false, got {is_free_preview!r}")
        return self.update_episode(series_id, episode_id, is_free_preview=is_free_preview)

    def move_episode(self, series_id: str, episode_id: str, position: int) -> list[Episode]:
        """Move one episode to `position` (1..n), the others closing up around it; the new order."""
        self.update_episode(series_id, episode_id, position=position)
        return self.list_episodes(series_id, published_only=False)

    def set_order(self, series_id: str, episode_ids: Sequence[str]) -> list[Episode]:
        """Put the series' episodes in this order, all at once. `episode_ids` must name every episode of
        the series exactly once (an episode added meanwhile makes it fail rather than land anywhere).
        Raises UnknownSeries, InvalidField naming what is missing, unknown or repeated."""
        if not isinstance(episode_ids, (list, tuple)) or not all(isinstance(e, str) for e in episode_ids):
            raise InvalidField("episode_ids", "expected a list of episode ids")
        with self._db.transaction() as tx:
            self._lock_series(tx, series_id)
            order = self._order(tx, series_id)
            repeated = sorted({e for e in episode_ids if list(episode_ids).count(e) > 1})
            missing, unknown = sorted(set(order) - set(episode_ids)), sorted(set(episode_ids) - set(order))
            if repeated or missing or unknown:
                problems = [f"{what} {', '.join(ids[:10])}" for what, ids in
                            (("missing", missing), ("unknown", unknown), ("repeated", repeated)) if ids]
                raise InvalidField("episode_ids", "must name every episode of the series exactly once: "
                                   + "; ".join(problems))
            self._write_order(tx, series_id, list(episode_ids))
        return self.list_episodes(series_id, published_only=False)

    def set_episode_published(self, series_id: str, episode_id: str, is_published: bool) -> Episode:
        """Unpublish an episode (hidden from viewers; its keys refused to all but the operator's test
        viewers, buyers included) or publish it again. It keeps its place. Raises UnknownEpisode."""
        if type(is_published) is not bool:
            raise InvalidField("published", f"expected true or false, got {is_published!r}")
        now = self._clock()
        with self._db.transaction() as tx:
            self._lock_series(tx, series_id)
            self._require_episode(tx, series_id, episode_id)
            condition = "IS NOT NULL" if is_published else "IS NULL"     # a repeat keeps the first time
            changed = tx.execute(
                f"UPDATE episodes SET unpublished_at = ?, updated_at = ? WHERE series_id = ? AND episode_id = ?"
                f" AND unpublished_at {condition}", (None if is_published else now, now, series_id, episode_id)).rowcount
            if changed:
                self._episode_changed(tx, series_id, episode_id)
        if changed:
            self._notify_episode((series_id, episode_id))
        log.info("episode %s/%s %s", series_id, episode_id, "published" if is_published else "unpublished")
        return self.get_episode(series_id, episode_id)

    def delete_episode(self, series_id: str, episode_id: str) -> Episode:
        """Delete an episode: gone from every listing, its keys refused to everyone, its place and slot
        free at once; `series gc` removes its playlists, segments and keys after the grace period.
        Buyers of the series keep the rest of it. Raises UnknownEpisode."""
        now = self._clock()
        with self._db.transaction() as tx:
            self._lock_series(tx, series_id)
            self._require_episode(tx, series_id, episode_id)
            order = self._order(tx, series_id)
            tx.execute("UPDATE episodes SET deleted_at = ?, position = NULL, updated_at = ?"
                       " WHERE series_id = ? AND episode_id = ?", (now, now, series_id, episode_id))
            tx.execute("UPDATE series SET cover_episode_id = NULL WHERE series_id = ? AND cover_episode_id = ?",
                       (series_id, episode_id))
            order.remove(episode_id)
            self._write_order(tx, series_id, order)
            self._episode_changed(tx, series_id, episode_id)
        self._notify_episode((series_id, episode_id))
        log.info("episode %s/%s deleted", series_id, episode_id)
        return self.get_episode(series_id, episode_id, include_deleted=True)

    def purge_episode(self, series_id: str, episode_id: str) -> bool:
        """Forget a deleted episode whose files and keys are gone (its id is free again); False if it is
        not deleted."""
        with self._db.transaction() as tx:
            purged = tx.execute("DELETE FROM episodes WHERE series_id = ? AND episode_id = ? AND deleted_at IS NOT NULL",
                                (series_id, episode_id)).rowcount == 1
            if purged:
                self._episode_changed(tx, series_id, episode_id)
        if purged:
            self._notify_episode((series_id, episode_id))
        return purged

    # -- the order ----------------------------------------------------------------------------------

    @staticmethod
    def _order(tx: Transaction, series_id: str) -> list[str]:
        rows = tx.fetch_all("SELECT episode_id FROM episodes WHERE series_id = ? AND deleted_at IS NULL"
                            " AND position IS NOT NULL ORDER BY position", (series_id,))
        return [row["episode_id"] for row in rows]

    def _write_order(self, tx: Transaction, series_id: str, order: list[str]) -> None:
        """Give the episodes of `order` the positions 1..n, writing only those that change. Changed rows
        pass through negative positions first: SQLite checks the unique (series_id, position) index row
        by row, so a direct shift would collide midway. The series' order_version moves when an
        episode that had a place changes it (page cursors made before are then refused)."""
        current = {row["episode_id"]: row["position"] for row in tx.fetch_all(
            "SELECT episode_id, position FROM episodes WHERE series_id = ? AND deleted_at IS NULL", (series_id,))}
        changed = [(-(index + 1), series_id, episode_id) for index, episode_id in enumerate(order)
                   if current.get(episode_id) != index + 1]
        if not changed:
            return
        tx.executemany("UPDATE episodes SET position = ? WHERE series_id = ? AND episode_id = ?", changed)
        tx.execute("UPDATE episodes SET position = -position WHERE series_id = ? AND position < 0", (series_id,))
        if any(current.get(episode_id) is not None for _, _, episode_id in changed):
            tx.execute("UPDATE series SET order_version = order_version + 1 WHERE series_id = ?", (series_id,))

    @staticmethod
    def _require_episode(tx: Transaction, series_id: str, episode_id: str) -> None:
        if tx.fetch_one("SELECT 1 FROM episodes WHERE series_id = ? AND episode_id = ? AND deleted_at IS NULL",
                        (series_id, episode_id)) is None:
            raise UnknownEpisode(series_id, episode_id)
