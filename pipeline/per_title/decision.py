"""plan_ladder_for(): the ladder one episode gets, fixed or per-title, with the reason for every candidate rung.

Per-title (LadderMode.PER_TITLE) starts from the fixed ladder's candidates for the source's size
(plan_ladder(): same sizes, portrait handling, never upscaled) and decides from the episode's probes
(pipeline/per_title/complexity.py), with the thresholds of PerTitleSettings in dB of its metric:

1. Rate control per rung. From the probes' rate-quality curve, the quality the fixed rung would give
   at its bit rate is predicted; the rung aims at that less `max_loss_db` (and, if set, never above
   `enough_db`), at a CRF between `min_crf` and `max_crf`: x264's psychovisual constant quality sees
   grain and texture that PSNR misses (`max_crf`), and past `min_crf` a rung is near-lossless, where
   the fixed rung, whose average bit rate x264 cannot spend on flat content, may go finer still for
   nothing seen (`min_crf`). If reaching the aim is predicted to need at least `full_rate_fraction` of
   the fixed rate, the fixed rung is kept as it is (average bit rate, its VBV).
   Otherwise the rung is encoded at the constant quality (CRF) that reaches the aim, under a VBV cap
   of `peak_ratio` times its predicted average, never above the fixed rung's max rate and buffer: a
   scene harder than the probes saw is capped, and the peak stays within Apple's 200 % of the average
   (HLS authoring 1.30). A CRF below every probe CRF has no prediction to trust: its cap is the fixed
   rung's average rate. x264's CRF, not the prediction, holds the quality where the cap allows.
2. Rungs that add too little are dropped, smallest first: a rung whose quality at display size (upscaled
   as a player shows it) is less than `min_gain_db` above the kept rung below it costs bits for nothing.
   Then, largest first, a rung predicted to need DOMINATED_FRACTION of the next larger kept rung's rate
   is dropped too: for about the same bits that one shows more (a rung whose rate is extrapolated
   counts at its cap, the most it may spend). The lowest rung is always kept (iOS
   cellular needs a variant under 192 kbit/s, Apple 9.21), and so is the largest when it alone would
   be left (a master needs several bit rates, Apple 9.9).

BANDWIDTH and AVERAGE-BANDWIDTH are still measured from the segments written (packager/publishing/publish.py), so
they match whatever rate control a rung got. If the analysis fails, the episode gets the fixed ladder
and the plan says why.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, replace
from fractions import Fraction

from pipeline.encode.ladder import LadderMode, LadderSettings, PerTitleSettings, QualityMetric, Rendition, plan_ladder
from pipeline.encode.transcode import EncodedRendition, TranscodeResult
from pipeline.errors import TranscodeError
from pipeline.per_title.complexity import ComplexityAnalysis, ProbePoint, RungProbe, analyze_complexity

__all__ = ["LadderPlan", "RungDecision", "decide_ladder", "fixed_plan", "plan_ladder_for"]

log = logging.getLogger(__name__)

CRF_MAX = 40.0                  # the highest CRF a rung may get (the lowest is PerTitleSettings.min_crf)
IDR_HEADROOM = 2.0              # IDR pictures a capped rung's VBV buffer holds
MIN_PEAK_BPS = 16_000           # the lowest VBV cap a capped rung gets
DOMINATED_FRACTION = 0.8        # a rung needing this share of the next larger kept rung's rate is dropped


@dataclass(frozen=True, slots=True, kw_only=True)
class RungDecision:
    """Why one candidate rung was kept or dropped, and how it is encoded: for the job report."""

    name: str
    width: int
    height: int
    is_kept: bool
    reason: str                        # stable: fixed, lowest_rung, adds_quality, adds_too_little, dominated,
                                       # only_other_rung
    rate_control: str                  # stable: average_bitrate (the fixed rung's), capped_crf
    message: str                       # one sentence a person can read
    fixed_bitrate_bps: int             # what the fixed ladder gives this rung
    bitrate_bps: int                   # the average the rung is encoded at (fixed) or predicted to reach (CRF)
    peak_bitrate_bps: int              # the VBV max rate
    vbv_buffer_s: float | None = None  # the VBV buffer, in seconds of peak_bitrate_bps / 1.1 (Rendition's unit)
    is_extrapolated: bool = False      # its CRF is below every probe's: bitrate_bps is a guess, the cap a bound
    crf: float | None = None
    quality_db: float | None = None            # predicted, at the rung's own size
    fixed_quality_db: float | None = None      # predicted for the fixed rung, same size
    display_quality_db: float | None = None    # predicted, upscaled to display size
    gain_db: float | None = None               # display-size quality over the kept rung below

    def as_dict(self) -> dict:
        def rounded(value: float | None) -> float | None:
            return None if value is None or not math.isfinite(value) else round(value, 2)
        return {"name": self.name, "width": self.width, "height": self.height, "kept": self.is_kept,
                "reason": self.reason, "rate_control": self.rate_control, "message": self.message,
                "fixed_bitrate_bps": self.fixed_bitrate_bps, "bitrate_bps": self.bitrate_bps,
                "peak_bitrate_bps": self.peak_bitrate_bps, "crf": self.crf, "vbv_buffer_s": self.vbv_buffer_s,
                "extrapolated": self.is_extrapolated,
                "predicted": {"quality_db": rounded(self.quality_db), "fixed_quality_db": rounded(self.fixed_quality_db),
                              "display_quality_db": rounded(self.display_quality_db),
                              "gain_db": rounded(self.gain_db)}}


@dataclass(frozen=True, slots=True, kw_only=True)
class LadderPlan:
    """The renditions to encode and why: every candidate rung's decision, largest first."""

    mode: LadderMode
    renditions: tuple[Rendition, ...]
    decisions: tuple[RungDecision, ...]
    settings: PerTitleSettings | None = None      # per-title only
    analysis: ComplexityAnalysis | None = None
    fallback_reason: str | None = None            # per-title was asked for but could not be decided

    def as_dict(self, result: TranscodeResult | None = None) -> dict:
        """The plan as the job report and `series ingest --json` print it (JSON-safe).

        With the transcode's `result`, each kept rung also gets what was measured: bytes written, average
        and largest-segment bit rate (audio and TS included, in bits/s) and the sampled PSNR/SSIM;
        dropped rungs get `"measured": null`.
        """
        measured = {r.rendition.name: _measured(r, result.duration_s) for r in result.renditions} if result else {}
        rungs = []
        for decision in self.decisions:
            rung = decision.as_dict()
            if result is not None:
                rung["measured"] = measured.get(decision.name)
            rungs.append(rung)
        plan: dict = {"mode": self.mode.value, "fallback_reason": self.fallback_reason, "rungs": rungs}
        if self.settings is not None:
            plan["metric"] = self.settings.metric.value
            plan["thresholds"] = {"enough_db": self.settings.enough_db, "max_loss_db": self.settings.max_loss_db,
                                  "min_gain_db": self.settings.min_gain_db, "max_crf": self.settings.max_crf,
                                  "min_crf": self.settings.min_crf}
        if self.analysis is not None:
            analysis = self.analysis
            plan["analysis"] = {"windows": len(analysis.windows),
                                "sampled_s": round(float(sum(w.frames for w in analysis.windows) / analysis.frame_rate), 2),
                                "measured_frames": analysis.measured_frames,
                                "probe_crfs": list(self.settings.probe_crfs) if self.settings else [],
                                "cpu_s": round(analysis.cpu_s, 2), "wall_s": round(analysis.wall_s, 2)}
        return plan


