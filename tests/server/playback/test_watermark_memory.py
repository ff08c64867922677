"""The playback room's memory of recorded watermark sessions: concurrent first fetches share one write, a
failed write is not remembered (the next fetch writes again), and a playlist's variants follow the bits."""

from __future__ import annotations

import asyncio

import pytest

from drm.errors import DatabaseUnavailable
from packager.publishing.watermark_variants import variant_uri
from server.playback.watermark import RecordedSessions, choose_variants

KEY = bytes(range(16))
A = [variant_uri(name, KEY, "a") for name in ("seg_00000.ts", "seg_00001.ts", "../../v2/360p/seg_00002.ts")]
PLAYLIST = (f'#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="/k?token=t"\n#EXTINF:2.0,\n{A[0]}\n#EXTINF:2.0,\n{A[1]}\n'
            f"#EXTINF:1.5,\n{A[2]}\n#EXT-X-ENDLIST\n")
I_FRAMES = (f'#EXTM3U\n#EXT-X-I-FRAMES-ONLY\n#EXT-X-KEY:METHOD=AES-128,URI="/k",IV=0x00\n#EXTINF:2.0,\n'
            f"#EXT-X-BYTERANGE:4000@0\n{A[0]}\n#EXTINF:2.0,\n#EXT-X-BYTERANGE:5008@0\n{A[1]}\n#EXTINF:1.5,\n"
            f"#EXT-X-BYTERANGE:3008@0\n{A[2]}\n#EXT-X-ENDLIST\n")


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


def uris(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_variants_follow_the_bits_wherever_the_uri_points():
    chosen = choose_variants(PLAYLIST, (1, 0, 1), KEY)
    assert uris(chosen) == [variant_uri("seg_00000.ts", KEY, "b"), A[1], variant_uri("../../v2/360p/seg_00002.ts",
                                                                                      KEY, "b")]
    assert uris(chosen)[2].startswith("../../v2/360p/seg_00002.") and chosen != PLAYLIST
    assert choose_variants(PLAYLIST, (0, 0, 0), KEY) == PLAYLIST
    lines = chosen.splitlines()
    assert [line for line in lines if line.startswith("#")] == [line for line in PLAYLIST.splitlines()
                                                                if line.startswith("#")]
    with pytest.raises(ValueError, match="3 segments"):
        choose_variants(PLAYLIST, (1, 0), KEY)


def test_another_key_names_other_variants():
    assert uris(choose_variants(PLAYLIST, (1, 1, 1), bytes(16))) != uris(choose_variants(PLAYLIST, (1, 1, 1), KEY))


def test_an_i_frame_playlist_takes_each_b_variants_own_range():
    chosen = choose_variants(I_FRAMES, (0, 1, 1), KEY, (4016, 4992, 3104))
    assert uris(chosen) == [A[0], variant_uri(A[1], KEY, "b"), variant_uri(A[2], KEY, "b")]
    assert [line for line in chosen.splitlines() if line.startswith("#EXT-X-BYTERANGE")] == [
        "#EXT-X-BYTERANGE:4000@0", "#EXT-X-BYTERANGE:4992@0", "#EXT-X-BYTERANGE:3104@0"]
    with pytest.raises(ValueError, match="B I-frame ranges"):
        choose_variants(I_FRAMES, (0, 1, 1), KEY, (4016,))
    with pytest.raises(ValueError, match="no EXT-X-BYTERANGE"):
        choose_variants(PLAYLIST, (1, 0, 0), KEY, (1, 2, 3))
