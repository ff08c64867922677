"""Settings: the one reader of the environment. Everything else receives a Settings object.

With nothing configured, the project runs on the embedded local object store (SeaweedFS `weed mini`)
and generates its secrets once into the data directory. Pointing SERIES_S3_ENDPOINT at a MinIO
cluster switches to that store; then every secret must come from the environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from drm.errors import InvalidId
from drm.ids import check_id
from drm.keystore import DEFAULT_PLAYBACK_TOKEN_TTL_S, DrmSettings
from packager.store import StoreSettings
from pipeline.fmp4 import SegmentFormat
from pipeline.ladder import LadderMode, LadderSettings, PerTitleSettings, QualityMetric
from pipeline.validate import ValidationRules
from server.config.access import AccessSettings, DatabaseUrl
from server.config.catalog import CatalogSettings
from server.config.credentials import (
    check_bearer_secret,
    check_distinct,
    check_random_bytes,
    check_signing_kid,
    check_webhook_secret,
    parse_public_keys,
    parse_token_keys,
)
from server.config.environment import PREFIX, Environment, Secret, SettingsError
from server.config.http import AuthFailureSettings, HttpSettings, RateLimitSettings, parse_networks, parse_origins
from server.config.jobs import (
    IN_PROCESS,
    JOB_ENGINES,
    MIN_JOB_S,
    PROCRASTINATE,
    WEBHOOK_RETRY_DELAYS_S,
    JobSettings,
)
from server.config.pictures import PictureSettings, pictures_settings
from server.config.uploads import UploadSettings, read_upload_settings
from server.config.web import WebSettings, web_settings
from server.local.object_store import LocalStoreSettings
from server.local.secrets import local_secrets

log = logging.getLogger(__name__)

MIN_GC_GRACE_S = 600.0       # a version written in the last 10 min may be a publish still uploading
# a spool file no job names yet may be an upload between its write and its row: give it at least an hour
MIN_FAILED_UPLOAD_RETENTION_S = 3600.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path
    db_path: Path                               # the embedded SQLite file, used when database_url is None
    database_url: DatabaseUrl | None = None     # SERIES_DATABASE_URL: the PostgreSQL every instance shares
    database_pool_size: int = 10                # connections one process may hold (SERIES_DATABASE_POOL_SIZE)
    store: StoreSettings
    local_store: LocalStoreSettings | None      # set when the embedded store is the store
    drm: DrmSettings
    # kid -> DER public key (Ed25519 or P-256) of a host application that mints tokens itself
    token_public_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)
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
    access: AccessSettings = field(default_factory=AccessSettings)   # what the key path remembers
    hls_session_key: bool = False               # EXT-X-SESSION-KEY in masters: key prefetch; some old players choke
    hls_segment_format: SegmentFormat = SegmentFormat.TS   # ts: widest support; fmp4: EXT-X-MAP + .m4s segments
    gc_grace_s: float = 6 * 3600                # superseded versions outlive a playback token (default TTL 6 h)
    jobs: JobSettings = field(default_factory=JobSettings)   # ingest hand-off API and its workers
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    metrics_token: Secret | None = None         # Bearer secret for /metrics; None: loopback scrapers only
    auth_failures: AuthFailureSettings = field(default_factory=AuthFailureSettings)
    catalog: CatalogSettings = field(default_factory=CatalogSettings)   # the catalog API's own
    web: WebSettings = field(default_factory=WebSettings)               # the viewer web app's
    pictures: PictureSettings = field(default_factory=PictureSettings)  # posters, thumbnails, captions
    uploads: UploadSettings = field(default_factory=UploadSettings)     # resumable (tus) uploads

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def database_target(self) -> str:
        """What drm.open_database() opens: the PostgreSQL URL (password included), else the SQLite file."""
        return self.database_url.reveal() if self.database_url is not None else str(self.db_path)

    def describe_database(self) -> str:
        """Where the database is, for messages: the URL without its password, or the file."""
        return str(self.database_url) if self.database_url is not None else str(self.db_path)

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
        drm = _drm_settings(env, generated)
        rules = _validation_rules(env)
        catalog = _catalog_settings(env, generated)
        database_url = _database_url(env)
        jobs = _job_settings(env, data_dir, generated, rules.max_size_bytes, is_postgresql=database_url is not None)
        metrics_token = _optional_secret(env, "METRICS_TOKEN")
        check_distinct({"OPERATOR_TOKEN": _revealed(catalog["operator_token"]),
                        "WEBHOOK_SECRET": _revealed(catalog["webhook_secret"]), "INGEST_TOKEN": jobs.ingest_token,
                        "METRICS_TOKEN": _revealed(metrics_token), "JOB_WEBHOOK_SECRET": jobs.webhook_secret,
                        "JOB_WEBHOOK_LEGACY_SECRET": jobs.webhook_legacy_secret})
        host = env.str("LISTEN_HOST", "127.0.0.1")
        port = env.int("LISTEN_PORT", 8080)
        access = _access(env, is_postgresql=database_url is not None)
        pool_size = _pool_size(env, access.lookup_threads)
        return cls(
            data_dir=data_dir,
            db_path=Path(env.str("DB_PATH", str(data_dir / "series.db"))).absolute(),
            database_url=database_url,
            database_pool_size=pool_size,
            access=access,
            store=store,
            local_store=local_store,
            drm=drm,
            token_public_keys=parse_public_keys("TOKEN_PUBLIC_KEYS", env.str("TOKEN_PUBLIC_KEYS", ""),
                                                drm.token_signing_keys),
            ladder=_ladder(env),
            rules=rules,
            listen_host=host,
            listen_port=port,
            public_url=env.str("PUBLIC_URL", f"http://{host}:{port}").rstrip("/"),
            segments_per_key=env.int("SEGMENTS_PER_KEY", 10),
            **catalog,
            hls_session_key=env.bool("HLS_SESSION_KEY", False),
            hls_segment_format=_segment_format(env),
            # shorter, and the collection after one publish could delete another still uploading
            gc_grace_s=env.float("GC_GRACE_S", 6 * 3600, minimum=MIN_GC_GRACE_S),
            jobs=jobs,
            rate_limits=_rate_limits(env),
            http=_http(env),
            metrics_token=metrics_token,
            auth_failures=_auth_failures(env),
            catalog=_catalog_api(env),
            web=web_settings(env, is_embedded=local_store is not None, has_webhook_secret=catalog["webhook_secret"] is not None),
            pictures=pictures_settings(env),
            uploads=read_upload_settings(env, rules.max_size_bytes),
        )


def _segment_format(env: Environment) -> SegmentFormat:
    return env.choice("HLS_SEGMENT_FORMAT", SegmentFormat, SegmentFormat.TS)


def _ladder(env: Environment) -> LadderSettings:
    """The ladder: fixed (every episode the same rungs) or per-title (SERIES_LADDER), and the per-title
    thresholds in the chosen metric's dB (pipeline/ladder.py PerTitleSettings says what each does)."""
    metric = env.choice("LADDER_METRIC", QualityMetric, QualityMetric.PSNR)
    defaults = PerTitleSettings.for_metric(metric)
    no_ceiling = env.str("LADDER_ENOUGH_DB", "").strip().lower() == "none"
    per_title = replace(
        defaults,
        enough_db=None if no_ceiling else env.float("LADDER_ENOUGH_DB", defaults.enough_db, minimum=20, maximum=99),
        max_loss_db=env.float("LADDER_MAX_LOSS_DB", defaults.max_loss_db, minimum=0, maximum=3),
        min_gain_db=env.float("LADDER_MIN_GAIN_DB", defaults.min_gain_db, minimum=0, maximum=10),
        max_crf=env.float("LADDER_MAX_CRF", defaults.max_crf, minimum=12, maximum=40),
        min_crf=env.float("LADDER_MIN_CRF", defaults.min_crf, minimum=0, maximum=40),
    )
    if per_title.min_crf > per_title.max_crf:
        raise SettingsError(f"{PREFIX}LADDER_MIN_CRF ({per_title.min_crf:g}) is above {PREFIX}LADDER_MAX_CRF "
                            f"({per_title.max_crf:g}): no constant quality is left between them")
    return LadderSettings(
        mode=env.choice("LADDER", LadderMode, LadderMode.FIXED),
        per_title=per_title,
        max_renditions=env.int("LADDER_MAX_RENDITIONS", 5),
        preset=env.str("X264_PRESET", "veryfast"),
        min_psnr_db=env.float("MIN_PSNR_DB", 30.0),
    )


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
        max_decoded_pixels=int(env.float("MAX_DECODED_PIXELS", defaults.max_decoded_pixels, minimum=1)),
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
        tokens[field_name] = Secret(check_bearer_secret(variable, value)) if value else None
    if env.str("ENTITLEMENT_CACHE_TTL_S", ""):
        log.warning("%sENTITLEMENT_CACHE_TTL_S is no longer read: key servers follow the entitlement change feed "
                    "(a refund is enforced everywhere within about a second); see %sACCESS_CACHE_MAX_AGE_S",
                    PREFIX, PREFIX)
    tolerance_s = env.int("WEBHOOK_TOLERANCE_S", 300)
    if not 1 <= tolerance_s <= 3600:
        raise SettingsError(f"{PREFIX}WEBHOOK_TOLERANCE_S has value {tolerance_s!r}; expected 1 to 3600 seconds")
    return {**tokens, "webhook_tolerance_s": tolerance_s}


