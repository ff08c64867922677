"""stream_object(): proxy an object from the store to the player chunk by chunk, honouring Range.

Segments are never read whole into memory, and players fetch I-frame byte ranges with Range
requests (RFC 9110 §14), so a 206 with Content-Range is part of playing the I-frame playlists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web

from packager.containers.segment_container import FMP4_SEGMENT_TYPE, INIT_SEGMENT_TYPE, TS_SEGMENT_TYPE
from packager.store import ObjectStore
from server.edge.security import EDGE_HEADERS

# the objects of a rendition players fetch by URI besides playlists: TS or fMP4 segments, the fMP4 init
SEGMENT_NAME = r"{segment:seg_\d{5}\.(?:ts|m4s)|init\.mp4}"
_CONTENT_TYPES = {".ts": TS_SEGMENT_TYPE, ".m4s": FMP4_SEGMENT_TYPE, ".mp4": INIT_SEGMENT_TYPE}


def content_type_of(name: str) -> str:
    """The Content-Type of a segment object by its name (Apple HLS authoring 10.4)."""
    return _CONTENT_TYPES[name[name.rfind("."):]]


def _wanted(request: web.Request, size: int) -> tuple[int, int] | None:
    """[start, stop) of the requested range; the whole object when there is no usable Range header;
    None when the range cannot be satisfied."""
    try:
        requested = request.http_range
    except ValueError:           # a malformed Range may be ignored (RFC 9110 §14.2)
        return 0, size
    start, stop = requested.start, requested.stop
    if start is None and stop is None:
        return 0, size
    if start is not None and start < 0:        # suffix range "bytes=-N": the last N bytes
        start, stop = max(0, size + start), size
    start = start or 0
    stop = size if stop is None else min(stop, size)
    if start >= stop:
        return None
    return start, stop


async def stream_object(request: web.Request, store: ObjectStore, key: str, *, content_type: str,
                        headers: Mapping[str, str]) -> web.StreamResponse:
    """Answer with the object `key` (200) or the requested part of it (206), or 416.

    Raises ObjectMissing / StoreError before anything is sent, so they become problem responses.
    The edge's security and CORS headers are added here: a streamed answer sends its headers before
    the edge middleware sees it again.
    """
    headers = {**headers, **dict(request.app[EDGE_HEADERS].for_request(request))}
    size = (await asyncio.to_thread(store.stat, key)).size_bytes
    wanted = _wanted(request, size)
    if wanted is None:
        return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, stop = wanted
    is_partial = (start, stop) != (0, size)
    response = web.StreamResponse(status=206 if is_partial else 200, headers={
        **headers, "Accept-Ranges": "bytes", "Content-Type": content_type, "Content-Length": str(stop - start)})
    if is_partial:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    if request.method == "HEAD":
        # a streamed response does not drop its body for HEAD by itself: writing one desyncs keep-alive
        await response.prepare(request)
        await response.write_eof()
        return response
    chunks = store.get_stream(key, offset=start, length=stop - start)
    reading: asyncio.Future | None = None
    try:
        reading = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
        chunk = await asyncio.shield(reading)      # opening errors surface before the headers
        await response.prepare(request)
        while chunk is not None:
            await response.write(chunk)
            reading = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
            chunk = await asyncio.shield(reading)
        await response.write_eof()
    finally:
        await _close_after(reading, chunks)
    return response


async def _close_after(reading: asyncio.Future | None, chunks) -> None:
    """Close the store stream (releasing its connection) once no thread is inside it. A handler cancelled
    while a chunk is being read (a server shutting down) must not close the generator under that thread:
    Python refuses ("generator already executing") and the connection would be left to the garbage
    collector."""
    if reading is not None and not reading.done():
        def close_when_read(done: asyncio.Future) -> None:
            if not done.cancelled():
                done.exception()          # retrieved: the reader's own error no longer matters
            asyncio.get_running_loop().run_in_executor(None, chunks.close)
        reading.add_done_callback(close_when_read)
        return
    await asyncio.to_thread(chunks.close)
