"""How the jobs tables meet Python: rows to Job values, the engines' errors translated once, and the notes
a job's attempts leave (server/jobs/job_store.py writes them; others share the translation)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from drm.errors import DatabaseUnavailable
from drm.storage.database import Row, Transaction
from server.jobs.jobs import Job, JobStoreUnavailable


@contextmanager
def translated_errors(table: str) -> Iterator[None]:
    """The engines' errors enter here and leave as ours: a locked, full or unreachable database is
    JobStoreUnavailable (a 503 with Retry-After), not a 500. `table` names what could not be written."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if "locked" in text or "busy" in text or "full" in text or "disk" in text:
            raise JobStoreUnavailable(f"the {table} database cannot be written right now ({exc}); "
                                      "retry in a few seconds") from exc
        raise
    except DatabaseUnavailable as exc:
        raise JobStoreUnavailable(f"the {table} database cannot be reached right now ({exc}); "
                                  "retry in a few seconds") from exc


def attempt_ended(tx: Transaction, job_id: str, attempt: int, code: str, message: str) -> None:
    """Keep why `attempt` of `job_id` ended without publishing (its first reason, if told twice)."""
    tx.execute("INSERT INTO ingest_job_attempts (job_id, attempt, ended_at, error_code, error_message)"
               " VALUES (?, ?, ?, ?, ?) ON CONFLICT (job_id, attempt) DO NOTHING",
               (job_id, attempt, time.time(), code, message))


def episode_error(code: str, message: str, report: dict | None) -> dict:
    """What an episode shows of its failed ingest: the job's error and each rejection reason."""
    return {"code": code, "message": message, "reasons": list((report or {}).get("reasons", []))}


def job_of(row: Row) -> Job:
    values = dict(row)
    values["report"] = json.loads(values["report"]) if values["report"] else None
    return Job(**values)
