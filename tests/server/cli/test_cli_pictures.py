"""`series ingest --poster-at --json`, `series poster` and `series captions add|list|remove` as an operator
runs them: the report lists what was made, each change publishes a new version, refusals print every
reason with its code (exit 3) and change nothing."""

from __future__ import annotations

import json

from packager.publishing.versions import EpisodeLocation, read_pointer
from server.config import Settings
from server.services import Services
from tests.conftest import settings_env
from tests.server.cli.test_cli import series
from tests.support.catalog import add_series
from tests.support.media import clip
from tests.support.pictures import DURATION_S, FPS, SUBTITLES


def test_ingest_poster_and_captions_from_the_command_line(tmp_path, s3_store, media_dir):
    env = settings_env(tmp_path, s3_store, SERIES_MIN_DURATION_S="5")
    with Services.open(Settings.from_env(env)) as services:
        services.store.ensure_bucket()
        add_series(services, "s1")
    source = clip(media_dir, "pictures-captioned.mp4", duration_s=DURATION_S, width=320, height=180, fps=FPS,
                  black_until_s=1.0, subtitles=SUBTITLES)
    ingested = series(env, "ingest", str(source), "--series", "s1", "--episode", "1", "--poster-at", "0.5", "--json")
    assert ingested.returncode == 0, ingested.stderr
    report = json.loads(ingested.stdout)
    assert report["pictures"]["poster"] == {**report["pictures"]["poster"], "chosen_by": "creator", "time_s": 0.5}
    assert [track["language"] for track in report["captions"]["tracks"]] == ["en"]

    captions = tmp_path / "fr.srt"
    captions.write_text("1\n00:00:01,000 --> 00:00:02,000\nBonjour\n", encoding="utf-8")
    added = series(env, "captions", "add", "--series", "s1", "--episode", "1", "--lang", "fr", "--file", str(captions),
                   "--name", "Français", "--default")
    assert added.returncode == 0, added.stderr
    assert "v2" in added.stdout and "fr (default)" in added.stdout
    listed = series(env, "captions", "list", "--series", "s1", "--episode", "1")
    assert "Français" in listed.stdout and "embedded" in listed.stdout and "poster at 0.500 s" in listed.stdout

    late = tmp_path / "late.vtt"
    late.write_text("WEBVTT\n\n00:00:30.000 --> 00:00:31.000\ntoo late\n", encoding="utf-8")
    refused = series(env, "captions", "add", "--series", "s1", "--episode", "1", "--lang", "de", "--file", str(late))
    assert refused.returncode == 3 and "[caption_past_end]" in refused.stderr

    poster = series(env, "poster", "--series", "s1", "--episode", "1", "--at", "6.5", "--json")
    assert poster.returncode == 0, poster.stderr
    assert json.loads(poster.stdout)["poster"]["chosen_by"] == "creator"
    past = series(env, "poster", "--series", "s1", "--episode", "1", "--at", "99")
    assert past.returncode == 1 and "picture_time_out_of_range" in past.stderr
    assert len(past.stderr.strip().splitlines()) == 1

    removed = series(env, "captions", "remove", "--series", "s1", "--episode", "1", "--lang", "en")
    assert removed.returncode == 0 and "captions: fr (default)" in removed.stdout
    missing = series(env, "captions", "remove", "--series", "s1", "--episode", "1", "--lang", "en")
    assert missing.returncode == 1 and "caption_track_not_found" in missing.stderr
    with Services.open(Settings.from_env(env)) as services:
        assert read_pointer(services.store, EpisodeLocation(series_id="s1", episode_id="1"))["version"] == 4


def test_every_picture_command_explains_itself():
    for args in (("poster",), ("captions", "add"), ("captions", "remove"), ("captions", "list")):
        shown = series({}, *args, "--help")
        assert shown.returncode == 0 and "--series" in shown.stdout and "--episode" in shown.stdout
    assert "--poster-at" in series({}, "ingest", "--help").stdout
