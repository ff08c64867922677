"""drm: content keys, playback tokens and entitlements. Synchronous; imports nothing of ours."""

from .catalog import Catalog, Episode, Series, SqliteCatalog
from .database import Database, connect
from .eligibility import CreatorProfile, CreatorRegistry, CreatorStatus, Verdict, evaluate
from .entitlements import Entitlement, EntitlementCache, EntitlementEvent, EntitlementStore
from .errors import (
    ApplicationRefused,
    CreatorNotEligible,
    DrmError,
    EpisodeLimitReached,
    InvalidField,
    InvalidId,
    KeyUnwrapFailed,
    NotEntitled,
    NotSeriesOwner,
    SeriesExists,
    TokenExpired,
    TokenInvalid,
    UnknownEpisode,
    UnknownKey,
    UnknownSeries,
    WebhookRejected,
    WrongSeries,
)
from .ids import check_id
from .keystore import ContentKey, DrmSettings, KeyStore
from .purchases import PaymentEvent, PaymentProcessor, verify_signature
from .tokens import AccountToken, PlaybackToken, TokenSigner

__all__ = [
    "AccountToken",
    "ApplicationRefused",
    "Catalog",
    "ContentKey",
    "CreatorNotEligible",
    "CreatorProfile",
    "CreatorRegistry",
    "CreatorStatus",
    "Database",
    "DrmError",
    "DrmSettings",
    "Entitlement",
    "EntitlementCache",
    "EntitlementEvent",
    "EntitlementStore",
    "Episode",
    "EpisodeLimitReached",
    "InvalidField",
    "InvalidId",
    "KeyStore",
    "KeyUnwrapFailed",
    "NotEntitled",
    "NotSeriesOwner",
    "PaymentEvent",
    "PaymentProcessor",
    "PlaybackToken",
    "Series",
    "SeriesExists",
    "SqliteCatalog",
    "TokenExpired",
    "TokenInvalid",
    "TokenSigner",
    "UnknownEpisode",
    "UnknownKey",
    "UnknownSeries",
    "Verdict",
    "WebhookRejected",
    "WrongSeries",
    "check_id",
    "connect",
    "evaluate",
    "verify_signature",
]
