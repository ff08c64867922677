"""`series ingest` shows progress (stage, percent, speed, ETA) and reports each rung's sampled PSNR."""

from __future__ import annotations

import json
import re

from server.config import Settings
from tests.conftest import settings_env
from tests.server.cli.test_cli import series
from tests.support.catalog import add_series_for


def test_ingest_json_reports_psnr_and_progress_bar_shows_speed_and_eta(tmp_path, s3_store, landscape_clip):
    # an unreachable threshold: every rung must be flagged, and the flag must reach the report
    env = settings_env(tmp_path, s3_store, SERIES_X264_PRESET="superfast", SERIES_MIN_PSNR_DB="99")
    add_series_for(Settings.from_env(env), "s1")
    result = series(env, "ingest", str(landscape_clip), "--series", "s1", "--episode", "1", "--json", "--progress")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [q["rendition"] for q in report["quality"]] == report["renditions"]
    for quality in report["quality"]:
        assert 20 < quality["min_psnr_db"] <= quality["psnr_db"] < 99 and quality["sample_count"] >= 2
        assert quality["is_below_threshold"] and quality["threshold_db"] == 99
    assert len(report["quality_warnings"]) == len(report["renditions"])
    # --progress draws the bar although stderr is a pipe here
    assert "transcoding" in result.stderr and "x realtime, ETA" in result.stderr and "100%" in result.stderr


def test_the_progress_bar_stays_readable_through_every_stage(tmp_path, s3_store, landscape_clip):
    env = settings_env(tmp_path, s3_store, SERIES_X264_PRESET="superfast", SERIES_MIN_PSNR_DB="99")
    add_series_for(Settings.from_env(env), "s1")
    result = series(env, "ingest", str(landscape_clip), "--series", "s1", "--episode", "1", "--progress")
    assert result.returncode == 0, result.stderr
    screens = [part for part in re.split(r"[\r\n]", result.stderr) if part.strip()]
    bars = [screen for screen in screens if "%|" in screen]
    assert {screen.split()[0] for screen in bars} >= {"transcoding", "packaging", "publishing", "published"}
    for screen in bars:
        assert "| ," not in screen, screen                              # no empty postfix with a stray comma
        assert " WARNING " not in screen and " INFO " not in screen, screen  # log lines above the bar, not in it
        if not screen.startswith("transcoding"):
            assert "realtime" not in screen and "ETA" not in screen, screen  # no stale transcode figures
    # the quality warnings (threshold 99 dB) were logged, each on a line of its own
    assert any(" WARNING " in screen and "PSNR" in screen and "%|" not in screen for screen in screens)
