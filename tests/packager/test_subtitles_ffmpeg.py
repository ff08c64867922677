"""The ffmpeg CLI (a test peer) reads a published master with subtitles over HTTP: it lists each caption
track with its language and the default, and extracts the cues at their episode times.

The objects are served as stored, by a static loopback HTTP server standing in for the service (the
per-viewer routes are the server's). FFmpeg 5.1's HLS demuxer opens subtitle renditions only with
`-strict experimental`, and it joins segments into one WebVTT stream without reading each segment's
header (hls.c: "TODO: handle subtitles"), so a cue repeated across a cut also comes out twice.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from packager.publishing.publish import EpisodeLocation, publish
from pipeline.captions.tracks import read_captions
from tests.support.keys import RandomKeys

FFMPEG = shutil.which("ffmpeg")
LOCATION = EpisodeLocation(series_id="s1", episode_id="1")
EN = b"WEBVTT\n\n00:00:01.000 --> 00:00:07.000\nAcross the cut\n\n00:00:08.000 --> 00:00:09.500\nSecond line\n"
FR = b"1\n00:00:02,000 --> 00:00:03,000\nBonjour\n"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(store, small_encoded, tmp_path):
    keys = RandomKeys()
    english = read_captions(EN, language="en", duration_s=14.0, is_default=True).track
    french = read_captions(FR, language="fr", duration_s=14.0).track
    published = publish(small_encoded, store, keys, LOCATION, key_uri=lambda key_id: f"/keys/{key_id}",
                        captions=[english, french])
    for key in store.list_keys("series/"):
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(store.get_bytes(key))
    (tmp_path / "keys").mkdir()
    for key in keys.keys.values():
        (tmp_path / "keys" / key.key_id).write_bytes(key.key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{LOCATION.version_prefix(published.version)}/master.m3u8"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg CLI: apt-get install ffmpeg")
def test_ffmpeg_lists_the_caption_tracks_and_extracts_their_cues(served):
    probe = subprocess.run([FFMPEG, "-hide_banner", "-strict", "experimental", "-i", served],
                           capture_output=True, text=True, timeout=60)
    streams = [line.strip() for line in probe.stderr.splitlines() if line.strip().startswith("Stream #")]
    assert any("(en): Subtitle: webvtt (default)" in line for line in streams), streams
    assert any("(fr): Subtitle: webvtt" in line and "default" not in line for line in streams), streams
    assert any("Video: h264" in line for line in streams) and any("Audio: aac" in line for line in streams)
    extracted = subprocess.run([FFMPEG, "-hide_banner", "-v", "error", "-strict", "experimental", "-copyts",
                                "-i", served, "-map", "0:s:0", "-c", "copy", "-f", "webvtt", "-"],
                               capture_output=True, text=True, timeout=60)
    assert extracted.returncode == 0, extracted.stderr
    assert "00:01.000 --> 00:07.000\nAcross the cut" in extracted.stdout
    assert "00:08.000 --> 00:09.500\nSecond line" in extracted.stdout
