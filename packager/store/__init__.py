"""The object store: one S3 bucket reached through one minio client (client), the values it answers with
(values), and what minio's errors mean (failures). The only place in the project that imports minio."""

from packager.store.client import ObjectStore
from packager.store.values import (
    MAX_PARTS,
    MIN_PART_BYTES,
    ListedObject,
    ObjectStat,
    OpenMultipart,
    StoredPart,
    StoreSettings,
)

__all__ = ["MAX_PARTS", "MIN_PART_BYTES", "ListedObject", "ObjectStat", "ObjectStore", "OpenMultipart", "StoreSettings",
           "StoredPart"]
