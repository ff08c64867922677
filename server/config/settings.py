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

from drm.keystore import DrmSettings
from packager.store import StoreSettings
from pipeline.encode.fmp4 import SegmentFormat
from pipeline.encode.ladder import LadderMode, LadderSettings, PerTitleSettings, QualityMetric
from pipeline.inspect.validate import ValidationRules
from server.config.access import AccessSettings, DatabaseUrl, read_access, read_database_url, read_pool_size
from server.config.catalog import CatalogSettings, read_catalog_settings
from server.config.credentials import check_bearer_secret, check_distinct, parse_public_keys, read_drm_settings
from server.config.environment import PREFIX, Environment, Secret, SettingsError
from server.config.http import (
    AuthFailureSettings,
    HttpSettings,
    RateLimitSettings,
    read_auth_failures,
    read_http,
    read_rate_limits,
)
from server.config.jobs import JobSettings, read_job_settings
from server.config.pictures import PictureSettings, pictures_settings
from server.config.uploads import UploadSettings, read_upload_settings
from server.config.watermark import WatermarkSettings, watermark_settings
from server.config.web import WebSettings, web_settings
from server.local.object_store import LocalStoreSettings
from server.local.secrets import local_secrets

log = logging.getLogger(__name__)

MIN_GC_GRACE_S = 600.0       # a version written in the last 10 min may be a publish still uploading


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
    watermark: WatermarkSettings = field(default_factory=WatermarkSettings)   # forensic A/B watermarking

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
        drm = read_drm_settings(env, generated)
        rules = _validation_rules(env)
        catalog = _catalog_settings(env, generated)
        database_url = read_database_url(env)
        jobs = read_job_settings(env, data_dir, generated, rules.max_size_bytes, is_postgresql=database_url is not None)
        metrics_token = _optional_secret(env, "METRICS_TOKEN")
        check_distinct({"OPERATOR_TOKEN": _revealed(catalog["operator_token"]),
                        "WEBHOOK_SECRET": _revealed(catalog["webhook_secret"]), "INGEST_TOKEN": jobs.ingest_token,
                        "METRICS_TOKEN": _revealed(metrics_token), "JOB_WEBHOOK_SECRET": jobs.webhook_secret,
                        "JOB_WEBHOOK_LEGACY_SECRET": jobs.webhook_legacy_secret})
        host = env.str("LISTEN_HOST", "127.0.0.1")
        port = env.int("LISTEN_PORT", 8080)
        access = read_access(env, is_postgresql=database_url is not None)
        pool_size = read_pool_size(env, access.lookup_threads)
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
            rate_limits=read_rate_limits(env),
            http=read_http(env),
            metrics_token=metrics_token,
            auth_failures=read_auth_failures(env),
            catalog=read_catalog_settings(env),
            web=web_settings(env, is_embedded=local_store is not None, has_webhook_secret=catalog["webhook_secret"] is not None),
            pictures=pictures_settings(env),
            uploads=read_upload_settings(env, rules.max_size_bytes),
            watermark=watermark_settings(env, generated),
        )


def _segment_format(env: Environment) -> SegmentFormat:
    return env.choice("HLS_SEGMENT_FORMAT", SegmentFormat, SegmentFormat.TS)


def _ladder(env: Environment) -> LadderSettings:
    """The ladder: fixed (every episode the same rungs) or per-title (SERIES_LADDER), and the per-title
    thresholds in the chosen metric's dB (pipeline/encode/ladder.py PerTitleSettings says what each does)."""
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
        mode=env.choice("LADDER", LadderMode, LadderMode.PER_TITLE),
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
    """Operator token, webhook secret, replay window (the old entitlement cache TTL is only warned about)."""
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


def _optional_secret(env: Environment, name: str) -> Secret | None:
    value = env.str(name, "")
    return Secret(check_bearer_secret(name, value)) if value else None


def _revealed(secret: Secret | None) -> str | None:
    return secret.reveal() if secret is not None else None


