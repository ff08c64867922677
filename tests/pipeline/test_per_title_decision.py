"""decide_ladder() on probe figures made up to the point: which rungs stay, and how each is rate-controlled."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pipeline.encode.ladder import LadderMode, LadderSettings, PerTitleSettings, QualityMetric, plan_ladder
from pipeline.per_title.complexity import ComplexityAnalysis, ProbePoint, RungProbe, SampleWindow
from pipeline.per_title.decision import decide_ladder, fixed_plan

CANDIDATES = plan_ladder(1920, 1080)          # 1080p, 720p, 540p, 360p, 234p
# the figures below are made for these thresholds, whatever the calibrated defaults are
SETTINGS = PerTitleSettings(enough_db=45.0, max_loss_db=0.5, min_gain_db=1.0, max_crf=30.0, probe_crfs=(20.0, 28.0))


def point(crf: float, bitrate_bps: float, quality_db: float, display_quality_db: float,
          idr_bits: float | None = None) -> ProbePoint:
    """A probe; its IDR is 10 % of a second's bits unless given."""
    return ProbePoint(crf=crf, bitrate_bps=round(bitrate_bps), quality_db=quality_db,
                      display_quality_db=display_quality_db,
                      idr_bits=round(0.1 * bitrate_bps if idr_bits is None else idr_bits))


def analysis(curves: dict[str, tuple[ProbePoint, ...]]) -> ComplexityAnalysis:
    return ComplexityAnalysis(
        rungs=tuple(RungProbe(rendition=r, points=curves[r.name]) for r in CANDIDATES),
        metric=QualityMetric.PSNR, frame_rate=Fraction(30), windows=(SampleWindow(start_s=0.0, frames=15),),
        measured_frames=2, cpu_s=0.1, wall_s=0.1)


def easy(scale: float = 1.0, display_step: float = 3.0) -> dict[str, tuple[ProbePoint, ...]]:
    """Clean content: every rung reaches 45 dB with a fraction of its fixed rate; each size adds 3 dB shown."""
    curves = {}
    for k, rendition in enumerate(CANDIDATES):
        shown = 44 - k * display_step
        rate = rendition.video_bitrate_bps * scale
        curves[rendition.name] = (point(20, 0.30 * rate, 48, shown + 2), point(28, 0.12 * rate, 42, shown - 2))
    return curves


def per_rung(probes) -> dict[str, tuple[ProbePoint, ...]]:
    """probes(k, fixed rate) -> a rung's probe points, for the k-th candidate (largest first)."""
    return {rendition.name: probes(k, rendition.video_bitrate_bps) for k, rendition in enumerate(CANDIDATES)}


def hard() -> dict[str, tuple[ProbePoint, ...]]:
    """Grain: CRF 20 needs three times the fixed rate and still only reaches 38 dB."""
    return per_rung(lambda k, rate: (point(20, 3.0 * rate, 38, 36 - 2 * k), point(28, 1.2 * rate, 33, 32 - 2 * k)))


def test_clean_content_gets_constant_quality_under_a_cap_on_every_rung():
    plan = decide_ladder(CANDIDATES, analysis(easy()), SETTINGS)
    assert plan.mode == LadderMode.PER_TITLE
    assert [r.name for r in plan.renditions] == [r.name for r in CANDIDATES]
    for rendition, fixed in zip(plan.renditions, CANDIDATES):
        assert rendition.is_constant_quality
        # 45 dB ("enough") sits halfway between the probes: CRF 24, and the log-rate halfway too
        assert rendition.crf == pytest.approx(24.0)
        assert rendition.video_bitrate_bps == pytest.approx((0.30 * 0.12) ** 0.5 * fixed.video_bitrate_bps, rel=0.01)
        assert rendition.maxrate_bps == round(SETTINGS.peak_ratio * rendition.video_bitrate_bps)
        assert rendition.maxrate_bps <= fixed.maxrate_bps and rendition.bufsize_bits <= fixed.bufsize_bits
        assert (rendition.width, rendition.height) == (fixed.width, fixed.height)
        assert rendition.vbv_buffer_s == fixed.vbv_buffer_s          # small IDRs: the fixed rung's 2 s (1 s)


