"""Durable completion webhooks: every delivery recorded in the database, retried for hours, redeliverable.

A finished job with a webhook_url gets one delivery (record()): its event, signed afresh on each attempt by
completion.deliver_once(), under the same `webhook-id` every time (receivers de-duplicate on it). Attempts
follow Standard Webhooks' schedule (SERIES_JOB_WEBHOOK_RETRY_DELAYS_S: at once, 5 s, 5 min, 30 min, 2 h, 5 h,
10 h, 10 h); an answer no retry will change (a 4xx, a redirect, an address we may not reach) fails the
delivery at once. Every attempt is kept with its outcome (attempts()). An operator redelivers a delivery,
whatever its state (redeliver(): `series webhooks redeliver`, POST /v1/operator/webhook-deliveries/{id}/
redeliver): its schedule starts again.

Who makes the attempts: the in-process runner's own loop (deliver_due(), on SQLite), or Procrastinate's
`series.deliver_webhook` task on PostgreSQL. Either takes a delivery under a short hold first, so two
processes never POST the same attempt at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field

import aiohttp

from drm.storage.database import Database, Row
from server.config.jobs import JobSettings
from server.jobs.job_rows import translated_errors
from server.jobs.jobs import Job, JobError
from server.jobs.webhooks.completion import (
    DeliveryOutcome,
    WebhookMessage,
    deliver_once,
    message_for,
    open_webhook_session,
)

log = logging.getLogger(__name__)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_STATES = (PENDING, DELIVERED, FAILED)
HOLD_S = 60.0           # an attempt takes at most WEBHOOK_TIMEOUT_S; a holder gone this long has died


class DeliveryNotFound(JobError):
    code = "delivery_not_found"
    http_status = 404

    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"no webhook delivery {delivery_id!r}; `series webhooks deliveries` lists them")
        self.delivery_id = delivery_id

    def __reduce__(self):
        return type(self), (self.delivery_id,)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryAttempt:
    attempt: int                 # counted over the delivery's whole life, redeliveries included
    attempted_at: float
    status: str                  # "delivered (HTTP 204)", "failed (HTTP 503)", "refused (...)"
    http_status: int | None

    def as_dict(self) -> dict:
        return {"attempt": self.attempt, "attempted_at": self.attempted_at, "status": self.status,
                "http_status": self.http_status}


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    delivery_id: str
    job_id: str
    message_id: str
    url: str
    state: str
    attempts: int                # in the current round (since it was recorded or last redelivered)
    next_attempt_at: float | None
    last_status: str | None
    created_at: float
    updated_at: float
    delivered_at: float | None
    body: str = field(repr=False)
    holder: str | None = field(default=None, repr=False)
    held_until: float | None = field(default=None, repr=False)

    def as_dict(self, attempts: list[DeliveryAttempt] | None = None) -> dict:
        shown = {"delivery_id": self.delivery_id, "job_id": self.job_id, "webhook_id": self.message_id,
                 "url": self.url, "state": self.state, "attempts": self.attempts,
                 "next_attempt_at": self.next_attempt_at, "last_status": self.last_status,
                 "created_at": self.created_at, "updated_at": self.updated_at, "delivered_at": self.delivered_at}
        if attempts is not None:
            shown["attempt_log"] = [attempt.as_dict() for attempt in attempts]
        return shown

    @property
    def message(self) -> WebhookMessage:
        return WebhookMessage(message_id=self.message_id, url=self.url, body=self.body.encode())


class DeliveryStore:
    """The webhook_deliveries and webhook_attempts tables (schema: drm/storage/migrations.py, step 8)."""

    def __init__(self, db: Database, settings: JobSettings) -> None:
        self.db = db
        self.delays_s = settings.webhook_retry_delays_s

    def record(self, job: Job) -> Delivery | None:
        """The delivery of finished `job`'s event, recorded once (a second call returns the first); None
        when the job has no webhook_url. Due at once."""
        if not job.webhook_url:
            return None
        message = message_for(job)
        now = time.time()
        with translated_errors("webhook deliveries"), self.db.transaction() as conn:
            conn.execute("INSERT INTO webhook_deliveries (delivery_id, job_id, message_id, url, body, state,"
                         " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                         " ON CONFLICT (message_id) DO NOTHING",
                         ("dlv_" + secrets.token_hex(12), job.job_id, message.message_id, message.url,
                          message.body.decode(), PENDING, now, now, now))
            return _delivery(conn.fetch_one("SELECT * FROM webhook_deliveries WHERE message_id = ?",
                                            (message.message_id,)))

    def get(self, delivery_id: str) -> Delivery:
        with translated_errors("webhook deliveries"):
            row = self.db.query_one("SELECT * FROM webhook_deliveries WHERE delivery_id = ?", (delivery_id,))
        if row is None:
            raise DeliveryNotFound(delivery_id)
        return _delivery(row)

    def list(self, *, job_id: str | None = None, state: str | None = None, limit: int = 50) -> list[Delivery]:
        """Newest first."""
        where, parameters = [], []
        for column, value in (("job_id", job_id), ("state", state)):
            if value is not None:
                where.append(f"{column} = ?")
                parameters.append(value)
        sql = "SELECT * FROM webhook_deliveries" + (f" WHERE {' AND '.join(where)}" if where else "")
        with translated_errors("webhook deliveries"):
            rows = self.db.query(sql + " ORDER BY created_at DESC, delivery_id LIMIT ?", (*parameters, limit))
        return [_delivery(row) for row in rows]

    def attempts(self, delivery_id: str) -> list[DeliveryAttempt]:
        with translated_errors("webhook deliveries"):
            rows = self.db.query("SELECT attempt, attempted_at, status, http_status FROM webhook_attempts"
                                 " WHERE delivery_id = ? ORDER BY attempt", (delivery_id,))
        return [DeliveryAttempt(**dict(row)) for row in rows]

    def due(self, *, limit: int = 20, now: float | None = None) -> list[Delivery]:
        """Pending deliveries whose next attempt is due and that nobody holds, oldest due first."""
        now = time.time() if now is None else now
        with translated_errors("webhook deliveries"):
            rows = self.db.query("SELECT * FROM webhook_deliveries WHERE state = ? AND next_attempt_at <= ?"
                                 " AND (holder IS NULL OR held_until < ?) ORDER BY next_attempt_at LIMIT ?",
                                 (PENDING, now, now, limit))
        return [_delivery(row) for row in rows]

    def take(self, delivery_id: str, holder: str) -> Delivery | None:
        """Hold a due, pending delivery for one attempt; None if it is not due, not pending, or held."""
        now = time.time()
        with translated_errors("webhook deliveries"), self.db.transaction() as conn:
            taken = conn.execute("UPDATE webhook_deliveries SET holder = ?, held_until = ? WHERE delivery_id = ?"
                                 " AND state = ? AND next_attempt_at <= ? AND (holder IS NULL OR held_until < ?)",
                                 (holder, now + HOLD_S, delivery_id, PENDING, now, now)).rowcount
            row = conn.fetch_one("SELECT * FROM webhook_deliveries WHERE delivery_id = ?", (delivery_id,))
        return _delivery(row) if taken else None

    def record_attempt(self, delivery_id: str, holder: str, outcome: DeliveryOutcome) -> Delivery:
        """Keep one attempt's outcome and decide what comes next: delivered, failed for good (an answer no
        retry changes, or the schedule is spent), or pending until the next delay of the schedule. The job's
        webhook.status says the same, in the same transaction."""
        now = time.time()
        with translated_errors("webhook deliveries"), self.db.transaction() as conn:
            row = conn.fetch_one(f"SELECT * FROM webhook_deliveries WHERE delivery_id = ?{conn.dialect.for_update}",
                                 (delivery_id,))
            if row is None:
                raise DeliveryNotFound(delivery_id)
            delivery = _delivery(row)
            (last,) = conn.fetch_one("SELECT COALESCE(MAX(attempt), 0) FROM webhook_attempts WHERE delivery_id = ?",
                                     (delivery_id,))
            conn.execute("INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status, http_status)"
                         " VALUES (?, ?, ?, ?, ?)", (delivery_id, int(last) + 1, now, outcome.status,
                                                     outcome.http_status))
            round_attempts = delivery.attempts + 1
            if outcome.delivered:
                state, next_at, shown = DELIVERED, None, outcome.status
            elif outcome.retryable and round_attempts <= len(self.delays_s):
                state, next_at = PENDING, now + self.delays_s[round_attempts - 1]
                shown = f"{outcome.status}; attempt {round_attempts + 1} in {self.delays_s[round_attempts - 1]:g} s"
            else:
                state, next_at = FAILED, None
                shown = f"{outcome.status}; not retried" + (
                    f" (after {round_attempts} attempts)" if outcome.retryable else "")
            conn.execute("UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_status = ?,"
                         " updated_at = ?, delivered_at = ?, holder = NULL, held_until = NULL"
                         " WHERE delivery_id = ? AND (holder IS NULL OR holder = ?)",
                         (state, round_attempts, next_at, outcome.status, now, now if outcome.delivered else None,
                          delivery_id, holder))
            conn.execute("UPDATE ingest_jobs SET webhook_status = ? WHERE job_id = ?", (shown, delivery.job_id))
            return _delivery(conn.fetch_one("SELECT * FROM webhook_deliveries WHERE delivery_id = ?", (delivery_id,)))

    def redeliver(self, delivery_id: str) -> Delivery:
        """Deliver again from the start of the schedule, due at once, whatever its state (the attempt log
        keeps counting). Raises DeliveryNotFound."""
        now = time.time()
        with translated_errors("webhook deliveries"), self.db.transaction() as conn:
            changed = conn.execute("UPDATE webhook_deliveries SET state = ?, attempts = 0, next_attempt_at = ?,"
                                   " delivered_at = NULL, updated_at = ?, holder = NULL, held_until = NULL"
                                   " WHERE delivery_id = ?", (PENDING, now, now, delivery_id)).rowcount
            if not changed:
                raise DeliveryNotFound(delivery_id)
            row = conn.fetch_one("SELECT * FROM webhook_deliveries WHERE delivery_id = ?", (delivery_id,))
            conn.execute("UPDATE ingest_jobs SET webhook_status = ? WHERE job_id = ?",
                         ("pending (redelivery requested)", row["job_id"]))
        return _delivery(row)


async def attempt_delivery(store: DeliveryStore, http: aiohttp.ClientSession, settings: JobSettings,
                           delivery_id: str, holder: str) -> Delivery | None:
    """Make the next attempt of `delivery_id` if it is due and free; the delivery after it, or None when
    there was nothing to attempt. Database calls run off the loop."""
    delivery = await asyncio.to_thread(store.take, delivery_id, holder)
    if delivery is None:
        return None
    outcome = await deliver_once(http, delivery.message, settings)
    return await asyncio.to_thread(store.record_attempt, delivery_id, holder, outcome)


def _delivery(row: Row) -> Delivery:
    return Delivery(**dict(row))


DELIVERY_POLL_S = 1.0     # the loop also wakes at once when a job finishes here


class DeliveryLoop:
    """The in-process runner's deliverer: records a finished job's delivery and makes every due attempt,
    from this process, until closed. Deliveries are in the database, so a restart resumes them."""

    def __init__(self, settings: JobSettings, db: Database, holder: str) -> None:
        self._settings = settings
        self._store = DeliveryStore(db, settings)
        self._holder = holder
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._http: aiohttp.ClientSession | None = None

    def start(self) -> None:
        """Open the HTTP client and start the loop (on the event loop that will deliver)."""
        self._http = open_webhook_session(self._settings)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def notify(self, job: Job) -> None:
        """Record finished `job`'s delivery (if it has a webhook_url) and wake the loop."""
        if job.webhook_url:
            await asyncio.to_thread(self._store.record, job)
            self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                for delivery in await asyncio.to_thread(self._store.due):
                    done = await attempt_delivery(self._store, self._http, self._settings, delivery.delivery_id,
                                                  self._holder)
                    if done is not None:
                        (log.info if done.state == DELIVERED else log.warning)(
                            "job %s: webhook %s: %s", done.job_id, done.delivery_id, done.last_status)
            except JobError as exc:
                log.warning("webhook deliveries: %s", exc)      # the next round catches up
            except Exception:  # noqa: BLE001 - the loop must outlive one bad round
                log.exception("webhook delivery round failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), DELIVERY_POLL_S)
            self._wake.clear()
