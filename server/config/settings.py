"""Settings: the one reader of the environment. Everything else receives a Settings object.

With nothing configured, the project runs on the embedded local object store (SeaweedFS `weed mini`)
and generates its secrets once into the data directory. Pointing SERIES_S3_ENDPOINT at a MinIO
cluster switches to that store; then every secret must come from the environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from drm.keystore import DrmSettings
from packager.store import StoreSettings
from pipeline.fmp4 import SegmentFormat
from pipeline.ladder import LadderSettings
from pipeline.validate import ValidationRules
from server.config.environment import PREFIX, Environment, Secret, SettingsError
from server.config.http import HttpSettings, RateLimitSettings, parse_networks, parse_origins
from server.config.jobs import JobSettings
from server.local.object_store import LocalStoreSettings
from server.local.secrets import local_secrets

log = logging.getLogger(__name__)

MIN_GC_GRACE_S = 600.0       # a version written in the last 10 min may be a publish still uploading
# a spool file no job names yet may be an upload between its write and its row: give it at least an hour
MIN_FAILED_UPLOAD_RETENTION_S = 3600.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path
    db_path: Path
    store: StoreSettings
    local_store: LocalStoreSettings | None      # set when the embedded store is the store
    drm: DrmSettings
    ladder: LadderSettings
    rules: ValidationRules
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    segments_per_key: int = 10                  # key rotation period: 10 x 6 s = about 60 s
    # catalog, purchases and the operator API (issue 6); None disables the endpoints needing them
    operator_token: Secret | None = None        # Bearer secret of the operator API
    webhook_secret: Secret | None = None        # HMAC secret shared with the payment system
    webhook_tolerance_s: int = 300              # replay window for signed webhooks
    entitlement_cache_ttl_s: float = 2.0        # how stale a key-path entitlement answer may be (<= 5 s)
    hls_session_key: bool = False               # EXT-X-SESSION-KEY in masters: key prefetch; some old players choke
    hls_segment_format: SegmentFormat = SegmentFormat.TS   # ts: widest support; fmp4: EXT-X-MAP + .m4s segments
    gc_grace_s: float = 6 * 3600                # superseded versions outlive a playback token (default TTL 6 h)
    jobs: JobSettings = field(default_factory=JobSettings)   # ingest hand-off API and its workers
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    metrics_token: Secret | None = None         # Bearer secret for /metrics; None: loopback scrapers only

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        env = Environment(environ)
        data_dir = Path(env.str("DATA_DIR", "var")).absolute()
        endpoint = env.str("S3_ENDPOINT", "")
        local_store = None
        if endpoint:
            store = StoreSettings(
                endpoint=endpoint,
                access_key=env.required("S3_ACCESS_KEY"),
                secret_key=env.required("S3_SECRET_KEY", secret=True),
                bucket=env.str("S3_BUCKET", "series"),
                secure=env.bool("S3_SECURE", False),
                region=env.str("S3_REGION", "") or None,
            )
            generated = {}
        else:
            local_store = LocalStoreSettings(data_dir=data_dir / "seaweedfs", port=env.int("LOCAL_S3_PORT", 8333))
            store = StoreSettings(
                endpoint=f"127.0.0.1:{local_store.port}",
                access_key=local_store.access_key,
                secret_key=local_store.secret_key,
                bucket=env.str("S3_BUCKET", "series"),
            )
            generated = local_secrets(data_dir)
        master_key = env.base64_key("MASTER_KEY", generated.get("master_key"), size=32)
        token_keys = env.token_keys("TOKEN_KEYS", generated.get("token_keys"))
        drm = DrmSettings(
            master_key=master_key,
            master_key_id=env.str("MASTER_KEY_ID", "mk1"),
            old_master_keys=env.old_master_keys("OLD_MASTER_KEYS"),
            token_signing_keys=token_keys,
            token_signing_kid=env.str("TOKEN_KID", sorted(token_keys)[-1]),
            token_ttl_s=env.int("TOKEN_TTL_S", 6 * 3600),
        )
        rules = _validation_rules(env)
        host = env.str("LISTEN_HOST", "127.0.0.1")
        port = env.int("LISTEN_PORT", 8080)
        return cls(
            data_dir=data_dir,
            db_path=Path(env.str("DB_PATH", str(data_dir / "series.db"))).absolute(),
            store=store,
            local_store=local_store,
            drm=drm,
            ladder=LadderSettings(
                max_renditions=env.int("LADDER_MAX_RENDITIONS", 5),
                preset=env.str("X264_PRESET", "veryfast"),
                min_psnr_db=env.float("MIN_PSNR_DB", 30.0),
            ),
            rules=rules,
            listen_host=host,
            listen_port=port,
            public_url=env.str("PUBLIC_URL", f"http://{host}:{port}").rstrip("/"),
            segments_per_key=env.int("SEGMENTS_PER_KEY", 10),
            **_catalog_settings(env, generated),
            hls_session_key=env.bool("HLS_SESSION_KEY", False),
            hls_segment_format=_segment_format(env),
            # shorter, and the collection after one publish could delete another still uploading
            gc_grace_s=env.float("GC_GRACE_S", 6 * 3600, minimum=MIN_GC_GRACE_S),
            jobs=_job_settings(env, data_dir, generated.get("ingest_token"), rules.max_size_bytes),
            rate_limits=_rate_limits(env),
            http=_http(env),
            metrics_token=_optional_secret(env, "METRICS_TOKEN", min_length=16),
        )


def _segment_format(env: Environment) -> SegmentFormat:
    raw = env.str("HLS_SEGMENT_FORMAT", SegmentFormat.TS.value).strip().lower()
    try:
        return SegmentFormat(raw)
    except ValueError:
        choices = " or ".join(f.value for f in SegmentFormat)
        raise SettingsError(f"{PREFIX}HLS_SEGMENT_FORMAT has value {raw!r}; expected {choices}") from None


def _validation_rules(env: Environment) -> ValidationRules:
    """Upload limits; defaults are the product's (30 s to 20 min, 4096 px a side, 120 fps in, 8 GiB)."""
    defaults = ValidationRules()
    rules = ValidationRules(
        min_duration_s=env.float("MIN_DURATION_S", defaults.min_duration_s),
        max_duration_s=env.float("MAX_DURATION_S", defaults.max_duration_s),
        max_side_px=env.int("MAX_SIDE_PX", defaults.max_side_px),
        min_short_side_px=env.int("MIN_SHORT_SIDE_PX", defaults.min_short_side_px),
        max_frame_rate=env.float("MAX_FRAME_RATE", defaults.max_frame_rate),
        max_size_bytes=env.int("MAX_UPLOAD_BYTES", defaults.max_size_bytes),
    )
    for name, value in (("MIN_DURATION_S", rules.min_duration_s), ("MAX_SIDE_PX", rules.max_side_px),
                        ("MIN_SHORT_SIDE_PX", rules.min_short_side_px),
                        ("MAX_FRAME_RATE", rules.max_frame_rate), ("MAX_UPLOAD_BYTES", rules.max_size_bytes)):
        if value <= 0:
            raise SettingsError(f"{PREFIX}{name} has value {value!r}; expected a positive number")
    if rules.max_duration_s < rules.min_duration_s:
        raise SettingsError(f"{PREFIX}MAX_DURATION_S ({rules.max_duration_s:g}) is below "
                            f"{PREFIX}MIN_DURATION_S ({rules.min_duration_s:g})")
    if rules.max_side_px < rules.min_short_side_px:
        raise SettingsError(f"{PREFIX}MAX_SIDE_PX ({rules.max_side_px}) is below "
                            f"{PREFIX}MIN_SHORT_SIDE_PX ({rules.min_short_side_px})")
    return rules


