"""stream_object() and the store stream it proxies: the connection is released however the answer ends."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from server.config import HttpSettings
from server.edge.security import EDGE_HEADERS, EdgeHeaders
from server.playback.segments import stream_object


@dataclass
class _Stat:
    size_bytes: int


class SlowStore:
    """A store whose second chunk blocks until released, and which records when its stream is closed."""

    def __init__(self) -> None:
        self.reading_second = threading.Event()
        self.release = threading.Event()
        self.closed = threading.Event()

    def stat(self, key: str) -> _Stat:
        return _Stat(size_bytes=8)

    def get_stream(self, key: str, *, offset: int = 0, length: int | None = None):
        try:
            yield b"1234"
            self.reading_second.set()
            self.release.wait(10)
            yield b"5678"
        finally:
            self.closed.set()        # where the real store closes the response and releases its connection


async def test_a_cancelled_answer_closes_the_stream_once_the_chunk_being_read_arrives():
    """A server shutting down cancels handlers mid-read: closing the generator then, under the thread that
    reads it, fails ("generator already executing") and leaves the store's connection to the garbage
    collector."""
    app = web.Application()
    app[EDGE_HEADERS] = EdgeHeaders(HttpSettings())
    store = SlowStore()
    request = make_mocked_request("GET", "/seg_00000.ts", app=app)
    answer = asyncio.create_task(stream_object(request, store, "k", content_type="video/mp2t", headers={}))
    assert await asyncio.to_thread(store.reading_second.wait, 10)
    answer.cancel()
    done, _ = await asyncio.wait([answer], timeout=10)
    assert done and answer.cancelled()              # cancelled, not a ValueError from a concurrent close
    assert not store.closed.is_set()                # the reading thread still owns the generator
    store.release.set()
    assert await asyncio.to_thread(store.closed.wait, 10)
