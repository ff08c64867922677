"""The creator's captions and poster API over real HTTP: each change a new version published without
re-transcoding, playback of the version being watched never interrupted, refusals with stable codes
that leave the live version untouched."""

from __future__ import annotations

import json

import m3u8
import pytest

from packager.publishing.versions import EpisodeLocation, read_pointer
from pipeline.pictures.still_image import decode_image
from tests.support.pictures import BUYER, CREATOR, EPISODE, EPISODE_PATH, SERIES, publish_world

FRENCH = ("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nBonjour\n\n"
          "00:00:04.000 --> 00:00:06.000\nLe nœud de chaise\n").encode()
SRT_LATIN1 = "1\n00:00:01,000 --> 00:00:02,500\nÜber den Knoten\n\n".encode("cp1252")
LOCATION = EpisodeLocation(series_id=SERIES, episode_id=EPISODE)


@pytest.fixture
def world(tmp_path, s3_store, media_dir):
    return publish_world(tmp_path, s3_store, media_dir)


def creator(services, subject: str = CREATOR) -> dict[str, str]:
    return {"Authorization": f"Bearer {services.tokens.mint_account(subject, 'creator')}"}


async def played_through(client, token: str, media_uri: str) -> int:
    """Fetch every segment and key of a media playlist as a player would; how many segments."""
    playlist = m3u8.loads(await (await client.get(f"{EPISODE_PATH}/{media_uri}")).text())
    base = f"{EPISODE_PATH}/{media_uri.split('?')[0].rsplit('/', 1)[0]}"
    for segment in playlist.segments:
        response = await client.get(f"{base}/{segment.uri}")
        assert response.status == 200, (segment.uri, await response.text())
        assert (await client.get(segment.key.uri)).status == 200
    return len(playlist.segments)


async def test_adding_captions_publishes_a_new_version_and_never_interrupts_the_one_being_watched(world, served):
    client, services = await served(world.env)
    token = services.tokens.mint(BUYER, SERIES)
    watched = m3u8.loads(await (await client.get(f"{EPISODE_PATH}/master.m3u8?token={token}")).text())
    watched_media = watched.playlists[0].uri
    assert watched_media.startswith("v1/")

    added = await client.post(f"{EPISODE_PATH}/captions?language=fr&name=Français&default=true",
                              data=FRENCH, headers={**creator(services), "Content-Type": "text/vtt"})
    assert added.status == 200, await added.text()
    body = await added.json()
    assert body["version"] == 2 and body["media_version"] == 1
    assert {(t["language"], t["default"]) for t in body["captions"]} == {("fr", True), ("en", False)}

    # the viewer who loaded v1 plays on: its playlists, segments and keys
    assert await played_through(client, token, watched_media) >= 2
    # a viewer starting now gets v2, the French track listed, the same segments (v1's) playing
    master = m3u8.loads(await (await client.get(f"{EPISODE_PATH}/master.m3u8?token={token}")).text())
    languages = {(m.language, m.default) for m in master.media if m.type == "SUBTITLES"}
    assert languages == {("fr", "YES"), ("en", "NO")}
    assert master.playlists[0].uri.startswith("v2/")
    await played_through(client, token, master.playlists[0].uri)
    french = next(m.uri for m in master.media if m.language == "fr")
    playlist = m3u8.loads(await (await client.get(f"{EPISODE_PATH}/{french}")).text())
    first = await client.get(f"{EPISODE_PATH}/{french.split('?')[0].rsplit('/', 1)[0]}/{playlist.segments[0].uri}")
    assert "Bonjour" in await first.text()

    # another change: v1 is no longer the previous version, but still the media version both play
    await client.delete(f"{EPISODE_PATH}/captions/en", headers=creator(services))
    assert await played_through(client, token, master.playlists[0].uri) >= 2
    listed = await (await client.get(f"{EPISODE_PATH}/captions", headers=creator(services))).json()
    assert [t["track_id"] for t in listed["captions"]] == ["fr"] and listed["version"] == 3


async def test_a_latin1_srt_is_converted_for_a_language_written_in_it(world, served):
    client, services = await served(world.env)
    response = await client.post(f"{EPISODE_PATH}/captions?language=de", data=SRT_LATIN1, headers=creator(services))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert any("1252" in note for note in body["notes"])
    assert {t["name"] for t in body["captions"]} >= {"Deutsch"}


@pytest.mark.parametrize("data, query, code", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "language=fr", "caption_binary"),
    (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nok\n\n00:00:30.000 --> 00:00:31.000\nlate\n", "language=fr",
     "caption_past_end"),
    (b"WEBVTT\n\n00:00:05.000 --> 00:00:06.000\nb\n\n00:00:01.000 --> 00:00:02.000\na\n", "language=fr",
     "caption_out_of_order"),
    ("1\n00:00:01,000 --> 00:00:02,000\nZażółć gęślą jaźń\n".encode("cp1250"), "language=pl", "caption_not_utf8"),
    (FRENCH, "language=no-such-tag!", "caption_language"),
])
async def test_bad_captions_are_refused_with_a_code_and_the_live_version_untouched(world, served, data, query, code):
    client, services = await served(world.env)
    before = read_pointer(services.store, LOCATION)
    response = await client.post(f"{EPISODE_PATH}/captions?{query}", data=data, headers=creator(services))
    assert response.status == 422, await response.text()
    problem = await response.json()
    assert problem["code"] == code and problem["issues"][0]["code"] == code and problem["issues"][0]["how_to_fix"]
    assert read_pointer(services.store, LOCATION) == before


async def test_the_poster_is_changed_at_a_time_without_re_transcoding(world, served):
    client, services = await served(world.env)
    old = await (await client.get(f"{EPISODE_PATH}/poster.jpg?width=320")).read()
    changed = await client.put(f"{EPISODE_PATH}/poster", data=json.dumps({"time_s": 7.3}),
                               headers={**creator(services), "Content-Type": "application/json"})
    assert changed.status == 200, await changed.text()
    body = await changed.json()
    assert body["poster"]["chosen_by"] == "creator" and abs(body["poster"]["time_s"] - 7.3) <= 0.1
    assert body["media_version"] == 1 and body["version"] == 2
    new = await (await client.get(f"{EPISODE_PATH}/poster.jpg?width=320")).read()
    assert new != old and decode_image(new).shape[1] == 320
    # the captions stayed
    assert [t["language"] for t in body["captions"]] == ["en"]


async def test_poster_times_outside_the_episode_and_strangers_are_refused(world, served):
    client, services = await served(world.env)
    before = read_pointer(services.store, LOCATION)
    for time_s, status, code in ((12.0, 422, "picture_time_out_of_range"), (-1, 422, "picture_time_out_of_range"),
                                 ("soon", 422, "invalid_field")):
        response = await client.put(f"{EPISODE_PATH}/poster", data=json.dumps({"time_s": time_s}),
                                    headers={**creator(services), "Content-Type": "application/json"})
        assert (response.status, (await response.json())["code"]) == (status, code)
    other = await client.put(f"{EPISODE_PATH}/poster", data=json.dumps({"time_s": 2}),
                             headers={**creator(services, "creator-2"), "Content-Type": "application/json"})
    assert other.status == 403
    assert (await client.delete(f"{EPISODE_PATH}/captions/fr", headers=creator(services))).status == 404
    unknown = await client.post("/v1/series/pics/episodes/9/captions?language=fr", data=FRENCH,
                                headers=creator(services))
    assert unknown.status == 404
    assert read_pointer(services.store, LOCATION) == before