def test_a_capped_rungs_buffer_holds_two_of_its_idrs_but_never_more_than_the_fixed_rungs():
    curves = easy()
    for name in ("1080p", "234p"):    # a still picture: IDRs of 2 s of the average rate, and of 50 s
        seconds = 2 if name == "1080p" else 50
        curves[name] = tuple(point(p.crf, p.bitrate_bps, p.quality_db, p.display_quality_db, seconds * p.bitrate_bps)
                             for p in curves[name])
    by_name = {r.name: r for r in decide_ladder(CANDIDATES, analysis(curves), SETTINGS).renditions}
    top, fixed_top = by_name["1080p"], CANDIDATES[0]
    assert top.bufsize_bits == pytest.approx(2 * 2 * top.video_bitrate_bps, rel=0.01)
    assert top.bufsize_bits < fixed_top.bufsize_bits
    assert CANDIDATES[-1].bufsize_bits * 0.999 < by_name["234p"].bufsize_bits <= CANDIDATES[-1].bufsize_bits


def test_content_that_needs_the_full_rate_gets_the_fixed_rung_unchanged():
    plan = decide_ladder(CANDIDATES, analysis(hard()), SETTINGS)
    assert plan.renditions == tuple(CANDIDATES)
    assert {d.rate_control for d in plan.decisions} == {"average_bitrate"}
    assert "fixed rate 6000 kbit/s" in plan.decisions[0].message


def test_a_rung_that_adds_too_little_at_display_size_is_dropped_and_the_next_compares_with_what_is_kept():
    curves = easy()
    low = curves["540p"]     # 720p shows 0.5 dB above 540p: dropped; 1080p is then judged against 540p
    curves["720p"] = tuple(point(p.crf, p.bitrate_bps, p.quality_db, p.display_quality_db + 0.5, p.idr_bits) for p in low)
    plan = decide_ladder(CANDIDATES, analysis(curves), SETTINGS)
    decisions = {d.name: d for d in plan.decisions}
    assert [r.name for r in plan.renditions] == ["1080p", "540p", "360p", "234p"]
    assert decisions["720p"].reason == "adds_too_little" and not decisions["720p"].is_kept
    assert decisions["720p"].gain_db == pytest.approx(0.5)
    assert "under the 1 dB a rung must add" in decisions["720p"].message
    assert decisions["1080p"].gain_db == pytest.approx(6.0)      # over 540p, the kept rung below
    assert decisions["234p"].reason == "lowest_rung"


def test_a_rung_nearly_as_dear_as_the_larger_one_above_it_is_dropped():
    curves = easy()     # 540p would need 90 % of 720p's rate: 720p shows more for those bits
    curves["540p"] = tuple(point(p.crf, 0.9 * q.bitrate_bps, p.quality_db, p.display_quality_db)
                           for p, q in zip(curves["540p"], curves["720p"]))
    plan = decide_ladder(CANDIDATES, analysis(curves), SETTINGS)
    decisions = {d.name: d for d in plan.decisions}
    assert [r.name for r in plan.renditions] == ["1080p", "720p", "360p", "234p"]
    assert decisions["540p"].reason == "dominated"
    assert decisions["540p"].message.startswith("dropped: ~") and "90% of 720p's" in decisions["540p"].message


def test_when_nothing_adds_enough_the_lowest_and_the_largest_rungs_stay():
    plan = decide_ladder(CANDIDATES, analysis(easy(display_step=0.1)), SETTINGS)
    assert [r.name for r in plan.renditions] == ["1080p", "234p"]
    reasons = {d.name: d.reason for d in plan.decisions}
    assert reasons == {"1080p": "only_other_rung", "720p": "adds_too_little", "540p": "adds_too_little",
                       "360p": "adds_too_little", "234p": "lowest_rung"}


def test_the_aim_is_the_fixed_rungs_quality_less_the_allowed_loss_when_that_is_below_enough():
    # 1080p at its fixed 6 Mbit/s (CRF 24, halfway in log rate) is predicted at 39 dB: it aims at 38.5, not 45,
    # which this flat curve reaches at CRF 26 with 71 % of the rate
    curves = easy()
    curves["1080p"] = (point(20, 12e6, 40, 40), point(28, 3e6, 38, 38))
    plan = decide_ladder(CANDIDATES, analysis(curves), SETTINGS)
    top = plan.decisions[0]
    assert top.fixed_quality_db == pytest.approx(39.0)
    assert top.quality_db == pytest.approx(38.5) and top.crf == pytest.approx(26.0)
    assert top.rate_control == "capped_crf" and top.bitrate_bps == pytest.approx(0.707 * 6e6, rel=0.01)


