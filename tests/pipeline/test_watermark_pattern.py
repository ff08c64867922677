"""The mark's pattern, its fade at segment boundaries, and the A/B pictures of a frame."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline.watermark.embed import RungMark
from pipeline.watermark.pattern import cell_pattern, segment_pattern
from pipeline.watermark.plan import SegmentPlan
from pipeline.watermark.spec import WatermarkSpec

SEED = bytes(range(16))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_the_pattern_is_the_same_at_every_resolution_and_new_each_segment():
    full_hd = segment_pattern(SEED, 3, 1920, 1080)
    assert abs(full_hd.mean()) < 0.05 and np.sqrt((full_hd ** 2).mean()) == pytest.approx(1, abs=0.05)
    grid = cell_pattern(SEED, 3, 64, 36)
    assert correlation(full_hd.reshape(36, 30, 64, 30).mean(axis=(1, 3)), grid) > 0.999
    small = segment_pattern(SEED, 3, 416, 234)
    assert small.std() == pytest.approx(full_hd.std(), rel=0.02)
    assert abs(correlation(grid, cell_pattern(SEED, 4, 64, 36))) < 0.3
    assert abs(correlation(grid, cell_pattern(bytes(16), 3, 64, 36))) < 0.3
    assert np.array_equal(grid, cell_pattern(SEED, 3, 64, 36))


def test_the_mark_fades_in_and_out_at_segment_boundaries():
    plan = SegmentPlan([0, 60, 120], Fraction(30))
    assert [plan.segment_of(i) for i in (0, 59, 60, 119, 120, 500)] == [0, 0, 1, 1, 2, 2]
    assert plan.envelope(0) < 0.05 and plan.envelope(59) < 0.05 and plan.envelope(60) < 0.05
    assert plan.envelope(30) == 1.0
    assert plan.envelope(3) == pytest.approx(plan.envelope(56))
    assert all(plan.envelope(i) <= plan.envelope(i + 1) for i in range(10))
    with pytest.raises(ValueError):
        SegmentPlan([0, 60, 60], Fraction(30))


def test_a_and_b_pictures_carry_opposite_marks_in_luma_only():
    spec = WatermarkSpec(seed=SEED, strength=2.0)
    mark = RungMark(spec, SegmentPlan([0, 60], Fraction(30)), 320, 180)
    planes = np.full((270, 320), 128, dtype=np.uint8)
    planes[:20] = 254                                             # near white: the mark is clipped there
    picture_a, picture_b = mark.pictures(av.VideoFrame.from_ndarray(planes, format="yuv420p"), 30)
    a, b = (p.to_ndarray(format="yuv420p").astype(int) for p in (picture_a, picture_b))
    expected = np.rint(spec.strength_at(320, 180) * segment_pattern(SEED, 0, 320, 180)).astype(int)
    assert np.array_equal(a[20:180] - 128, expected[20:]) and np.array_equal(128 - b[20:180], expected[20:])
    assert a.max() <= 255 and b.min() >= 0
    assert np.array_equal(a[180:], planes[180:]) and np.array_equal(b[180:], planes[180:])
    with pytest.raises(ValueError, match="at least 16"):
        WatermarkSpec(seed=b"short")


def test_rungs_under_480_lines_carry_a_proportionally_weaker_mark():
    spec = WatermarkSpec(seed=SEED, strength=2.0)
    assert spec.strength_at(1920, 1080) == spec.strength_at(854, 480) == 2.0
    assert spec.strength_at(416, 234) == pytest.approx(2.0 * 234 / 480)
    assert spec.strength_at(360, 640) == spec.strength_at(640, 360) == pytest.approx(1.5)   # portrait: the short side