def _measured(encoded: EncodedRendition, duration_s: Fraction) -> dict:
    sizes = [segment.path.stat().st_size for segment in encoded.segments]
    peak = max((size * 8 / segment.duration_s for size, segment in zip(sizes, encoded.segments)), default=0)
    quality = encoded.quality.as_dict() if encoded.quality else {}
    return {"bytes": sum(sizes), "average_bitrate_bps": round(sum(sizes) * 8 / duration_s) if duration_s else 0,
            "peak_segment_bitrate_bps": round(peak), "psnr_db": quality.get("psnr_db"), "ssim": quality.get("ssim")}


def plan_ladder_for(source: str | os.PathLike, display_width: int, display_height: int,
                    settings: LadderSettings = LadderSettings()) -> LadderPlan:
    """The ladder for `source` (displayed at the given size, after rotation) in settings.mode.

    FIXED gives exactly plan_ladder(). PER_TITLE probes the episode first (a few percent of its
    transcode's CPU; see pipeline/per_title/complexity.py); should that fail, the fixed ladder is returned with
    `fallback_reason` set, as the transcode will judge the source itself. Never raises for the content.
    """
    candidates = plan_ladder(display_width, display_height, settings)
    if settings.mode == LadderMode.FIXED:
        return fixed_plan(candidates)
    try:
        analysis = analyze_complexity(source, candidates, settings)
    except TranscodeError as exc:
        log.warning("per-title analysis failed, using the fixed ladder: %s", exc)
        return fixed_plan(candidates, fallback_reason=str(exc))
    return decide_ladder(candidates, analysis, settings.per_title)