def _database_url(env: Environment) -> DatabaseUrl | None:
    """SERIES_DATABASE_URL: unset (or empty) keeps the embedded SQLite file. Its value may hold a password,
    so no message echoes it."""
    raw = env.str("DATABASE_URL", "").strip()
    if not raw:
        return None
    if not DatabaseUrl.is_postgresql(raw):
        scheme = raw.split("://", 1)[0] if "://" in raw else ""
        shown = f"scheme {scheme[:20]!r}" if scheme.isalnum() else "a value that is not a URL"
        raise SettingsError(f"{PREFIX}DATABASE_URL has {shown}; expected postgresql://user:password@host:port/database "
                            f"(or unset it to use the embedded SQLite file, {PREFIX}DB_PATH)")
    try:
        parts = urlsplit(raw)
        parts.port      # raises ValueError for a port that is not a number
    except ValueError:
        raise SettingsError(f"{PREFIX}DATABASE_URL does not parse as a URL; expected "
                            "postgresql://user:password@host:port/database (percent-encode special characters "
                            "in the password)") from None
    return DatabaseUrl(raw)


def _pool_size(env: Environment, lookup_threads: int) -> int:
    """SERIES_DATABASE_POOL_SIZE: PostgreSQL connections per process (the LISTEN connection is one more)."""
    least = lookup_threads + 2
    size = env.positive_int("DATABASE_POOL_SIZE", max(10, least))
    if size < least:
        raise SettingsError(f"{PREFIX}DATABASE_POOL_SIZE has value {size}; expected at least {least}: one connection "
                            f"per key lookup thread ({PREFIX}KEY_LOOKUP_THREADS = {lookup_threads}), plus the change "
                            "feed's poll and the API's requests")
    return size


