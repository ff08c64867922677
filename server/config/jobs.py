"""Settings of the ingest hand-off API and its jobs (SERIES_INGEST_*, SERIES_JOB_*, SERIES_UPLOADS_BUCKET, ...)."""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from server.config.credentials import check_bearer_secret, check_webhook_secret
from server.config.environment import PREFIX, Environment, SettingsError
from server.config.http import read_networks

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IN_PROCESS, PROCRASTINATE = "in-process", "procrastinate"      # SERIES_JOB_ENGINE
JOB_ENGINES = (IN_PROCESS, PROCRASTINATE)
# Standard Webhooks' retry schedule: the first attempt at once, then after each of these (about 28 hours)
WEBHOOK_RETRY_DELAYS_S: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
# a spool file no job names yet may be an upload between its write and its row: give it at least an hour
MIN_FAILED_UPLOAD_RETENTION_S = 3600.0
MIN_JOB_S = 1.0                  # SERIES_JOB_MAX_S may be set very low (tests do); the default is hours


@dataclass(frozen=True, kw_only=True)
class JobSettings:
    """The ingest hand-off API and its worker pool (SERIES_INGEST_*, SERIES_UPLOADS_BUCKET, ...)."""

    ingest_token: str | None = field(default=None, repr=False)  # None: the hand-off API refuses everyone
    # completion webhooks we send: Standard Webhooks secret (whsec_ + base64 key), and the older
    # Series-Signature secret still sent during receivers' transition (None: not sent)
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_legacy_secret: str | None = field(default=None, repr=False)
    uploads_bucket: str = "uploads"
    spool_dir: Path = Path("var/uploads")
    max_upload_bytes: int = 8 * 1024**3
    workers: int = 1                # transcodes already use a thread per rendition; 2 cores here
    max_attempts: int = 3           # runs of one job (cut short by restarts or store outages) before it fails
    retry_delay_s: float = 30.0     # wait before re-running a job the object store failed; doubles each time
    db_busy_timeout_ms: int = 2000  # how long an API request waits for a locked database before 503
    # SSRF guard: the only hosts ("host" or "host:port", lower case) a job's webhook_url may name;
    # empty refuses every webhook_url (SERIES_JOB_WEBHOOK_HOSTS)
    webhook_hosts: tuple[str, ...] = ()
    # non-public networks a listed host name may resolve to (SERIES_JOB_WEBHOOK_NETWORKS); see
    # server/jobs/webhooks/addresses.py: loopback, private and metadata addresses are refused otherwise
    webhook_networks: tuple[IpNetwork, ...] = ()
    lease_s: float = 60.0           # a claimed job whose owner stops renewing for this long is re-queued
    failed_upload_retention_s: float = 7 * 24 * 3600.0  # a failed job's spooled upload is kept this long
    # one run of a job may take this long before its worker is killed and the job failed (SERIES_JOB_MAX_S):
    # a 20-minute 4K upload transcodes in well under 2 hours on 2 cores at veryfast
    max_job_s: float = 4 * 3600.0
    # who runs jobs (SERIES_JOB_ENGINE): the in-process runner (the default on SQLite), or Procrastinate on the
    # shared PostgreSQL (the default there), whose `series worker` processes run them on any host
    engine: str = IN_PROCESS
    # a distributed worker silent for this long is taken for dead and its job run again elsewhere
    # (SERIES_JOB_STALLED_S); workers beat every third of it
    stalled_after_s: float = 30.0
    # delays between completion-webhook attempts (SERIES_JOB_WEBHOOK_RETRY_DELAYS_S, seconds, comma-separated)
    webhook_retry_delays_s: tuple[float, ...] = WEBHOOK_RETRY_DELAYS_S


