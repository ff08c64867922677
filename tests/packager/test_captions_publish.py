"""publish() with captions, a poster and a storyboard into a real S3 store: subtitle renditions aligned
to the video segments and timed by the video's own first PTS, every playlist conforming, and caption
tracks that cannot share a group refused before anything is written."""

from __future__ import annotations

import io
import re
from fractions import Fraction

import av
import m3u8
import pytest

from packager.errors import CaptionTracksConflict
from packager.publishing.publish import EpisodeLocation, publish
from packager.publishing.version_manifest import read_manifest
from pipeline.captions.tracks import read_captions
from pipeline.encode.fmp4 import SegmentFormat
from pipeline.encode.ladder import LadderSettings, plan_ladder
from pipeline.encode.playback import decode_segment
from pipeline.encode.transcode import transcode
from pipeline.pictures.sampler import PictureSampler
from pipeline.pictures.still_image import decode_image
from tests.pipeline.test_pictures import check_storyboard_vtt
from tests.support.keys import RandomKeys, key_uri
from tests.support.media import clip

LOCATION = EpisodeLocation(series_id="s1", episode_id="1")
EN = b"WEBVTT\n\n00:00:01.000 --> 00:00:07.000\nAcross the cut\n\n00:00:08.000 --> 00:00:09.000\nSecond\n"
FR = b"1\n00:00:02,000 --> 00:00:03,000\nBonjour\n"


@pytest.fixture(scope="module", params=[SegmentFormat.TS, SegmentFormat.FMP4], ids=str)
def pictured(request, media_dir, tmp_path_factory):
    """A 12 s 640x360 clip (first second black) in two rungs, with its pictures sampled."""
    source = clip(media_dir, "black-start.mp4", duration_s=12, width=640, height=360, fps=25, black_until_s=1.0)
    ladder = LadderSettings(max_renditions=2, preset="superfast")
    sampler = PictureSampler(expected_duration_s=12.0)
    encoded = transcode(source, plan_ladder(640, 360, ladder), tmp_path_factory.mktemp("pictured"), ladder,
                        segment_format=request.param, frame_observer=sampler)
    return encoded, sampler.finish(encoded.duration_s)


def tracks(duration_s: float):
    english = read_captions(EN, language="en", duration_s=duration_s, is_default=True)
    french = read_captions(FR, language="fr", duration_s=duration_s)
    assert english.is_acceptable and french.is_acceptable
    return [english.track, french.track]


def test_a_master_with_subtitles_and_a_storyboard_is_published_and_conforms(store, pictured):
    encoded, pictures = pictured
    # publish() runs the conformance check and the self-check: a violation would raise VerificationFailed
    published = publish(encoded, store, RandomKeys(), LOCATION, key_uri=key_uri, decode_segment=decode_segment,
                        captions=tracks(float(encoded.duration_s)), poster=pictures.poster,
                        storyboard=pictures.storyboard)
    prefix = LOCATION.version_prefix(published.version)
    master = m3u8.loads(store.get_bytes(f"{prefix}/master.m3u8").decode())
    subtitles = [(m.language, m.name, m.default, m.autoselect, m.forced, m.group_id) for m in master.media]
    assert subtitles == [("en", "English", "YES", "YES", "NO", "subs"), ("fr", "Français", "NO", "YES", "NO", "subs")]
    assert [v.stream_info.subtitles for v in master.playlists] == ["subs", "subs"]
    video = m3u8.loads(store.get_bytes(f"{prefix}/{master.playlists[0].uri}").decode())
    english = m3u8.loads(store.get_bytes(f"{prefix}/captions/en/index.m3u8").decode())
    assert [s.duration for s in english.segments] == [s.duration for s in video.segments]
    assert all(s.key is None for s in english.segments)
    texts = [store.get_bytes(f"{prefix}/captions/en/{s.uri}").decode() for s in english.segments]
    # the cue across the 6 s cut is in both segments, with its full times (RFC 8216 §3.5)
    assert "00:00:01.000 --> 00:00:07.000\nAcross the cut" in texts[0] and texts[1].count("Across the cut") == 1
    whole = read_captions(store.get_bytes(f"{prefix}/captions/en/captions.vtt"), language="en", duration_s=12.0)
    assert whole.track.cues == tracks(12.0)[0].cues          # the whole track reads back as it went in
    manifest = read_manifest(store, LOCATION, published.version)
    assert manifest.media_version == published.version and len(manifest.captions) == 2
    for text in texts:
        assert text.startswith(f"WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:00.000,MPEGTS:{manifest.timestamp_map_mpegts}\n")
    (image,) = master.image_playlists
    images = m3u8.loads(store.get_bytes(f"{prefix}/{image.uri}").decode())
    assert images.is_images_only and sum(s.duration for s in images.segments) == pytest.approx(12.0)
    sheets = {name: decode_image(store.get_bytes(f"{prefix}/storyboard/{name}")).shape[:2]
              for name in manifest.storyboard.sheets}
    check_storyboard_vtt(store.get_bytes(f"{prefix}/storyboard/storyboard.vtt").decode(), sheets, 12.0)
    assert {i["name"] for i in manifest.poster.images} == {"poster_320.jpg", "poster_320.webp", "poster_640.jpg",
                                                          "poster_640.webp"}


def test_the_timestamp_map_is_the_first_video_pts_pyav_reads_from_the_ts(store, small_encoded):
    published = publish(small_encoded, store, RandomKeys(), LOCATION, key_uri=key_uri, captions=tracks(14.0))
    mpegts = read_manifest(store, LOCATION, published.version).timestamp_map_mpegts
    for rendition in small_encoded.renditions:
        with av.open(io.BytesIO(rendition.segments[0].path.read_bytes()), format="mpegts") as container:
            first = next(container.decode(video=0))
        assert (first.pts, first.time_base) == (mpegts, Fraction(1, 90000))
        assert mpegts > 90000        # FFmpeg's TS muxer starts at 1.4 s plus the reorder delay, not at 0


def test_caption_tracks_that_cannot_share_a_group_are_refused_before_anything_is_written(store, pictured):
    encoded, _ = pictured
    english, french = tracks(12.0)
    twice_default = read_captions(FR, language="fr-CA", name="Français (Canada)", duration_s=12.0, is_default=True)
    for refused in ([english, english], [english, twice_default.track],
                    [french, read_captions(FR, language="fr-CA", name="Français", duration_s=12.0).track]):
        with pytest.raises(CaptionTracksConflict) as conflict:
            publish(encoded, store, RandomKeys(), LOCATION, key_uri=key_uri, captions=refused)
        assert conflict.value.code == "caption_tracks_conflict"
    assert store.list_keys("series/") == []


def test_without_captions_or_pictures_the_master_is_what_it_was(store, pictured):
    encoded, _ = pictured
    published = publish(encoded, store, RandomKeys(), LOCATION, key_uri=key_uri)
    text = store.get_bytes(f"{LOCATION.version_prefix(published.version)}/master.m3u8").decode()
    assert not re.search("EXT-X-MEDIA|SUBTITLES|IMAGE|CLOSED-CAPTIONS", text)
