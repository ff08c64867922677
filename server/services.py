"""Services: the long-lived objects one process needs, built from Settings in one place."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from drm.access.entitlements import EntitlementStore
from drm.access.revocations import AccountRevocations
from drm.access.sessions import PlaybackSessions
from drm.access.tokens import TokenSigner
from drm.catalog.catalog import Catalog, SqlCatalog
from drm.catalog.eligibility import CreatorRegistry
from drm.catalog.library import Library
from drm.keystore import KeyStore
from drm.payments.idempotency import IdempotencyStore
from drm.payments.purchases import PaymentProcessor
from drm.storage.database import Database
from drm.storage.engines import open_database
from packager.store import ObjectStore
from server.config import Settings


@dataclass(frozen=True, kw_only=True)
class Services:
    settings: Settings
    db: Database                  # SERIES_DATABASE_URL's PostgreSQL, or the embedded SQLite file
    store: ObjectStore
    keystore: KeyStore
    entitlements: EntitlementStore
    tokens: TokenSigner
    catalog: Catalog
    creators: CreatorRegistry
    payments: PaymentProcessor
    idempotency: IdempotencyStore            # the catalog API's Idempotency-Keys, shared by every instance
    library: Library                         # what viewers hold, and where they stopped watching
    sessions: PlaybackSessions               # live playback sessions, counted against SERIES_MAX_SESSIONS
    revocations: AccountRevocations          # accounts whose tokens were revoked (series tokens revoke)

    @classmethod
    def open(cls, settings: Settings) -> Services:
        """Open the database and the object store client (the store itself must be running).

        Raises SchemaNotMigrated when a PostgreSQL database is not at this code's schema (run `series db
        migrate`), SchemaTooNew when it is ahead, DatabaseUnavailable when it cannot be reached.
        """
        db = open_database(settings.database_target, pool_max_size=settings.database_pool_size)
        try:
            store = ObjectStore(settings.store)
        except BaseException:
            db.close()
            raise
        entitlements = EntitlementStore(db)
        catalog = open_catalog(db, settings)
        return cls(
            settings=settings,
            db=db,
            store=store,
            keystore=KeyStore(db, settings.drm, cache_entries=settings.access.key_entries),
            entitlements=entitlements,
            tokens=TokenSigner(settings.drm, public_keys=settings.token_public_keys),
            catalog=catalog,
            creators=CreatorRegistry(db),
            payments=PaymentProcessor(db, entitlements, catalog),
            idempotency=IdempotencyStore(db, ttl_s=settings.catalog.idempotency_ttl_s),
            library=Library(db),
            sessions=PlaybackSessions(db),
            revocations=AccountRevocations(db),
        )

    def close(self) -> None:
        self.store.close()
        self.db.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


SERVICES = web.AppKey("services", Services)     # where the app keeps them, for every room's handlers


def open_catalog(db: Database, settings: Settings) -> SqlCatalog:
    """The catalog on `db`, holding episodes to the validator's length bounds (SERIES_*_DURATION_S)."""
    return SqlCatalog(db, episode_bounds_s=(settings.rules.min_duration_s, settings.rules.max_duration_s))