def _catalog_settings(env: Environment, generated: dict) -> dict:
    """Operator token, webhook secret, replay window and entitlement cache TTL (issue 6)."""
    tokens = {}
    for field_name, variable in (("operator_token", "OPERATOR_TOKEN"), ("webhook_secret", "WEBHOOK_SECRET")):
        value = env.str(variable, "") or generated.get(field_name, "")
        if value and len(value) < 24:
            raise SettingsError(f"{PREFIX}{variable} is too short; use at least 24 random characters")
        tokens[field_name] = Secret(value) if value else None
    ttl_s = env.float("ENTITLEMENT_CACHE_TTL_S", 2.0)
    if not 0 <= ttl_s <= 5:
        raise SettingsError(f"{PREFIX}ENTITLEMENT_CACHE_TTL_S has value {ttl_s!r}; expected 0 to 5 seconds")
    tolerance_s = env.int("WEBHOOK_TOLERANCE_S", 300)
    if not 1 <= tolerance_s <= 3600:
        raise SettingsError(f"{PREFIX}WEBHOOK_TOLERANCE_S has value {tolerance_s!r}; expected 1 to 3600 seconds")
    return {**tokens, "entitlement_cache_ttl_s": ttl_s, "webhook_tolerance_s": tolerance_s}


def _job_settings(env: Environment, data_dir: Path, generated_token: str | None, max_upload_bytes: int) -> JobSettings:
    # Without SERIES_INGEST_TOKEN (and off the local setup) the hand-off API stays closed, not open.
    token = env.str("INGEST_TOKEN", "") or generated_token
    if token is not None and len(token) < 16:
        raise SettingsError(f"{PREFIX}INGEST_TOKEN is too short; give at least 16 random characters")
    return JobSettings(
        ingest_token=token,
        # completion webhooks we send; SERIES_WEBHOOK_SECRET is the payment system's, which we receive
        webhook_secret=env.str("JOB_WEBHOOK_SECRET", "") or token,
        uploads_bucket=env.str("UPLOADS_BUCKET", "uploads"),
        spool_dir=Path(env.str("UPLOAD_SPOOL_DIR", str(data_dir / "uploads"))).absolute(),
        max_upload_bytes=max_upload_bytes,      # SERIES_MAX_UPLOAD_BYTES, the validator's limit too
        workers=env.positive_int("INGEST_WORKERS", 1),
        max_attempts=env.positive_int("JOB_MAX_ATTEMPTS", 3),
        retry_delay_s=env.float("JOB_RETRY_DELAY_S", 30.0, minimum=0.0),
        db_busy_timeout_ms=env.positive_int("DB_BUSY_TIMEOUT_MS", 2000),
        webhook_hosts=_webhook_hosts(env),
        lease_s=_job_lease_s(env),
        failed_upload_retention_s=env.float("FAILED_UPLOAD_RETENTION_S", 7 * 24 * 3600.0,
                                            minimum=MIN_FAILED_UPLOAD_RETENTION_S),
    )


