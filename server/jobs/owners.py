"""Who runs a job: runner identities in the jobs table, and whether a runner on this host is dead.

Several service instances may share one jobs database; each claims jobs under its owner id with a
lease (server/jobs/job_store.py). An owner id names its host, PID and process start time, so a restarted
instance can tell its predecessor is gone (the PID is free or reused) without waiting for the lease.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path


def new_owner_id() -> str:
    """A runner's identity in the jobs table: host, PID and the process's start time, plus a random part."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start_ticks(pid)}:{secrets.token_hex(4)}"


def local_host() -> str:
    """This host's name, as jobs record where a streamed upload was spooled."""
    return socket.gethostname()


def local_owner_prefix() -> str:
    """What every owner id of this host starts with (for a LIKE over the jobs table)."""
    return f"{socket.gethostname()}:"


def owner_is_gone(owner_id: str) -> bool:
    """Whether `owner_id`'s process is provably dead: on this host, and its PID is gone or reused.

    Lets a restarted instance take its own interrupted jobs back at once instead of waiting for their
    lease to run out; an owner on another host is judged by its lease alone.
    """
    host, _, rest = owner_id.partition(":")
    pid, _, rest = rest.partition(":")
    started, _, _ = rest.partition(":")
    if host != socket.gethostname() or not (pid.isascii() and pid.isdigit()):
        return False
    return str(_process_start_ticks(int(pid))) != started


def _process_start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])    # field 22, starttime, counted after "(comm)"