def fixed_plan(candidates: list[Rendition], fallback_reason: str | None = None) -> LadderPlan:
    """Every candidate as plan_ladder() made it."""
    decisions = tuple(RungDecision(name=r.name, width=r.width, height=r.height, is_kept=True, reason="fixed",
                                   rate_control="average_bitrate", message="the fixed ladder",
                                   fixed_bitrate_bps=r.video_bitrate_bps, bitrate_bps=r.video_bitrate_bps,
                                   peak_bitrate_bps=r.maxrate_bps)
                      for r in candidates)
    return LadderPlan(mode=LadderMode.FIXED if fallback_reason is None else LadderMode.PER_TITLE,
                      renditions=tuple(candidates), decisions=decisions, fallback_reason=fallback_reason)


def decide_ladder(candidates: list[Rendition], analysis: ComplexityAnalysis, settings: PerTitleSettings) -> LadderPlan:
    """The per-title ladder from the probes of `candidates` (largest first); see the module docstring."""
    probes = {probe.rendition.name: probe for probe in analysis.rungs}
    unit = "dB" if settings.metric == QualityMetric.PSNR else "dB SSIM"
    rated = [_rate(candidate, probes[candidate.name], settings, unit) for candidate in candidates]
    decisions: dict[str, RungDecision] = {}
    lowest, *larger = list(reversed(rated))         # smallest first
    decisions[lowest.name] = replace(lowest, reason="lowest_rung", message=(
        f"{lowest.message}; the lowest rung is always kept (a variant under 192 kbit/s for iOS cellular)"))
    below = lowest
    for rung in larger:
        gain = rung.display_quality_db - below.display_quality_db
        if gain < settings.min_gain_db:
            decisions[rung.name] = replace(rung, is_kept=False, reason="adds_too_little", gain_db=gain, message=(
                f"dropped: {gain:+.1f} {unit} over {below.name} at display size, under the "
                f"{settings.min_gain_db:g} {unit} a rung must add"))
        else:
            decisions[rung.name] = replace(rung, reason="adds_quality", gain_db=gain,
                                           message=f"{rung.message}; {gain:+.1f} {unit} over {below.name}")
            below = rung
    above = None
    for rung in rated:                              # largest first: a rung nearly as dear as the one above
        decision = decisions[rung.name]             # it shows less for the same bits (a player would
        if not decision.is_kept or decision.name == lowest.name:   # switch between equals)
            above = decision if decision.is_kept else above
            continue
        if above is not None and _budget(decision) >= DOMINATED_FRACTION * _budget(above):
            decisions[rung.name] = replace(decision, is_kept=False, reason="dominated", message=(
                f"dropped: {'up to ' if decision.is_extrapolated else '~'}{_budget(decision) // 1000} kbit/s, "
                f"{_budget(decision) / _budget(above):.0%} of {above.name}'s, which shows more"))
        else:
            above = decision
    if len(candidates) > 1 and not any(d.is_kept for name, d in decisions.items() if name != lowest.name):
        largest = decisions[rated[0].name]
        decisions[largest.name] = replace(largest, is_kept=True, reason="only_other_rung", message=(
            f"kept though it adds {largest.gain_db:+.1f} {unit}: a master needs two bit rates at least"))
    ordered = tuple(decisions[candidate.name] for candidate in candidates)
    renditions = tuple(_rendition(candidate, decision) for candidate, decision in zip(candidates, ordered)
                       if decision.is_kept)
    return LadderPlan(mode=LadderMode.PER_TITLE, renditions=renditions, decisions=ordered, settings=settings,
                      analysis=analysis)


