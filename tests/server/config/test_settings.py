"""Settings.from_env: upload limits come from SERIES_ variables, and a bad value names its variable."""

from __future__ import annotations

import pytest

from pipeline.encode.fmp4 import SegmentFormat
from pipeline.encode.ladder import LadderMode
from pipeline.inspect.validate import ValidationRules
from server.config import Settings, SettingsError


def test_upload_limits_default_to_the_product_rules(tmp_path):
    assert Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)}).rules == ValidationRules()


def test_upload_limits_are_configurable(tmp_path):
    rules = Settings.from_env({
        "SERIES_DATA_DIR": str(tmp_path), "SERIES_MAX_SIDE_PX": "1920", "SERIES_MIN_SHORT_SIDE_PX": "240",
        "SERIES_MAX_FRAME_RATE": "60", "SERIES_MAX_UPLOAD_BYTES": "1000000", "SERIES_MAX_DURATION_S": "600",
    }).rules
    assert (rules.max_side_px, rules.min_short_side_px, rules.max_frame_rate) == (1920, 240, 60.0)
    assert (rules.max_size_bytes, rules.max_duration_s, rules.min_duration_s) == (1_000_000, 600.0, 30.0)


@pytest.mark.parametrize("overrides, named", [
    ({"SERIES_MAX_UPLOAD_BYTES": "lots"}, "SERIES_MAX_UPLOAD_BYTES"),
    ({"SERIES_MAX_FRAME_RATE": "0"}, "SERIES_MAX_FRAME_RATE"),
    ({"SERIES_MAX_DURATION_S": "20"}, "SERIES_MAX_DURATION_S"),
    ({"SERIES_MAX_SIDE_PX": "100"}, "SERIES_MAX_SIDE_PX"),
    ({"SERIES_GC_GRACE_S": "0"}, "SERIES_GC_GRACE_S"),          # would collect publishes still uploading
    ({"SERIES_JOB_RETRY_DELAY_S": "-5"}, "SERIES_JOB_RETRY_DELAY_S"),
    ({"SERIES_JOB_RETRY_DELAY_S": "nan"}, "SERIES_JOB_RETRY_DELAY_S"),
])
def test_a_bad_limit_stops_start_up_and_names_the_variable(tmp_path, overrides, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), **overrides})


def test_segment_format_defaults_to_ts_and_a_bad_one_names_the_variable(tmp_path):
    assert Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)}).hls_segment_format == SegmentFormat.TS
    chosen = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), "SERIES_HLS_SEGMENT_FORMAT": "FMP4"})
    assert chosen.hls_segment_format == SegmentFormat.FMP4
    with pytest.raises(SettingsError, match="SERIES_HLS_SEGMENT_FORMAT has value 'mp4'; expected ts or fmp4"):
        Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), "SERIES_HLS_SEGMENT_FORMAT": "mp4"})


def test_the_service_decides_each_episodes_ladder_per_title_unless_told_fixed(tmp_path):
    assert Settings.from_env({"SERIES_DATA_DIR": str(tmp_path)}).ladder.mode == LadderMode.PER_TITLE
    chosen = Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), "SERIES_LADDER": "fixed"})
    assert chosen.ladder.mode == LadderMode.FIXED


def test_per_title_thresholds_come_from_the_environment_and_a_crf_range_must_leave_room(tmp_path):
    def per_title(**overrides):
        return Settings.from_env({"SERIES_DATA_DIR": str(tmp_path), **overrides}).ladder.per_title
    defaults = per_title()
    assert (defaults.enough_db, defaults.min_crf, defaults.max_crf) == (60.0, 8.0, 20.0)
    chosen = per_title(SERIES_LADDER_ENOUGH_DB="58", SERIES_LADDER_MIN_CRF="10", SERIES_LADDER_MAX_CRF="22")
    assert (chosen.enough_db, chosen.min_crf, chosen.max_crf) == (58.0, 10.0, 22.0)
    assert per_title(SERIES_LADDER_ENOUGH_DB="none").enough_db is None            # the CRF floor alone
    assert per_title(SERIES_LADDER_METRIC="ssim").enough_db is None
    with pytest.raises(SettingsError, match="SERIES_LADDER_MIN_CRF .* is above SERIES_LADDER_MAX_CRF"):
        per_title(SERIES_LADDER_MIN_CRF="21")
    with pytest.raises(SettingsError, match="SERIES_LADDER_ENOUGH_DB has value 'plenty'"):
        per_title(SERIES_LADDER_ENOUGH_DB="plenty")
