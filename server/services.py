"""Services: the long-lived objects one process needs, built from Settings in one place."""

from __future__ import annotations

from dataclasses import dataclass

from drm.database import Database
from drm.entitlements import EntitlementStore
from drm.keystore import KeyStore
from drm.tokens import TokenSigner
from packager.store import ObjectStore
from server.settings import Settings


@dataclass(frozen=True, kw_only=True)
class Services:
    settings: Settings
    db: Database
    store: ObjectStore
    keystore: KeyStore
    entitlements: EntitlementStore
    tokens: TokenSigner

    @classmethod
    def open(cls, settings: Settings) -> Services:
        """Open the database and the object store client (the store itself must be running)."""
        db = Database.open(settings.db_path)
        store = ObjectStore(settings.store)
        return cls(
            settings=settings,
            db=db,
            store=store,
            keystore=KeyStore(db, settings.drm),
            entitlements=EntitlementStore(db),
            tokens=TokenSigner(settings.drm),
        )

    def close(self) -> None:
        self.store.close()
        self.db.close()
