"""drm: content keys, playback tokens and entitlements. Synchronous; imports nothing of ours."""

from .database import Database, connect
from .entitlements import Entitlement, EntitlementStore
from .errors import (
    DrmError,
    InvalidId,
    KeyUnwrapFailed,
    NotEntitled,
    TokenExpired,
    TokenInvalid,
    UnknownKey,
    WrongSeries,
)
from .ids import check_id
from .keystore import ContentKey, DrmSettings, KeyStore
from .tokens import PlaybackToken, TokenSigner

__all__ = [
    "ContentKey",
    "Database",
    "DrmError",
    "DrmSettings",
    "Entitlement",
    "EntitlementStore",
    "InvalidId",
    "KeyStore",
    "KeyUnwrapFailed",
    "NotEntitled",
    "PlaybackToken",
    "TokenExpired",
    "TokenInvalid",
    "TokenSigner",
    "UnknownKey",
    "WrongSeries",
    "check_id",
    "connect",
]
