"""The `series` command as an operator runs it: real processes, real store, exit codes and messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from packager.store import ObjectStore
from server.config import Settings
from server.services import Services
from tests.conftest import settings_env
from tests.support.catalog import add_series_for, eligible_facts
from tests.support.corpus import corpus  # noqa: F401  (a fixture)
from tests.support.media import clip, count_frames
from tests.support.s3_server import free_port

EXIT_REJECTED = 3


def series(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)


def test_validate_rejects_a_text_file_with_one_line_and_code_3(tmp_path, s3_store, not_media):
    result = series(settings_env(tmp_path, s3_store), "validate", str(not_media))
    assert result.returncode == EXIT_REJECTED
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "not_media" in lines[0] and "notes.mp4" in lines[0]


def test_validate_json_report_for_an_acceptable_clip(tmp_path, s3_store, landscape_clip):
    result = series(settings_env(tmp_path, s3_store), "validate", "--json", str(landscape_clip))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "accepted"
    assert report["video"]["display_width"] == 640 and report["audio"]["channels"] == 2


@pytest.fixture
def damaged_in_the_middle(corpus):  # noqa: F811
    """32 s of MPEG-TS with garbage over some packets mid-file: the header probe passes, the decode does not."""
    return corpus["garbage_middle.ts"]


@pytest.mark.parametrize("fixture, code", [("short_clip", "too_short"), ("not_media", "not_media"),
                                           ("damaged_in_the_middle", "decode_errors")])
def test_rejected_ingest_publishes_nothing(request, tmp_path, s3_store, fixture, code):
    env = settings_env(tmp_path, s3_store)
    add_series_for(Settings.from_env(env), "s1")
    result = series(env, "ingest", str(request.getfixturevalue(fixture)), "--series", "s1", "--episode", "1")
    assert result.returncode == EXIT_REJECTED
    assert f"[{code}]" in result.stderr
    settings = Settings.from_env(env)
    with ObjectStore(settings.store) as store:
        store.ensure_bucket()
        assert store.list_keys("series/") == []
    with Services.open(settings) as services:       # nor a catalog entry, reserved or published, nor keys
        assert services.catalog.list_episodes("s1", published_only=False) == []
        assert services.db.query("SELECT count(*) AS n FROM content_keys")[0]["n"] == 0


@pytest.mark.parametrize("variable, value, code", [
    ("SERIES_MAX_SIDE_PX", "480", "resolution_too_high"),
    ("SERIES_MAX_UPLOAD_BYTES", "10000", "file_too_large"),
    ("SERIES_MAX_FRAME_RATE", "24", "frame_rate_too_high"),
])
def test_configured_upload_limits_reach_the_validator(tmp_path, s3_store, landscape_clip, variable, value, code):
    result = series(settings_env(tmp_path, s3_store, **{variable: value}), "validate", "--json", str(landscape_clip))
    assert result.returncode == EXIT_REJECTED, result.stderr
    assert [reason["code"] for reason in json.loads(result.stdout)["reasons"]] == [code]


def test_truncated_upload_is_caught_by_decoding_not_the_header(tmp_path, s3_store, media_dir):
    # index at the front (faststart): the header of the cut file still promises 60 s
    whole = clip(media_dir, "truncatable.mp4", duration_s=60, width=320, height=180, fps=25,
                 container_options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.7)])
    env = settings_env(tmp_path, s3_store)
    add_series_for(Settings.from_env(env), "s1")
    result = series(env, "ingest", str(cut), "--series", "s1", "--episode", "1")
    assert result.returncode == EXIT_REJECTED, result.stderr
    assert "[truncated]" in result.stderr and "1 min" in result.stderr
    with ObjectStore(Settings.from_env(env).store) as store:
        store.ensure_bucket()
        assert store.list_keys("series/") == []


def test_bad_setting_names_the_variable(tmp_path, s3_store):
    result = series(settings_env(tmp_path, s3_store, SERIES_LISTEN_PORT="eighty"), "serve")
    assert result.returncode == 1
    assert "SERIES_LISTEN_PORT" in result.stderr and "eighty" in result.stderr


def test_demo_prints_urls_that_play_and_stops_what_it_started(tmp_path, media_dir):
    """`series demo --json` with nothing configured: its own store, its own secrets, playable URLs."""
    sample = clip(media_dir, "demo-sample.mp4", duration_s=32, width=480, height=270, fps=25)
    env = {key: value for key, value in os.environ.items() if not key.startswith("SERIES_")}
    port = free_port()
    env.update({"SERIES_DATA_DIR": str(tmp_path / "var"), "SERIES_LOCAL_S3_PORT": str(free_port()),
                "SERIES_LISTEN_PORT": str(port), "SERIES_X264_PRESET": "superfast"})
    process = subprocess.Popen([sys.executable, "-m", "server", "demo", "--json", "--sample", str(sample)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first_line = process.stdout.readline()
        assert first_line, process.stderr.read()
        urls = json.loads(first_line)
        assert set(urls) >= {"entitled_url", "unentitled_url"}
        assert next(iter(urls)) == "storefront_url" and urls["storefront_url"] == f"http://127.0.0.1:{port}/"
        with urllib.request.urlopen(urls["watch_url"]) as page:        # the web app's page (built by ./run tests)
            assert page.headers["Content-Type"].startswith("text/html")
            assert '"test_payments": true' in page.read().decode()      # the demo sells with test purchases
        frames, _ = count_frames(urls["entitled_url"])
        assert frames == 32 * 25
        with pytest.raises(Exception):
            count_frames(urls["unentitled_url"])
        weed_pid = int((tmp_path / "var" / "seaweedfs" / "weed.pid").read_text())
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            process.kill()
            process.stdout.close()
            process.stderr.close()
    assert process.returncode == 0
    assert not Path(f"/proc/{weed_pid}").exists() or _is_zombie(weed_pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_catalog_commands_record_eligibility_and_create_series(tmp_path, s3_store):
    env = settings_env(tmp_path, s3_store)
    refused = series(env, "creator", "check", "c1", "--facts", json.dumps(eligible_facts(followers=10, is_private=True)))
    assert refused.returncode == 1
    assert "ineligible" in refused.stdout and "[too_few_followers]" in refused.stdout
    assert "[account_private]" in refused.stdout
    early = series(env, "series", "create", "s1", "--creator", "c1", "--title", "Knots", "--price-cents", "999")
    assert early.returncode == 1 and "creator_not_eligible" in early.stderr

    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(eligible_facts()))
    assert series(env, "creator", "check", "c1", "--facts", f"@{facts}").returncode == 0
    cheap = series(env, "series", "create", "s1", "--creator", "c1", "--title", "Knots", "--price-cents", "99")
    assert cheap.returncode == 1 and "invalid_field: price_cents" in cheap.stderr
    created = series(env, "series", "create", "s1", "--creator", "c1", "--title", "Knots", "--price-cents", "999")
    assert created.returncode == 0, created.stderr
    listing = series(env, "series", "list")
    assert listing.stdout.split("\t")[:3] == ["s1", "c1", "9.99 USD"]
    granted = series(env, "grant", "--viewer", "v1", "--series", "s1", "--source", "gift")
    assert granted.returncode == 0
    token = series(env, "account-token", "--subject", "v1", "--role", "viewer").stdout.strip()
    no_life = series(env, "account-token", "--subject", "v1", "--role", "viewer", "--ttl", "0")
    assert no_life.returncode == 1 and "invalid_field: ttl_s" in no_life.stderr
    services = Services.open(Settings.from_env(env))
    try:
        assert services.tokens.verify_account(token).role == "viewer"
        assert services.entitlements.get("v1", "s1").source == "gift"
        assert services.entitlements.audit_trail()[0].actor == "cli"
    finally:
        services.close()


def test_ingest_segment_format_flag_overrides_the_setting_and_help_tells(tmp_path, s3_store, short_clip):
    env = settings_env(tmp_path, s3_store, SERIES_HLS_SEGMENT_FORMAT="ts", SERIES_MIN_DURATION_S="1",
                       SERIES_LADDER_MAX_RENDITIONS="1")
    add_series_for(Settings.from_env(env), "s1")
    result = series(env, "ingest", str(short_clip), "--series", "s1", "--episode", "1", "--segment-format", "fmp4",
                    "--json")
    assert result.returncode == 0, result.stderr
    version = json.loads(result.stdout)["version"]
    with ObjectStore(Settings.from_env(env).store) as store:
        names = {key.rsplit("/", 1)[-1] for key in store.list_keys(f"series/s1/episodes/1/v{version}/")}
    assert {"init.mp4", "seg_00000.m4s", "index.m3u8", "iframes.m3u8", "master.m3u8"} <= names
    assert not any(name.endswith(".ts") for name in names)
    for command in ("ingest", "demo"):
        usage = series(env, command, "--help").stdout
        assert "--segment-format {ts,fmp4}" in usage and "SERIES_HLS_SEGMENT_FORMAT" in usage


def test_ingest_json_says_which_ladder_and_why_each_rung(tmp_path, s3_store, landscape_clip):
    """SERIES_LADDER=per-title: the report names every candidate rung, kept or dropped, with its reason,
    and what each kept rung measured; the lowest rung is always kept."""
    env = settings_env(tmp_path, s3_store, SERIES_LADDER="per-title")
    add_series_for(Settings.from_env(env), "s1")
    result = series(env, "ingest", str(landscape_clip), "--series", "s1", "--episode", "1", "--json")
    assert result.returncode == 0, result.stderr
    published = json.loads(result.stdout)
    ladder = published["ladder"]
    assert ladder["mode"] == "per-title" and ladder["fallback_reason"] is None and ladder["metric"] == "psnr"
    assert [rung["name"] for rung in ladder["rungs"]] == ["360p", "234p"]      # the candidates for 640x360
    kept = [rung for rung in ladder["rungs"] if rung["kept"]]
    assert [rung["name"] for rung in kept] == published["renditions"] and kept[-1]["name"] == "234p"
    assert all(rung["reason"] and rung["message"] for rung in ladder["rungs"])
    assert all(rung["measured"]["bytes"] > 0 and rung["measured"]["psnr_db"] > 0 for rung in kept)
    assert ladder["analysis"]["windows"] >= 3 and ladder["analysis"]["cpu_s"] > 0
    assert [q["rendition"] for q in published["quality"]] == published["renditions"]


def test_a_ladder_setting_out_of_range_stops_the_command_naming_it(tmp_path, s3_store, short_clip):
    env = settings_env(tmp_path, s3_store, SERIES_LADDER="best")
    result = series(env, "ingest", str(short_clip), "--series", "s1", "--episode", "1")
    assert result.returncode == 1
    assert "SERIES_LADDER has value 'best'; expected fixed or per-title" in result.stderr
