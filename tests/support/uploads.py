"""Helpers for resumable-upload (tus) tests: a service with the uploads bucket ready, tus headers, and the
uploads bucket's objects and open multipart uploads as a test sees them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from dataclasses import replace

from packager.store import ObjectStore
from server.config import Settings
from server.ingest.resumable import UPLOADS_PREFIX
from tests.support.jobs import ingest_settings

TUS = {"Tus-Resumable": "1.0.0"}
PART_BYTES = 5 * 1024 * 1024        # the smallest part S3 takes: the tail logic is exercised with small files


def upload_settings(data_dir, s3_store, *, series: tuple[str, ...] = ("s-tus",), **overrides: str) -> Settings:
    overrides.setdefault("SERIES_UPLOADS_BUCKET", f"u-{uuid.uuid4().hex[:12]}")
    overrides.setdefault("SERIES_UPLOAD_PART_BYTES", str(PART_BYTES))
    return ingest_settings(data_dir, s3_store, series=series, **overrides)


def uploads_bucket(settings: Settings) -> ObjectStore:
    return ObjectStore(replace(settings.store, bucket=settings.jobs.uploads_bucket))


def metadata(**values: str) -> str:
    """An Upload-Metadata header: each value base64'd."""
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def creation_headers(auth: dict, length: int, **values: str) -> dict[str, str]:
    return {**auth, **TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(**values)}


def patch_headers(auth: dict, offset: int, **extra: str) -> dict[str, str]:
    return {**auth, **TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream", **extra}


def stored_traces(bucket: ObjectStore, upload_id: str | None = None) -> tuple[list[str], list[str]]:
    """(object keys, open multipart uploads' keys) under tus/ (or one upload's prefix)."""
    prefix = UPLOADS_PREFIX + (f"{upload_id}/" if upload_id else "")
    return bucket.list_keys(prefix), [item.key for item in bucket.list_multipart(prefix)]


async def cut_off_patch(host: str, port: int, path: str, headers: dict[str, str], offset: int, chunk: bytes, *,
                        sent_bytes: int) -> None:
    """A PATCH whose connection dies after `sent_bytes` of `chunk`: the headers and part of the body on a raw
    socket, then a reset, as a phone losing its network mid-chunk."""
    reader, writer = await asyncio.open_connection(host, port)
    lines = [f"PATCH {path} HTTP/1.1", f"Host: {host}:{port}", "Tus-Resumable: 1.0.0", f"Upload-Offset: {offset}",
             "Content-Type: application/offset+octet-stream", f"Content-Length: {len(chunk)}",
             *(f"{name}: {value}" for name, value in headers.items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + chunk[:sent_bytes])
    await writer.drain()
    await asyncio.sleep(0.5)                            # the server has read what was sent
    writer.transport.abort()                            # RST, no goodbye