def test_saving_less_than_the_full_rate_fraction_keeps_the_fixed_rung():
    # a steep curve: 0.5 dB below the fixed rung's 39 dB saves only 11 % of its rate
    curves = easy()
    curves["1080p"] = (point(20, 12e6, 42, 50), point(28, 3e6, 36, 44))
    top = decide_ladder(CANDIDATES, analysis(curves), SETTINGS).decisions[0]
    assert top.rate_control == "average_bitrate" and top.bitrate_bps == 6_000_000
    assert top.message.startswith("fixed rate 6000 kbit/s: reaching 38.5 dB would take 89% of it; ")


def test_no_rung_goes_past_max_crf_whatever_the_metric_says():
    # PSNR says 45 dB is reached at CRF 24 on every rung; x264's CRF 21 is as far as it may go
    plan = decide_ladder(CANDIDATES, analysis(easy()), replace(SETTINGS, max_crf=21.0))
    assert {r.crf for r in plan.renditions} == {21.0}
    assert all(d.quality_db == pytest.approx(47.25) for d in plan.decisions)   # 48 - 6 * 1/8


def text() -> dict[str, tuple[ProbePoint, ...]]:
    """Screen text: few bits at any CRF (static pictures of flat colour), quality falling fast with CRF."""
    return per_rung(lambda k, rate: (point(18, 0.10 * rate, 51, 51 - 10 * k), point(24, 0.08 * rate, 44, 44 - 10 * k)))


def test_text_the_fixed_ladder_makes_near_lossless_keeps_the_rate_it_needs():
    # The fixed rates lie far below the probes here (x264's ABR undershoots into near-lossless on text).
    # The earlier thresholds (enough at 55 dB, no CRF under 12) stopped at 55 dB predicted, CRF 14.6: on
    # the benchmark's screen recording that measured 49-51 dB and lost 1.4 VMAF at 360p. Now the rung goes
    # on to 60 dB (CRF 10.3), and as that is below the probes, its cap is the fixed average rate, not
    # 1.8x a prediction that measured up to 2x short there.
    defaults = PerTitleSettings()
    earlier = replace(defaults, enough_db=55.0, min_crf=12.0, max_crf=22.0)
    now, before = (decide_ladder(CANDIDATES, analysis(text()), s).decisions[0] for s in (defaults, earlier))
    assert before.crf == pytest.approx(14.6) and before.quality_db == pytest.approx(55.0, abs=0.1)
    assert now.crf == pytest.approx(10.3) and now.quality_db == pytest.approx(60.0, abs=0.1)
    assert now.is_extrapolated and now.peak_bitrate_bps == CANDIDATES[0].video_bitrate_bps
    assert now.rate_control == "capped_crf" and before.bitrate_bps < now.bitrate_bps < 6_000_000
    assert now.as_dict()["extrapolated"] is True and "capped at 6000 kbit/s" in now.message


def test_no_rung_goes_finer_than_min_crf_however_far_the_fixed_rung_is():
    # without "enough", the text's aim is its fixed rung's extrapolated 100+ dB: min_crf stops it
    settings = replace(PerTitleSettings(), enough_db=None)
    plan = decide_ladder(CANDIDATES, analysis(text()), settings)
    constant = [d for d in plan.decisions if d.rate_control == "capped_crf"]
    assert constant and {d.crf for d in constant} == {settings.min_crf}
    assert all(d.fixed_quality_db > 90 and d.peak_bitrate_bps <= d.fixed_bitrate_bps for d in constant)


def test_a_rung_extrapolated_below_the_probes_counts_at_its_cap_when_judged_dominated():
    # 540p is predicted at ~317 kbit/s (56 % of 720p's), but that is extrapolated 5 CRF below the probes:
    # it may spend up to its 2000 kbit/s cap, more than 720p's ~570 kbit/s, which shows more
    curves = easy()
    curves["540p"] = (point(20, 200_000, 43, 38.5), point(28, 100_000, 40, 36.5))   # shows 39.8 at CRF 14.7
    decisions = {d.name: d for d in decide_ladder(CANDIDATES, analysis(curves), SETTINGS).decisions}
    extrapolated, above = decisions["540p"], decisions["720p"]
    assert extrapolated.is_extrapolated and extrapolated.crf == pytest.approx(14.7)
    assert extrapolated.bitrate_bps < 0.8 * above.bitrate_bps < extrapolated.peak_bitrate_bps == 2_000_000
    assert extrapolated.reason == "dominated" and not extrapolated.is_kept
    assert extrapolated.message.startswith("dropped: up to 2000 kbit/s, ")
    assert not above.is_extrapolated and above.is_kept


