from __future__ import annotations

import logging
import pickle
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import uuid4

import pytest

from packager.errors import ObjectMissing, RangeNotSatisfiable, StoreError
from packager.store import ObjectStore, StoreSettings
from server.local.object_store import LocalObjectStore
from tests.support.s3_server import free_port, start_test_store

SECRET = "not-the-right-secret-7f3a"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalObjectStore]:
    server = start_test_store(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


def new_bucket() -> str:
    return f"t-{uuid4().hex[:12]}"


@pytest.fixture
def store(s3: LocalObjectStore) -> Iterator[ObjectStore]:
    with ObjectStore(s3.store_settings(new_bucket())) as store:
        store.ensure_bucket()
        yield store


def retry_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "packager.store.client" and "retrying in" in r.getMessage()]


def test_put_get_round_trip_keeps_headers(store: ObjectStore) -> None:
    data = bytes(range(256)) * 1000
    store.put_bytes("ep1/720p/seg_00001.ts", data, content_type="video/mp2t", cache_control="public, max-age=31536000")

    assert store.get_bytes("ep1/720p/seg_00001.ts") == data
    assert b"".join(store.get_stream("ep1/720p/seg_00001.ts", chunk_size=4096)) == data
    stat = store.stat("ep1/720p/seg_00001.ts")
    assert (stat.size_bytes, stat.content_type, stat.cache_control) == (
        len(data),
        "video/mp2t",
        "public, max-age=31536000",
    )
    assert store.exists("ep1/720p/seg_00001.ts")


def test_get_bytes_reads_one_range(store: ObjectStore) -> None:
    data = bytes(range(256)) * 10
    store.put_bytes("ep1/720p/seg_00000.ts", data)
    assert store.get_bytes("ep1/720p/seg_00000.ts", length=32) == data[:32]
    assert store.get_bytes("ep1/720p/seg_00000.ts", offset=100, length=50) == data[100:150]
    assert store.get_bytes("ep1/720p/seg_00000.ts", offset=2500, length=500) == data[2500:]   # short at the end
    assert store.get_bytes("ep1/720p/seg_00000.ts", offset=2000) == data[2000:]
    for offset, length in ((0, 0), (-1, 10)):
        with pytest.raises(ValueError, match="byte range"):
            store.get_bytes("ep1/720p/seg_00000.ts", offset=offset, length=length)


@pytest.mark.parametrize(("offset", "length"), [(2560, None), (2560, 10), (9999, 1)])
def test_a_range_past_the_end_is_named_as_such(store: ObjectStore, offset: int, length: int | None) -> None:
    store.put_bytes("ep1/720p/seg_00000.ts", bytes(2560))
    with pytest.raises(RangeNotSatisfiable) as raised:
        store.get_bytes("ep1/720p/seg_00000.ts", offset=offset, length=length)
    error = raised.value
    assert (error.code, error.bucket, error.key, error.offset) == (
        "range_not_satisfiable", store.bucket, "ep1/720p/seg_00000.ts", offset)
    assert isinstance(error, StoreError)        # a refused request: HTTP answers stay what they were
    assert f"offset {offset}" in str(error) and "past its end" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy)) == (RangeNotSatisfiable, str(error))
    with pytest.raises(RangeNotSatisfiable):
        next(store.get_stream("ep1/720p/seg_00000.ts", offset=offset, length=length))


def test_put_replaces_an_object(store: ObjectStore) -> None:
    store.put_bytes("ep1/index.m3u8", b"one")
    store.put_bytes("ep1/index.m3u8", b"two", content_type="application/vnd.apple.mpegurl")
    assert store.get_bytes("ep1/index.m3u8") == b"two"


def test_missing_key_raises_object_missing(store: ObjectStore) -> None:
    with pytest.raises(ObjectMissing) as raised:
        store.get_bytes("nope/seg.ts")
    assert (raised.value.bucket, raised.value.key, raised.value.code) == (store.bucket, "nope/seg.ts", "object_missing")
    copy = pickle.loads(pickle.dumps(raised.value))
    assert (type(copy), str(copy)) == (ObjectMissing, str(raised.value))

    with pytest.raises(ObjectMissing):
        next(store.get_stream("nope/seg.ts"))
    with pytest.raises(ObjectMissing):
        store.stat("nope/seg.ts")
    assert not store.exists("nope/seg.ts")


def test_stream_closed_early_releases_the_connection(store: ObjectStore) -> None:
    store.put_bytes("big.ts", b"x" * 300_000)
    stream = store.get_stream("big.ts", chunk_size=1000)
    assert next(stream) == b"x" * 1000
    stream.close()
    assert store.get_bytes("big.ts") == b"x" * 300_000


def test_one_store_serves_many_threads(store: ObjectStore) -> None:
    def round_trip(index: int) -> bytes:
        store.put_bytes(f"seg/{index:03d}.ts", bytes([index]) * 10_000)
        return store.get_bytes(f"seg/{index:03d}.ts")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(round_trip, range(40)))
    assert results == [bytes([index]) * 10_000 for index in range(40)]
    assert len(store.list_keys("seg/")) == 40


