"""Settings of resumable (tus) uploads (SERIES_UPLOAD_*): part size, expiry, concurrent-upload caps, the
PATCH lease. The size cap is SERIES_MAX_UPLOAD_BYTES, shared with every other way in."""

from __future__ import annotations

import math
from dataclasses import dataclass

from server.config.environment import PREFIX, Environment, SettingsError

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB        # S3's smallest part but the last (packager.store.MIN_PART_BYTES)
MAX_PART_BYTES = 512 * MIB      # one part is held in memory per PATCH in flight
MAX_PARTS = 10_000              # S3's most parts in one multipart upload


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadSettings:
    # bytes per S3 part, and so the most a PATCH in flight holds in memory; chunks a client sends smaller
    # than this are gathered in a tail object in the store until a part is full (SERIES_UPLOAD_PART_BYTES)
    part_bytes: int = 8 * MIB
    # an upload that receives nothing for this long expires; each PATCH moves it on (SERIES_UPLOAD_EXPIRY_S)
    expiry_s: float = 24 * 3600.0
    # unfinished uploads at once per creator, and for all upload services sharing the ingest token
    max_per_creator: int = 10                       # SERIES_UPLOAD_MAX_PER_CREATOR
    max_per_ingest_token: int = 200                 # SERIES_UPLOAD_MAX_PER_INGEST_TOKEN
    # a PATCH holds its upload under a lease it renews while bytes arrive; a holder that died lets go after
    # this long (SERIES_UPLOAD_LEASE_S)
    lease_s: float = 60.0
    # a PATCH that receives nothing for this long ends, keeping what arrived: a phone that vanished without
    # closing its connection must not hold the upload until TCP gives up (SERIES_UPLOAD_IDLE_S)
    idle_s: float = 30.0


def read_upload_settings(env: Environment, max_upload_bytes: int) -> UploadSettings:
    """SERIES_UPLOAD_* from `env`; SettingsError names the variable of a bad value. A part size that would
    need more than S3's 10,000 parts for an upload of `max_upload_bytes` (SERIES_MAX_UPLOAD_BYTES) is refused."""
    default = UploadSettings()
    part_bytes = env.int("UPLOAD_PART_BYTES", default.part_bytes)
    if not MIN_PART_BYTES <= part_bytes <= MAX_PART_BYTES:
        raise SettingsError(f"{PREFIX}UPLOAD_PART_BYTES has value {part_bytes}; expected {MIN_PART_BYTES} (5 MiB, "
                            f"S3's smallest part) to {MAX_PART_BYTES} (512 MiB)")
    if math.ceil(max_upload_bytes / part_bytes) > MAX_PARTS:
        raise SettingsError(f"{PREFIX}UPLOAD_PART_BYTES ({part_bytes}) would need more than {MAX_PARTS} parts "
                            f"(S3's limit) for an upload of {PREFIX}MAX_UPLOAD_BYTES ({max_upload_bytes}); set it to "
                            f"at least {math.ceil(max_upload_bytes / MAX_PARTS)}")
    settings = UploadSettings(
        part_bytes=part_bytes,
        expiry_s=env.float("UPLOAD_EXPIRY_S", default.expiry_s, minimum=60.0),
        max_per_creator=env.positive_int("UPLOAD_MAX_PER_CREATOR", default.max_per_creator),
        max_per_ingest_token=env.positive_int("UPLOAD_MAX_PER_INGEST_TOKEN", default.max_per_ingest_token),
        lease_s=env.float("UPLOAD_LEASE_S", default.lease_s, minimum=3.0),
        idle_s=env.float("UPLOAD_IDLE_S", default.idle_s, minimum=1.0),
    )
    if settings.idle_s > settings.lease_s / 2:
        raise SettingsError(f"{PREFIX}UPLOAD_IDLE_S ({settings.idle_s:g}) must be at most half of {PREFIX}UPLOAD_LEASE_S "
                            f"({settings.lease_s:g}): a PATCH waiting for bytes renews its lease between reads, and "
                            "must let go before the lease runs out")
    return settings