def test_fixed_plan_is_plan_ladder_exactly():
    plan = fixed_plan(CANDIDATES)
    assert plan.renditions == tuple(CANDIDATES) and plan.mode == LadderMode.FIXED
    assert all(d.is_kept and d.reason == "fixed" for d in plan.decisions)
    assert all(r.crf is None and r.maxrate_bps == int(r.video_bitrate_bps * 1.1) for r in plan.renditions)


def test_the_plan_reads_as_json_with_a_decision_per_candidate():
    plan = decide_ladder(CANDIDATES, analysis(easy(display_step=0.1)), SETTINGS)
    as_dict = plan.as_dict()
    assert as_dict["mode"] == "per-title" and as_dict["metric"] == "psnr"
    assert as_dict["thresholds"] == {"enough_db": 45.0, "max_loss_db": 0.5, "min_gain_db": 1.0, "max_crf": 30.0,
                                     "min_crf": SETTINGS.min_crf}
    assert [r["name"] for r in as_dict["rungs"]] == [c.name for c in CANDIDATES]
    assert [r["kept"] for r in as_dict["rungs"]] == [True, False, False, False, True]
    assert as_dict["analysis"]["windows"] == 1 and as_dict["analysis"]["probe_crfs"] == [20.0, 28.0]


curve_values = st.tuples(st.floats(0.01, 5.0), st.floats(0.01, 5.0), st.floats(20, 60), st.floats(0, 12),
                         st.floats(15, 50), st.floats(0, 10))


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(curve_values, min_size=5, max_size=5), st.sampled_from([1, 2, 3, 5]))
def test_any_probes_keep_the_lowest_rung_two_bit_rates_and_the_fixed_caps(values, count):
    candidates = CANDIDATES[-count:]
    curves = {}
    for rendition, (high, low, quality, drop, shown, shown_drop) in zip(CANDIDATES, values):
        rate = rendition.video_bitrate_bps
        curves[rendition.name] = (point(20, rate * max(high, low), quality, shown),
                                  point(28, rate * min(high, low), quality - drop, shown - shown_drop))
    made_up = analysis(curves)
    made_up = replace(made_up, rungs=made_up.rungs[-count:])
    plan = decide_ladder(candidates, made_up, SETTINGS)
    names = [r.name for r in plan.renditions]
    assert names[-1] == candidates[-1].name                          # never without the lowest rung
    assert len(names) >= min(2, count)                               # several bit rates (Apple 9.9)
    assert names == [c.name for c in candidates if c.name in names]  # sizes in the fixed order, none invented
    by_name = {c.name: c for c in candidates}
    for rendition in plan.renditions:
        fixed = by_name[rendition.name]
        assert (rendition.width, rendition.height) == (fixed.width, fixed.height)
        assert rendition.maxrate_bps <= fixed.maxrate_bps and rendition.bufsize_bits <= fixed.bufsize_bits
        if rendition.is_constant_quality:
            assert SETTINGS.min_crf <= rendition.crf <= 40 and rendition.video_bitrate_bps < fixed.video_bitrate_bps
        else:
            assert rendition == fixed


def test_ladder_settings_default_to_the_fixed_ladder():
    assert LadderSettings().mode == LadderMode.FIXED


def test_each_metric_has_its_own_thresholds():
    assert PerTitleSettings.for_metric(QualityMetric.PSNR) == PerTitleSettings()
    ssim = PerTitleSettings.for_metric(QualityMetric.SSIM)
    assert ssim.metric == QualityMetric.SSIM and ssim.max_loss_db == 0.1 and ssim.min_gain_db == 0.2
    assert ssim.max_crf == PerTitleSettings().max_crf and ssim.min_crf == PerTitleSettings().min_crf
    assert ssim.enough_db is None and PerTitleSettings().enough_db == 60.0
