"""A TCP proxy on loopback between a browser and the service, standing in for a phone's network: what the
browser sends goes at an upload speed of our choosing, and the network drops on demand (every open
connection reset mid-request, new ones refused) until it is restored. Chromium's own network emulation
cannot do the second: going "offline" there leaves a request already under way untouched."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Self

READ_BYTES = 4096
RECEIVE_BUFFER_BYTES = 8192


class FlakyProxy:
    """`async with FlakyProxy(port, upload_bytes_per_s=...) as proxy:` then browse proxy.base_url."""

    def __init__(self, target_port: int, *, upload_bytes_per_s: int) -> None:
        self._target_port = target_port
        self._rate = upload_bytes_per_s
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.is_down = False
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        # a small receive buffer, set before listening so the window it advertises is small from the first
        # byte: the browser's upload progress then follows what really left it, not what its kernel took
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        listener.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._connect, sock=listener)
        self.port = listener.getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.drop()
        self._server.close()
        await self._server.wait_closed()

    def drop(self) -> None:
        """The network goes: every connection is reset (no goodbye), and new ones are refused."""
        self.is_down = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def restore(self) -> None:
        self.is_down = False

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_down:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, upstream_writer))
        await asyncio.gather(self._pipe(reader, upstream_writer, throttled=True),
                             self._pipe(upstream_reader, writer, throttled=False))
        self._open.difference_update((writer, upstream_writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, throttled: bool) -> None:
        try:
            while data := await reader.read(READ_BYTES):
                writer.write(data)
                await writer.drain()
                if throttled:
                    await asyncio.sleep(len(data) / self._rate)
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
