"""Services: the long-lived objects one process needs, built from Settings in one place."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from drm.catalog import Catalog, SqliteCatalog
from drm.database import Database
from drm.eligibility import CreatorRegistry
from drm.engines import open_database
from drm.entitlements import EntitlementCache, EntitlementStore
from drm.idempotency import IdempotencyStore
from drm.keystore import KeyStore
from drm.library import Library
from drm.purchases import PaymentProcessor
from drm.tokens import TokenSigner
from packager.store import ObjectStore
from server.config import Settings


@dataclass(frozen=True, kw_only=True)
class Services:
    settings: Settings
    db: Database
    store: ObjectStore
    keystore: KeyStore
    entitlements: EntitlementStore
    tokens: TokenSigner
    catalog: Catalog                         # SQLite here; a PostgreSQL one satisfies the same Protocol
    creators: CreatorRegistry
    payments: PaymentProcessor
    entitlement_cache: EntitlementCache      # the key path's view of entitlements (<= 5 s stale)
    idempotency: IdempotencyStore            # the catalog API's Idempotency-Keys, shared by every instance
    library: Library                         # what viewers hold, and where they stopped watching

    @classmethod
    def open(cls, settings: Settings) -> Services:
        """Open the database and the object store client (the store itself must be running)."""
        db = open_database(settings.db_path)
        store = ObjectStore(settings.store)
        entitlements = EntitlementStore(db)
        catalog = open_catalog(db, settings)
        return cls(
            settings=settings,
            db=db,
            store=store,
            keystore=KeyStore(db, settings.drm),
            entitlements=entitlements,
            tokens=TokenSigner(settings.drm, public_keys=settings.token_public_keys),
            catalog=catalog,
            creators=CreatorRegistry(db),
            payments=PaymentProcessor(db, entitlements, catalog),
            entitlement_cache=EntitlementCache(entitlements, settings.entitlement_cache_ttl_s),
            idempotency=IdempotencyStore(db, ttl_s=settings.catalog.idempotency_ttl_s),
            library=Library(db),
        )

    def close(self) -> None:
        self.store.close()
        self.db.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


SERVICES = web.AppKey("services", Services)     # where the app keeps them, for every room's handlers


def open_catalog(db: Database, settings: Settings) -> SqliteCatalog:
    """The catalog on `db`, holding episodes to the validator's length bounds (SERIES_*_DURATION_S)."""
    return SqliteCatalog(db, episode_bounds_s=(settings.rules.min_duration_s, settings.rules.max_duration_s))
