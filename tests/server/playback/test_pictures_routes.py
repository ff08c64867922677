"""Posters, thumbnails, storyboards and captions of a published episode, over real HTTP against the real
object store: what ingest produced (the job report), public posters at every width and not black on an
input whose first second is, thumbnails within one frame interval of t, the storyboard covering the
episode with every tile inside its sheet, subtitle renditions in the master with the token in every URI,
and a stranger refused all of the gated parts."""

from __future__ import annotations

import itertools
import re

import m3u8
import numpy as np
import pytest

from pipeline.pictures.still_image import decode_image
from tests.support.pictures import (
    BUYER,
    CREATOR,
    DURATION_S,
    EPISODE_PATH,
    FPS,
    SERIES,
    STRANGER,
    publish_world,
    shown_index,
    source_frames,
)

CUE = re.compile(r"^(\S+) --> (\S+)")
XYWH = re.compile(r"^(\S+?)\?token=[^#]+#xywh=(\d+),(\d+),(\d+),(\d+)$")


@pytest.fixture(scope="module")
def world(tmp_path_factory, s3_store, media_dir):
    return publish_world(tmp_path_factory.mktemp("pictures"), s3_store, media_dir)


def seconds(stamp: str) -> float:
    hours, minutes, rest = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def test_the_job_report_lists_the_pictures_and_captions_made(world):
    pictures, captions = world.report["pictures"], world.report["captions"]
    assert pictures["poster"]["chosen_by"] == "score" and pictures["poster"]["time_s"] >= 1.0
    assert {image["format"] for image in pictures["poster"]["images"]} == {"jpeg", "webp"}
    assert pictures["storyboard"]["tiles"] >= DURATION_S / pictures["storyboard"]["interval_s"]
    assert [(t["language"], t["source"], t["cues"]) for t in captions["tracks"]] == [("en", "embedded", 3)]


async def test_posters_are_public_at_every_width_and_not_black(world, served):
    client, _ = await served(world.env)
    for image in world.report["pictures"]["poster"]["images"]:
        extension = "jpg" if image["format"] == "jpeg" else "webp"
        response = await client.get(f"{EPISODE_PATH}/poster.{extension}?width={image['width']}")
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == f"image/{image['format']}"
        assert response.headers["Cache-Control"].startswith("public")
        picture = decode_image(await response.read())
        assert picture.shape[:2] == (image["height"], image["width"])
        assert picture.mean() > 40 and picture.std() > 20        # black is ~0 mean, ~0 spread


async def test_a_thumbnail_shows_the_frame_within_one_frame_interval_of_t(world, served):
    client, services = await served(world.env)
    frames = source_frames(world.source)
    token = services.tokens.mint(BUYER, SERIES)
    for at_s in (0.0, 2.35, 5.99, 6.0, 11.87):
        response = await client.get(f"/thumbnails/{SERIES}/1.jpg?time={at_s}&width=150&token={token}")
        assert response.status == 200, await response.text()
        data = await response.read()
        assert decode_image(data).shape[1] == 160                   # snapped up to a configured width
        assert abs(shown_index(data, frames) - at_s * FPS) <= 1.0, at_s
        again = await client.get(f"/thumbnails/{SERIES}/1.jpg?time={at_s}&width=150&token={token}")
        assert await again.read() == data and again.headers["Server-Timing"].startswith("cache")


async def test_thumbnail_times_and_widths_out_of_range_are_refused_with_a_code(world, served):
    client, services = await served(world.env)
    token = services.tokens.mint(BUYER, SERIES)
    for query, code in ((f"time={DURATION_S}", "picture_time_out_of_range"), ("time=-1", "picture_time_out_of_range"),
                        ("time=1&width=5000", "picture_width_out_of_range"), ("time=nan", "invalid_field"),
                        ("width=320", "invalid_field")):
        response = await client.get(f"/thumbnails/{SERIES}/1.jpg?{query}&token={token}")
        assert response.status == 422, query
        assert (await response.json())["code"] == code


async def test_the_storyboard_covers_the_episode_and_every_tile_lies_inside_its_sheet(world, served):
    client, services = await served(world.env)
    token = services.tokens.mint(BUYER, SERIES)
    response = await client.get(f"{EPISODE_PATH}/storyboard.vtt?token={token}")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/vtt")
    lines = (await response.text()).splitlines()
    assert lines[0] == "WEBVTT"
    cues, sheets = [], {}
    for index, line in enumerate(lines):
        match = CUE.match(line)
        if match:
            uri = XYWH.match(lines[index + 1])
            assert uri, lines[index + 1]
            cues.append((seconds(match.group(1)), seconds(match.group(2)), uri.group(1),
                         *map(int, uri.groups()[1:])))
    assert cues[0][0] == 0 and abs(cues[-1][1] - DURATION_S) < 1 / FPS
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cues))       # no gap, no overlap
    for _, _, sheet, x, y, w, h in cues:
        if sheet not in sheets:
            fetched = await client.get(f"{EPISODE_PATH}/{sheet}?token={token}")
            assert fetched.status == 200, await fetched.text()
            sheets[sheet] = decode_image(await fetched.read()).shape
        height, width = sheets[sheet][:2]
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height


