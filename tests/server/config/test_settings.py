"""Settings.from_env: upload limits come from SERIES_ variables, and a bad value names its variable."""

from __future__ import annotations

import pytest

from pipeline.encode.fmp4 import SegmentFormat
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