def _access(env: Environment, *, is_postgresql: bool) -> AccessSettings:
    # SQLite serializes a process's reads on one connection: more lookup threads would only queue;
    # PostgreSQL answers several lookups at once, each a network round trip.
    default = AccessSettings(lookup_threads=4 if is_postgresql else 2)
    values = {
        "entitled_entries": env.positive_int("ACCESS_CACHE_ENTRIES", default.entitled_entries),
        "refused_entries": env.positive_int("ACCESS_CACHE_REFUSALS", default.refused_entries),
        "episode_entries": env.positive_int("ACCESS_EPISODE_ENTRIES", default.episode_entries),
        "max_age_s": env.float("ACCESS_CACHE_MAX_AGE_S", default.max_age_s),
        "key_entries": env.positive_int("KEY_CACHE_ENTRIES", default.key_entries),
        "token_entries": env.positive_int("TOKEN_CACHE_ENTRIES", default.token_entries),
        "lookup_threads": env.positive_int("KEY_LOOKUP_THREADS", default.lookup_threads),
        "max_sessions": env.int("MAX_SESSIONS", default.max_sessions),
        "session_idle_s": env.float("SESSION_IDLE_S", default.session_idle_s),
        "refresh_grace_s": env.int("TOKEN_REFRESH_GRACE_S", default.refresh_grace_s),
    }
    if not 1 <= values["max_age_s"] <= 3600:
        raise SettingsError(f"{PREFIX}ACCESS_CACHE_MAX_AGE_S has value {values['max_age_s']!r}; "
                            "expected 1 to 3600 seconds")
    for name, variable, low, high in (("max_sessions", "MAX_SESSIONS", 0, 1000),
                                      ("session_idle_s", "SESSION_IDLE_S", 90, 86400),
                                      ("refresh_grace_s", "TOKEN_REFRESH_GRACE_S", 0, 86400)):
        if not low <= values[name] <= high:
            raise SettingsError(f"{PREFIX}{variable} has value {values[name]!r}; expected {low} to {high}")
    if values["lookup_threads"] > 64:
        raise SettingsError(f"{PREFIX}KEY_LOOKUP_THREADS has value {values['lookup_threads']}; expected 1 to 64")
    return AccessSettings(**values)