def webhook_signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 bytes after 'whsec_' (checked at start-up)."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def read_job_settings(env: Environment, data_dir: Path, generated: dict, max_upload_bytes: int, *,
                  is_postgresql: bool) -> JobSettings:
    # Without SERIES_INGEST_TOKEN (and off the local setup) the hand-off API stays closed, not open.
    token = env.str("INGEST_TOKEN", "") or generated.get("ingest_token")
    if token is not None:
        check_bearer_secret("INGEST_TOKEN", token)
    hosts = _webhook_hosts(env)
    # completion webhooks we send; SERIES_WEBHOOK_SECRET is the payment system's, which we receive
    webhook_secret = env.str("JOB_WEBHOOK_SECRET", "") or generated.get("job_webhook_secret")
    if webhook_secret:
        check_webhook_secret("JOB_WEBHOOK_SECRET", webhook_secret)
    elif hosts:
        raise SettingsError(f"{PREFIX}JOB_WEBHOOK_SECRET is not set, but {PREFIX}JOB_WEBHOOK_HOSTS allows webhooks; "
                            "set it (whsec_ + base64 of 32 random bytes) so that receivers can verify them")
    legacy_secret = env.str("JOB_WEBHOOK_LEGACY_SECRET", "") or None
    engine = env.str("JOB_ENGINE", PROCRASTINATE if is_postgresql else IN_PROCESS)
    if engine not in JOB_ENGINES:
        raise SettingsError(f"{PREFIX}JOB_ENGINE has value {engine!r}; expected one of {', '.join(JOB_ENGINES)}")
    if engine == PROCRASTINATE and not is_postgresql:
        raise SettingsError(f"{PREFIX}JOB_ENGINE=procrastinate needs PostgreSQL: set {PREFIX}DATABASE_URL, or use "
                            f"{IN_PROCESS} with the embedded SQLite file")
    return JobSettings(
        engine=engine,
        stalled_after_s=env.float("JOB_STALLED_S", 30.0, minimum=MIN_STALLED_S),
        webhook_retry_delays_s=_retry_delays(env, "JOB_WEBHOOK_RETRY_DELAYS_S", WEBHOOK_RETRY_DELAYS_S),
        ingest_token=token,
        webhook_secret=webhook_secret,
        webhook_legacy_secret=legacy_secret,
        uploads_bucket=env.str("UPLOADS_BUCKET", "uploads"),
        spool_dir=Path(env.str("UPLOAD_SPOOL_DIR", str(data_dir / "uploads"))).absolute(),
        max_upload_bytes=max_upload_bytes,      # SERIES_MAX_UPLOAD_BYTES, the validator's limit too
        workers=env.positive_int("INGEST_WORKERS", 1),
        max_attempts=env.positive_int("JOB_MAX_ATTEMPTS", 3),
        retry_delay_s=env.float("JOB_RETRY_DELAY_S", 30.0, minimum=0.0),
        db_busy_timeout_ms=env.positive_int("DB_BUSY_TIMEOUT_MS", 2000),
        webhook_hosts=hosts,
        webhook_networks=read_networks(env, "JOB_WEBHOOK_NETWORKS"),
        lease_s=_job_lease_s(env),
        max_job_s=env.float("JOB_MAX_S", JobSettings().max_job_s, minimum=MIN_JOB_S),   # wall time of one run
        failed_upload_retention_s=env.float("FAILED_UPLOAD_RETENTION_S", 7 * 24 * 3600.0,
                                            minimum=MIN_FAILED_UPLOAD_RETENTION_S),
    )


MIN_STALLED_S = 3.0      # a worker beats every third of it: a lower bound keeps beats off the hot path


def _retry_delays(env: Environment, name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    """A comma-separated list of non-negative seconds, e.g. '5, 300, 1800'."""
    raw = env.str(name, "")
    if not raw.strip():
        return default
    try:
        delays = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise SettingsError(f"{PREFIX}{name} has value {raw!r}; expected seconds separated by commas, "
                            "e.g. '5, 300, 1800'") from None
    if any(not delay >= 0 for delay in delays):
        raise SettingsError(f"{PREFIX}{name} has value {raw!r}; every delay must be 0 or more seconds")
    return delays


def _job_lease_s(env: Environment) -> float:
    lease_s = env.float("JOB_LEASE_S", 60.0)
    if not 1 <= lease_s <= 3600:
        raise SettingsError(f"{PREFIX}JOB_LEASE_S has value {lease_s!r}; expected 1 to 3600 seconds")
    return lease_s


def _webhook_hosts(env: Environment) -> tuple[str, ...]:
    """SERIES_JOB_WEBHOOK_HOSTS: 'hooks.example.com, 10.0.0.7:8443' (host or host:port, any case)."""
    hosts = []
    for item in (part.strip().lower() for part in env.str("JOB_WEBHOOK_HOSTS", "").split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
        if "/" in item or "@" in item or (port and not (port.isascii() and port.isdigit())) or not host:
            raise SettingsError(f"{PREFIX}JOB_WEBHOOK_HOSTS has entry {item!r}; expected host or host:port")
        hosts.append(item)
    return tuple(hosts)