def _rate(candidate: Rendition, probe: RungProbe, settings: PerTitleSettings, unit: str) -> RungDecision:
    """The rung's rate control from its probes (kept for now; the drop pass decides that)."""
    curve = _Curve(probe.points)
    fixed_rate = candidate.video_bitrate_bps
    fixed_crf = curve.crf_for_rate(fixed_rate)
    fixed_quality = curve.quality(fixed_crf)
    aim = fixed_quality - settings.max_loss_db
    if settings.enough_db is not None:
        aim = min(aim, settings.enough_db)
    # the CRF reaching the aim, but never past max_crf, and never below the fixed rate's own (more bits)
    # nor min_crf (near-lossless: where the fixed rung is finer still, its bits are not seen)
    crf = min(curve.crf_for_quality(aim), settings.max_crf, CRF_MAX)
    crf = round(max(crf, fixed_crf, settings.min_crf), 1)
    rate = round(curve.rate(crf))
    common = dict(name=candidate.name, width=candidate.width, height=candidate.height, is_kept=True, reason="",
                  fixed_bitrate_bps=fixed_rate, fixed_quality_db=fixed_quality)
    if rate >= settings.full_rate_fraction * fixed_rate:
        return RungDecision(**common, rate_control="average_bitrate", bitrate_bps=fixed_rate,
                            peak_bitrate_bps=candidate.maxrate_bps, quality_db=fixed_quality,
                            display_quality_db=curve.display_quality(fixed_crf),
                            message=(f"fixed rate {fixed_rate // 1000} kbit/s: reaching {aim:.1f} {unit} would "
                                     f"take {rate / fixed_rate:.0%} of it"))
    # at least MIN_PEAK_BPS: x264 takes the cap in kbit/s, and 0 would turn the VBV off
    peak = min(candidate.maxrate_bps, max(MIN_PEAK_BPS, round(settings.peak_ratio * rate)))
    is_extrapolated = crf < min(curve.crfs)
    if is_extrapolated:
        # below the probes the rate is extrapolated, and measured 0.5-2.1x the prediction at CRF 8-12:
        # a cap from it starved text and grain of the quality the CRF was chosen for. The fixed rung's
        # average rate caps it instead: never above the fixed rung's rate, and x264's CRF spends less
        # where the content allows
        peak = min(candidate.maxrate_bps, fixed_rate)
    # the buffer holds two of the rung's IDRs, or x264 starves every GOP's first picture to fit it (a
    # still picture's 2 s of average rate can be less than one IDR); never more than the fixed rung's
    buffer_s = min(max(candidate.vbv_buffer_s, IDR_HEADROOM * curve.idr_bits(crf) * 1.1 / peak),
                   candidate.bufsize_bits * 1.1 / peak)
    return RungDecision(**common, rate_control="capped_crf", bitrate_bps=rate, peak_bitrate_bps=peak,
                        is_extrapolated=is_extrapolated, vbv_buffer_s=math.floor(buffer_s * 1000) / 1000,   # down: never past the fixed buffer
                        crf=crf, quality_db=curve.quality(crf), display_quality_db=curve.display_quality(crf),
                        message=(f"CRF {crf:g} for {curve.quality(crf):.1f} {unit} at ~{rate / 1000:.0f} kbit/s "
                                 f"(fixed: {fixed_quality:.1f} {unit} at {fixed_rate // 1000} kbit/s), "
                                 f"capped at {peak // 1000} kbit/s"))