_RATE_VARIABLES = {"viewer_per_s": "RATE_VIEWER_PER_S", "viewer_burst": "RATE_VIEWER_BURST",
                   "ip_per_s": "RATE_IP_PER_S", "ip_burst": "RATE_IP_BURST", "max_tracked": "RATE_MAX_TRACKED"}


def _rate_limits(env: Environment) -> RateLimitSettings:
    default = RateLimitSettings()
    values = {}
    for attribute, variable in _RATE_VARIABLES.items():
        read = env.float if attribute.endswith("_per_s") else env.int
        values[attribute] = value = read(variable, getattr(default, attribute))
        if not value > 0:
            raise SettingsError(f"{PREFIX}{variable} has value {value!r}; expected a positive number")
    return RateLimitSettings(**values)


def _http(env: Environment) -> HttpSettings:
    try:
        origins = parse_origins(env.str("CORS_ORIGINS", "*"))
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}CORS_ORIGINS: {exc}") from None
    try:
        proxies = parse_networks(env.str("TRUSTED_PROXIES", ""))
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}TRUSTED_PROXIES: {exc}") from None
    max_request_bytes = env.int("MAX_REQUEST_BYTES", HttpSettings().max_request_bytes)
    if max_request_bytes < 1:
        raise SettingsError(f"{PREFIX}MAX_REQUEST_BYTES has value {max_request_bytes!r}; expected a positive integer")
    return HttpSettings(cors_origins=origins, trusted_proxies=proxies, max_request_bytes=max_request_bytes)


def _job_lease_s(env: Environment) -> float:
    lease_s = env.float("JOB_LEASE_S", 60.0)
    if not 1 <= lease_s <= 3600:
        raise SettingsError(f"{PREFIX}JOB_LEASE_S has value {lease_s!r}; expected 1 to 3600 seconds")
    return lease_s


def _optional_secret(env: Environment, name: str, *, min_length: int) -> Secret | None:
    value = env.str(name, "")
    if value and len(value) < min_length:
        raise SettingsError(f"{PREFIX}{name} is too short; use at least {min_length} random characters")
    return Secret(value) if value else None


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