def _catalog_api(env: Environment) -> CatalogSettings:
    """The operator's test viewers (ids, comma-separated), idempotency retention, progress report rate."""
    viewers = []
    for item in (part.strip() for part in env.str("TEST_VIEWER_IDS", "").split(",")):
        if item and not _is_id(item):
            raise SettingsError(f"{PREFIX}TEST_VIEWER_IDS has entry {item[:40]!r}; viewer ids are a letter or digit, "
                                "then letters, digits, '-' or '_'")
        if item:
            viewers.append(item)
    default = CatalogSettings()
    ttl_s = env.float("IDEMPOTENCY_TTL_S", default.idempotency_ttl_s, minimum=60.0)
    per_s = env.float("PROGRESS_PER_S", default.progress_per_s)
    burst = env.int("PROGRESS_BURST", default.progress_burst)
    if not per_s > 0 or burst < 1:
        raise SettingsError(f"{PREFIX}PROGRESS_PER_S and {PREFIX}PROGRESS_BURST must be positive "
                            f"(got {per_s!r} and {burst!r})")
    return CatalogSettings(test_viewer_ids=frozenset(viewers), idempotency_ttl_s=ttl_s, progress_per_s=per_s,
                           progress_burst=burst)


def _job_settings(env: Environment, data_dir: Path, generated: dict, max_upload_bytes: int, *,
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
        webhook_networks=_networks(env, "JOB_WEBHOOK_NETWORKS"),
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
    proxies = _networks(env, "TRUSTED_PROXIES")
    max_request_bytes = env.int("MAX_REQUEST_BYTES", HttpSettings().max_request_bytes)
    if max_request_bytes < 1:
        raise SettingsError(f"{PREFIX}MAX_REQUEST_BYTES has value {max_request_bytes!r}; expected a positive integer")
    return HttpSettings(cors_origins=origins, trusted_proxies=proxies, max_request_bytes=max_request_bytes)


def _job_lease_s(env: Environment) -> float:
    lease_s = env.float("JOB_LEASE_S", 60.0)
    if not 1 <= lease_s <= 3600:
        raise SettingsError(f"{PREFIX}JOB_LEASE_S has value {lease_s!r}; expected 1 to 3600 seconds")
    return lease_s


def _optional_secret(env: Environment, name: str) -> Secret | None:
    value = env.str(name, "")
    return Secret(check_bearer_secret(name, value)) if value else None


def _revealed(secret: Secret | None) -> str | None:
    return secret.reveal() if secret is not None else None


def _drm_settings(env: Environment, generated: dict) -> DrmSettings:
    """Master key and token keys; every bad value named by its variable (DrmSettings' own checks speak of
    fields, so everything it would refuse is checked here first)."""
    master_key = env.base64_key("MASTER_KEY", generated.get("master_key"), size=32)
    check_random_bytes("MASTER_KEY", master_key, minimum=32)
    raw_keys = env.str("TOKEN_KEYS", "")
    if raw_keys:
        token_keys = parse_token_keys("TOKEN_KEYS", raw_keys)
    elif generated.get("token_keys"):
        token_keys = generated["token_keys"]
    else:
        raise SettingsError(f"{PREFIX}TOKEN_KEYS is not set; give 'kid:base64secret[,kid2:base64secret]', "
                            "each secret 32 random bytes or more")
    master_key_id = env.str("MASTER_KEY_ID", "mk1")
    old_master_keys = env.old_master_keys("OLD_MASTER_KEYS")
    for name, kid in [("MASTER_KEY_ID", master_key_id)] + [("OLD_MASTER_KEYS", kid) for kid in old_master_keys]:
        if not _is_id(kid):
            raise SettingsError(f"{PREFIX}{name} has key id {kid[:40]!r}; use a letter or digit, then letters, "
                                "digits, '-' or '_'")
    for kid, key in old_master_keys.items():
        if len(key) != 32:
            raise SettingsError(f"{PREFIX}OLD_MASTER_KEYS entry {kid!r} decodes to {len(key)} bytes; expected 32")
    if master_key_id in old_master_keys:
        raise SettingsError(f"{PREFIX}MASTER_KEY_ID {master_key_id!r} is also in {PREFIX}OLD_MASTER_KEYS; "
                            "remove it from the old keys")
    ttl_s = env.int("TOKEN_TTL_S", DEFAULT_PLAYBACK_TOKEN_TTL_S)
    if ttl_s < 1:
        raise SettingsError(f"{PREFIX}TOKEN_TTL_S has value {ttl_s!r}; expected a positive number of seconds")
    kid = check_signing_kid("TOKEN_KID", env.str("TOKEN_KID", sorted(token_keys)[-1]), token_keys, "TOKEN_KEYS")
    try:
        return DrmSettings(master_key=master_key, master_key_id=master_key_id, old_master_keys=old_master_keys,
                           token_signing_keys=token_keys, token_signing_kid=kid, token_ttl_s=ttl_s)
    except ValueError as exc:   # a rule of drm's this module does not know yet: still name the variables
        raise SettingsError(f"{PREFIX}MASTER_KEY* / {PREFIX}TOKEN_*: {exc}") from None


def _is_id(value: str) -> bool:
    try:
        check_id("id", value)
    except InvalidId:
        return False
    return True


def _auth_failures(env: Environment) -> AuthFailureSettings:
    default = AuthFailureSettings()
    per_s = env.float("AUTH_FAILURES_PER_S", default.per_s)
    burst = env.int("AUTH_FAILURES_BURST", default.burst)
    if not per_s > 0:
        raise SettingsError(f"{PREFIX}AUTH_FAILURES_PER_S has value {per_s!r}; expected a positive number")
    if burst < 1:
        raise SettingsError(f"{PREFIX}AUTH_FAILURES_BURST has value {burst!r}; expected a positive integer")
    return AuthFailureSettings(per_s=per_s, burst=burst)


def _networks(env: Environment, name: str):
    try:
        return parse_networks(env.str(name, ""))
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}{name}: {exc}") from None


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