def _budget(decision: RungDecision) -> int:
    """The rate a rung is planned at: its predicted average, or its cap where no prediction holds."""
    return decision.peak_bitrate_bps if decision.is_extrapolated else decision.bitrate_bps


def _rendition(candidate: Rendition, decision: RungDecision) -> Rendition:
    if decision.rate_control == "average_bitrate":
        return candidate                     # exactly the fixed rung
    return replace(candidate, video_bitrate_bps=decision.bitrate_bps, crf=decision.crf,
                   peak_bitrate_bps=decision.peak_bitrate_bps, vbv_buffer_s=decision.vbv_buffer_s)


class _Curve:
    """A rung's probes as piecewise-linear functions of CRF: log bit rate, quality, display quality.

    Linear beyond the probed CRFs too (log rate and dB are both close to linear in CRF); the CRF a rung
    gets is clamped to [min_crf, CRF_MAX], the prediction of the fixed rung's quality is not.
    """

    def __init__(self, points: tuple[ProbePoint, ...]) -> None:
        self.crfs = [p.crf for p in points]
        self.log_rates = [math.log(max(1, p.bitrate_bps)) for p in points]
        self.log_idr_bits = [math.log(max(1, p.idr_bits)) for p in points]
        self.qualities = [p.quality_db for p in points]
        self.display_qualities = [p.display_quality_db for p in points]

    def rate(self, crf: float) -> float:
        return math.exp(_interpolate(self.crfs, self.log_rates, crf))

    def idr_bits(self, crf: float) -> float:
        return math.exp(_interpolate(self.crfs, self.log_idr_bits, crf))

    def quality(self, crf: float) -> float:
        return _interpolate(self.crfs, self.qualities, crf)

    def display_quality(self, crf: float) -> float:
        return _interpolate(self.crfs, self.display_qualities, crf)

    def crf_for_rate(self, rate_bps: float) -> float:
        return _inverse(self.crfs, self.log_rates, math.log(rate_bps))

    def crf_for_quality(self, quality_db: float) -> float:
        return _inverse(self.crfs, self.qualities, quality_db)


def _interpolate(xs: list[float], ys: list[float], x: float) -> float:
    if len(xs) == 1:
        return ys[0]
    k = min(max(1, sum(1 for value in xs if value < x)), len(xs) - 1)   # the segment x falls on, or an end one
    x0, x1, y0, y1 = xs[k - 1], xs[k], ys[k - 1], ys[k]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _inverse(xs: list[float], ys: list[float], y: float) -> float:
    """The x where the decreasing function reaches y (linear past the ends too). On a segment that does
    not decrease (a flat curve, or noise on one), any larger CRF costs nothing: CRF_MAX."""
    if len(xs) == 1:
        return xs[0]
    for k in range(1, len(xs)):
        if ys[k] <= y or k == len(xs) - 1:
            x0, x1, y0, y1 = xs[k - 1], xs[k], ys[k - 1], ys[k]
            if y1 >= y0:
                return CRF_MAX
            return x0 + (x1 - x0) * (y - y0) / (y1 - y0)
    return CRF_MAX