def test_list_keys_and_delete_prefix(store: ObjectStore) -> None:
    for key in ("ep1/a.ts", "ep1/720p/b.ts", "ep1/720p/c.ts", "ep10/a.ts", "ep2/a.ts"):
        store.put_bytes(key, b"x")

    assert store.list_keys("ep1/") == ["ep1/720p/b.ts", "ep1/720p/c.ts", "ep1/a.ts"]
    assert store.delete_prefix("ep1/") == 3
    assert store.list_keys("ep1/") == []
    assert store.list_keys("") == ["ep10/a.ts", "ep2/a.ts"]
    assert store.delete_prefix("ep1/") == 0


def test_ensure_bucket_tolerates_concurrent_creation(s3: LocalObjectStore) -> None:
    settings = s3.store_settings(new_bucket())
    stores = [ObjectStore(settings) for _ in range(4)]
    errors: list[BaseException] = []

    def ensure(store: ObjectStore) -> None:
        try:
            store.ensure_bucket()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ensure, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []


def test_missing_bucket_names_the_bucket(s3: LocalObjectStore) -> None:
    bucket = new_bucket()
    with ObjectStore(s3.store_settings(bucket)) as store:
        store.check()  # reachable and authorised; the bucket is created later by ensure_bucket
        with pytest.raises(StoreError, match=f"bucket '{bucket}' does not exist"):
            store.get_bytes("a.ts")


def test_wrong_credentials_are_named_not_retried(s3: LocalObjectStore, caplog: pytest.LogCaptureFixture) -> None:
    settings = StoreSettings(endpoint=s3.endpoint, access_key=s3.settings.access_key, secret_key=SECRET, bucket=new_bucket())
    with ObjectStore(settings) as store:
        with pytest.raises(StoreError) as raised:
            store.check()
        with pytest.raises(StoreError):
            store.put_bytes("a.ts", b"x")

    message = str(raised.value)
    assert "SERIES_S3_ACCESS_KEY / SERIES_S3_SECRET_KEY" in message
    assert s3.endpoint in message
    assert SECRET not in message and SECRET not in repr(raised.value)
    assert retry_warnings(caplog) == []


def test_unreachable_endpoint_fails_after_bounded_retries(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    settings = StoreSettings(endpoint=endpoint, access_key="a", secret_key=SECRET, bucket="t-unreachable")
    started = time.monotonic()
    with ObjectStore(settings, retry_attempts=3, retry_max_wait_s=0.5) as store:
        with pytest.raises(StoreError, match="unreachable") as raised:
            store.check()
    assert time.monotonic() - started < 10  # a bound on the retry policy, not a benchmark
    assert endpoint in str(raised.value) and "after 3 attempts" in str(raised.value)
    assert len(retry_warnings(caplog)) == 2


def test_endpoint_with_a_scheme_is_refused() -> None:
    settings = StoreSettings(endpoint="http://127.0.0.1:8333", access_key="a", secret_key=SECRET, bucket="t-scheme")
    with pytest.raises(StoreError, match="host:port, no scheme"):
        ObjectStore(settings)


def test_repr_hides_the_secret() -> None:
    settings = StoreSettings(endpoint="127.0.0.1:1", access_key="a", secret_key=SECRET, bucket="t-repr")
    store = ObjectStore(settings)
    assert SECRET not in repr(settings) and SECRET not in repr(store)
    store.close()


class FakeS3:
    """Loopback HTTP server answering PUTs from a script of (status, S3 error code, content type), then 200."""

    def __init__(self, script: list[tuple[int, str, str]]) -> None:
        self.script, self.requests = list(script), 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.requests += 1
                if fake.script:
                    status, code, content_type = fake.script.pop(0)
                    body = f"<Error><Code>{code}</Code><Message>scripted</Message></Error>".encode()
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                else:
                    body = b""
                    self.send_response(200)
                    self.send_header("ETag", '"0123456789abcdef"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def store(self, retry_attempts: int = 4) -> ObjectStore:
        settings = StoreSettings(
            endpoint=f"127.0.0.1:{self.server.server_address[1]}",
            access_key="a",
            secret_key=SECRET,
            bucket="t-fake",
            region="us-east-1",  # no GetBucketLocation round trip
        )
        return ObjectStore(settings, retry_attempts=retry_attempts, retry_max_wait_s=0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def make_fake() -> Iterator[type[FakeS3]]:
    fakes: list[FakeS3] = []

    def make(script: list[tuple[int, str, str]]) -> FakeS3:
        fakes.append(FakeS3(script))
        return fakes[-1]

    yield make  # type: ignore[misc]
    for fake in fakes:
        fake.close()


def test_transient_failures_are_retried(make_fake, caplog: pytest.LogCaptureFixture) -> None:
    fake = make_fake([(503, "SlowDown", "application/xml"), (500, "-", "text/html")])
    with fake.store() as store:
        store.put_bytes("a.ts", b"payload")
    assert fake.requests == 3
    assert len(retry_warnings(caplog)) == 2


def test_retries_stop_after_the_configured_attempts(make_fake) -> None:
    fake = make_fake([(500, "InternalError", "application/xml")] * 10)
    with fake.store(retry_attempts=3) as store:
        with pytest.raises(StoreError, match="InternalError.*check its log"):
            store.put_bytes("a.ts", b"payload")
    assert fake.requests == 3


@pytest.mark.parametrize("code", ["AccessDenied", "SignatureDoesNotMatch"])
def test_client_errors_are_not_retried(make_fake, code: str) -> None:
    fake = make_fake([(403, code, "application/xml")])
    with fake.store() as store:
        with pytest.raises(StoreError, match=code):
            store.put_bytes("a.ts", b"payload")
    assert fake.requests == 1
