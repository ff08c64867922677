"""drm: content keys, playback tokens, entitlements, the catalog and payments. Synchronous; imports nothing
of ours.

    keystore.py  content keys, wrapped at rest under the master key
    access/      who may watch what: entitlements and their change feed, tokens, sessions, revocations
    catalog/     series and episodes, pages, viewers' libraries, creator eligibility
    payments/    purchase, refund and chargeback events, sales, idempotency keys
    storage/     the Database interface, its SQLite and PostgreSQL engines, the schema and its migrations
    ids.py, errors.py

Rooms import downwards: payments → catalog → access → keystore → storage → errors.
tests/test_layering.py holds them to it.
"""

from drm.access.entitlement_changes import EntitlementChanges, EntitlementFeed
from drm.access.entitlements import Entitlement, EntitlementEvent, EntitlementStore
from drm.access.tokens import AccountToken, PlaybackToken, TokenSigner
from drm.catalog.catalog import Catalog, Episode, Series, SqlCatalog, SqliteCatalog
from drm.catalog.eligibility import CreatorProfile, CreatorRegistry, CreatorStatus, Verdict, evaluate
from drm.errors import (
    ApplicationRefused,
    CreatorNotEligible,
    DatabaseUnavailable,
    DrmError,
    EpisodeLimitReached,
    InvalidField,
    InvalidId,
    KeyUnwrapFailed,
    NotEntitled,
    NotSeriesOwner,
    SchemaNotMigrated,
    SchemaTooNew,
    SeriesExists,
    TokenExpired,
    TokenInvalid,
    UnknownEpisode,
    UnknownKey,
    UnknownSeries,
    WebhookRejected,
    WrongSeries,
)
from drm.ids import check_id
from drm.keystore import ContentKey, DrmSettings, KeyStore
from drm.payments.purchases import PaymentEvent, PaymentProcessor, verify_signature
from drm.payments.sales import SalesReport, sales_report
from drm.storage.database import Database, Dialect, Transaction
from drm.storage.engines import connect_database, open_database
from drm.storage.migrations import SCHEMA_VERSION, MigrationResult, migrate, schema_version
from drm.storage.sqlite import connect

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
    "DatabaseUnavailable",
    "Dialect",
    "DrmError",
    "DrmSettings",
    "Entitlement",
    "EntitlementChanges",
    "EntitlementEvent",
    "EntitlementFeed",
    "EntitlementStore",
    "Episode",
    "EpisodeLimitReached",
    "InvalidField",
    "InvalidId",
    "KeyStore",
    "KeyUnwrapFailed",
    "MigrationResult",
    "NotEntitled",
    "NotSeriesOwner",
    "PaymentEvent",
    "PaymentProcessor",
    "SalesReport",
    "PlaybackToken",
    "SCHEMA_VERSION",
    "SchemaNotMigrated",
    "SchemaTooNew",
    "Series",
    "SeriesExists",
    "SqlCatalog",
    "SqliteCatalog",
    "TokenExpired",
    "TokenInvalid",
    "TokenSigner",
    "Transaction",
    "UnknownEpisode",
    "UnknownKey",
    "UnknownSeries",
    "Verdict",
    "WebhookRejected",
    "WrongSeries",
    "check_id",
    "connect",
    "connect_database",
    "evaluate",
    "migrate",
    "open_database",
    "sales_report",
    "schema_version",
    "verify_signature",
]