async def test_the_master_lists_the_subtitle_rendition_with_the_token_in_every_uri(world, served):
    client, services = await served(world.env)
    token = services.tokens.mint(BUYER, SERIES)
    master = m3u8.loads(await (await client.get(f"{EPISODE_PATH}/master.m3u8?token={token}")).text())
    subtitles = [media for media in master.media if media.type == "SUBTITLES"]
    assert [(s.language, s.name, s.autoselect, s.forced) for s in subtitles] == [("en", "English", "YES", "NO")]
    assert all(variant.stream_info.subtitles == subtitles[0].group_id for variant in master.playlists)
    assert subtitles[0].uri.endswith(f"?token={token}")
    playlist = await client.get(f"{EPISODE_PATH}/{subtitles[0].uri}")
    assert playlist.status == 200
    segments = m3u8.loads(await playlist.text()).segments
    assert segments and all(segment.uri.endswith(f"?token={token}") for segment in segments)
    directory = subtitles[0].uri.split("?")[0].rsplit("/", 1)[0]
    first = await client.get(f"{EPISODE_PATH}/{directory}/{segments[0].uri}")
    assert first.status == 200 and first.headers["Content-Type"].startswith("text/vtt")
    body = await first.text()
    assert body.startswith("WEBVTT") and "X-TIMESTAMP-MAP=LOCAL:00:00:00.000,MPEGTS:" in body and "Hello there" in body
    image_streams = [line for line in (await (await client.get(f"{EPISODE_PATH}/master.m3u8?token={token}")).text())
                     .splitlines() if line.startswith("#EXT-X-IMAGE-STREAM-INF")]
    assert image_streams and f'?token={token}"' in image_streams[0]


async def test_a_stranger_is_refused_thumbnails_storyboards_and_captions(world, served):
    client, services = await served(world.env)
    buyer, stranger = services.tokens.mint(BUYER, SERIES), services.tokens.mint(STRANGER, SERIES)
    master = m3u8.loads(await (await client.get(f"{EPISODE_PATH}/master.m3u8?token={buyer}")).text())
    caption_playlist = next(media.uri for media in master.media if media.type == "SUBTITLES").split("?")[0]
    version = caption_playlist.split("/")[0]
    gated = [f"/thumbnails/{SERIES}/1.jpg?time=3", f"{EPISODE_PATH}/storyboard.vtt?",
             f"{EPISODE_PATH}/{version}/storyboard/storyboard.vtt?", f"{EPISODE_PATH}/{version}/storyboard/sheet_000.jpg?",
             f"{EPISODE_PATH}/{version}/storyboard/images.m3u8?", f"{EPISODE_PATH}/{caption_playlist}?",
             f"{EPISODE_PATH}/{version}/captions/en/seg_00000.vtt?", f"{EPISODE_PATH}/{version}/captions/en/captions.vtt?"]
    for url in gated:
        separator = "" if url.endswith("?") else "&"
        assert (await client.get(f"{url}{separator}token={buyer}")).status == 200, url
        refused = await client.get(f"{url}{separator}token={stranger}")
        assert refused.status == 403, url
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        assert (await refused.json())["code"] == "not_entitled"
        assert (await client.get(url.rstrip("?"))).status == 401, url
    # posters stay public
    assert (await client.get(f"{EPISODE_PATH}/poster.webp")).status == 200


async def test_the_catalog_shows_the_poster_and_storyboard_urls(world, served):
    client, services = await served(world.env)
    episode = await (await client.get(EPISODE_PATH)).json()
    assert episode["poster_url"] == f"{EPISODE_PATH}/poster.jpg"
    assert episode["storyboard_url"] == f"{EPISODE_PATH}/storyboard.vtt"
    series = await (await client.get(f"/v1/series/{SERIES}")).json()
    assert series["cover"] == {"episode_id": "1", "poster_url": f"{EPISODE_PATH}/poster.jpg"}    # the first published
    assert (await client.get(episode["poster_url"])).status == 200
    account = services.tokens.mint_account(BUYER, "viewer")
    playback = await (await client.post(f"{EPISODE_PATH}/playback",
                                        headers={"Authorization": f"Bearer {account}"})).json()
    assert (await client.get(playback["storyboard_url"])).status == 200
    assert np.ndim(decode_image(await (await client.get(episode["poster_url"])).read())) == 3


async def test_an_unpublished_or_deleted_episodes_poster_is_not_shown(world, served):
    client, services = await served(world.env)
    operator = {"Authorization": f"Bearer {services.tokens.mint_account(CREATOR, 'creator')}"}
    assert (await client.post(f"{EPISODE_PATH}/unpublish", headers=operator)).status == 200
    refused = await client.get(f"{EPISODE_PATH}/poster.jpg")
    assert (refused.status, (await refused.json())["code"]) == (403, "episode_unpublished")
    assert (await client.post(f"{EPISODE_PATH}/publish", headers=operator)).status == 200
    assert (await client.get(f"{EPISODE_PATH}/poster.jpg")).status == 200
