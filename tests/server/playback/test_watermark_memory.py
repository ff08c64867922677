"""The playback room's memory of recorded watermark sessions: concurrent first fetches share one write, a
failed write is not remembered (the next fetch writes again), and a playlist's variants follow the bits."""

from __future__ import annotations

import asyncio

import pytest

from drm.errors import DatabaseUnavailable
from server.playback.watermark import RecordedSessions, choose_variants

PLAYLIST = "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"/k?token=t\"\n#EXTINF:2.0,\nseg_00000.ts\n#EXTINF:2.0,\n" \
           "seg_00001.ts\n#EXTINF:1.5,\n../../v2/360p/seg_00002.ts\n#EXT-X-ENDLIST\n"


async def test_concurrent_first_fetches_share_one_write():
    recorded, writes = RecordedSessions(100), []

    async def write():
        writes.append(1)
        await asyncio.sleep(0.05)

    await asyncio.gather(*(recorded.ensure(("s", "e", 1, "sid"), write) for _ in range(5)))
    await recorded.ensure(("s", "e", 1, "sid"), write)
    assert len(writes) == 1
    await recorded.ensure(("s", "e", 2, "sid"), write)       # another version: new evidence
    assert len(writes) == 2


async def test_a_failed_write_fails_every_waiter_and_is_tried_again():
    recorded, attempts = RecordedSessions(100), []

    async def failing():
        attempts.append(1)
        await asyncio.sleep(0.01)
        raise DatabaseUnavailable("the database is down")

    results = await asyncio.gather(*(recorded.ensure("key", failing) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, DatabaseUnavailable) for result in results) and len(attempts) == 1

    async def working():
        attempts.append(2)

    await recorded.ensure("key", working)
    assert attempts == [1, 2]


def test_variants_follow_the_bits_wherever_the_uri_points():
    chosen = choose_variants(PLAYLIST, (1, 0, 1))
    assert [line for line in chosen.splitlines() if not line.startswith("#")] == [
        "seg_00000.b.ts", "seg_00001.ts", "../../v2/360p/seg_00002.b.ts"]
    assert chosen.replace(".b.ts", ".ts") == PLAYLIST
    with pytest.raises(ValueError, match="3 segments"):
        choose_variants(PLAYLIST, (1, 0))
