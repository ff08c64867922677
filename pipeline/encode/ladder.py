"""plan_ladder(): which renditions to encode for a source, chosen by its short side.

Rungs follow Apple's HLS authoring table (16:9) and are transposed for portrait, so 9:16 video gets
1080x1920, 720x1280, ... instead of being squashed into landscape boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True, kw_only=True)
class Rung:
    short_side: int
    video_bitrate_bps: int
    audio_bitrate_bps: int = 128_000
    vbv_buffer_s: float = 2.0    # VBV buffer in seconds of video_bitrate_bps: smaller keeps peaks nearer the average


DEFAULT_RUNGS: tuple[Rung, ...] = (
    Rung(short_side=1080, video_bitrate_bps=6_000_000),
    Rung(short_side=720, video_bitrate_bps=3_000_000),
    Rung(short_side=540, video_bitrate_bps=2_000_000),
    Rung(short_side=360, video_bitrate_bps=730_000, audio_bitrate_bps=96_000),
    # peak <= 192 kbit/s with audio for iOS cellular (Apple 9.21). The peak is measured over 3-9 s
    # windows of segments (RFC 8216 4.1), so a 2 s VBV buffer could add 2/3 of the average rate on
    # top of maxrate; MPEG-TS adds ~60 kbit/s at 30 fps (a PES and a part-filled TS packet per frame).
    # 80 kbit/s video, a 1 s buffer and 32 kbit/s AAC measure about 180 kbit/s peak on pure grain.
    Rung(short_side=234, video_bitrate_bps=80_000, audio_bitrate_bps=32_000, vbv_buffer_s=1.0),
)


class LadderMode(StrEnum):
    FIXED = "fixed"              # every episode gets `rungs` at their bit rates (plan_ladder())
    PER_TITLE = "per-title"      # the rungs this episode needs, at the rates it needs (pipeline/per_title/decision.py)


class QualityMetric(StrEnum):
    PSNR = "psnr"                # luma PSNR, dB
    SSIM = "ssim"                # luma SSIM as dB, -10 log10(1 - SSIM): 0.99 is 20 dB, 0.999 is 30 dB


@dataclass(frozen=True, slots=True, kw_only=True)
class PerTitleSettings:
    """How a per-title ladder is decided (pipeline/per_title/decision.py). Quality thresholds are in dB of `metric`.

    Defaults come from bench/per_title_calibrate.py (VMAF against x264 CRF and probe PSNR, on clips
    other than the benchmark's) and the benchmark (docs/benchmarks.md). Each rung follows the fixed
    rung's predicted quality (less `max_loss_db`) between two x264 constant qualities: `max_crf`, the
    guard where PSNR is blind (it does not see lost grain or texture), and `min_crf`, where a rung is
    near-lossless and stops spending, and `enough_db`, past which a rung's predicted quality buys
    nothing seen. "Enough" was 55 dB with a floor at CRF 12: on flat text, where x264's average bit
    rate undershoots into near-lossless (63-68 dB), the rungs held at a predicted 55 dB (CRF 12-14, six
    below the probes, where the prediction runs 4-6 dB high) measured 49-51 dB, and upscaled as a player
    shows them lost up to 1.4 VMAF; at CRF 8 they were within 0.2 VMAF for two thirds of the fixed
    rungs' bits. 60 dB predicted lands text at CRF 8-10 and keeps a still slide off the floor.
    """

    metric: QualityMetric = QualityMetric.PSNR
    enough_db: float | None = 60.0  # a rung's predicted quality (own size) past which no bits are spent; None: none
    max_loss_db: float = 0.3        # how far below the fixed rung's predicted quality a rung may go to save bits
    min_gain_db: float = 0.5        # a larger rung must add this much at display size over the kept rung below
    max_crf: float = 20.0           # no rung is encoded at a lower constant quality than this x264 CRF ...
    min_crf: float = 8.0            # ... nor at a higher one than this (near-lossless: no more bits are seen)
    full_rate_fraction: float = 0.85  # a rung predicted to need this share of its fixed rate keeps the fixed rung
    peak_ratio: float = 1.8         # a capped-CRF rung's VBV max rate, times its predicted average (Apple 1.30: 2x)
    probe_crfs: tuple[float, ...] = (18.0, 24.0)   # constant qualities each candidate rung is probed at
    sample_fraction: float = 0.03   # share of the episode the probes encode ...
    window_s: float = 0.3           # ... in windows this long ...
    min_windows: int = 3            # ... at least this many ...
    max_windows: int = 24           # ... and at most this many, spread over the episode

    @classmethod
    def for_metric(cls, metric: QualityMetric) -> PerTitleSettings:
        """The defaults in `metric`'s dB. SSIM's are from the calibration clips only (the benchmark ran
        PSNR): 0.1 dB of SSIM cost up to 2 VMAF on grain there, 0.3 dB 0.9 on a talking head. SSIM has
        no "enough" (its 30 dB, SSIM 0.999, was the PSNR 55 dB's peer and not re-measured): min_crf stops it."""
        if metric == QualityMetric.SSIM:
            return cls(metric=metric, enough_db=None, max_loss_db=0.1, min_gain_db=0.2)
        return cls(metric=metric)


@dataclass(frozen=True, slots=True, kw_only=True)
class LadderSettings:
    rungs: tuple[Rung, ...] = DEFAULT_RUNGS
    mode: LadderMode = LadderMode.FIXED
    per_title: PerTitleSettings = PerTitleSettings()
    max_renditions: int = 5
    preset: str = "veryfast"     # libx264 preset
    gop_s: float = 2.0           # IDR every 2 s (Apple 1.13)
    segment_s: float = 6.0       # target segment duration (Apple 7.5)
    max_frame_rate: float = 60.0
    min_psnr_db: float = 30.0    # a rung whose sampled luma PSNR falls below this is flagged in the report


@dataclass(frozen=True, slots=True, kw_only=True)
class Rendition:
    name: str                    # "720p": the short side, whatever the orientation
    width: int
    height: int
    video_bitrate_bps: int
    audio_bitrate_bps: int
    vbv_buffer_s: float = 2.0
    crf: float | None = None              # None: average bit rate video_bitrate_bps; else constant quality ...
    peak_bitrate_bps: int | None = None   # ... capped by a VBV at this rate (per-title); video_bitrate_bps is
                                          # then the predicted average
    maxrate_bps: int = field(init=False)
    bufsize_bits: int = field(init=False)

    def __post_init__(self) -> None:
        if self.peak_bitrate_bps is None:
            # capped VBV keeps the peak near the average, as BANDWIDTH must be within 10 % (Apple 1.27)
            object.__setattr__(self, "maxrate_bps", int(self.video_bitrate_bps * 1.1))
            object.__setattr__(self, "bufsize_bits", int(self.video_bitrate_bps * self.vbv_buffer_s))
        else:
            # the buffer the fixed rung would have at this max rate: never more, so a cap at the fixed
            # rung's max rate gives exactly its VBV (and the lowest rung keeps its 192 kbit/s peak)
            object.__setattr__(self, "maxrate_bps", self.peak_bitrate_bps)
            object.__setattr__(self, "bufsize_bits", int(self.peak_bitrate_bps / 1.1 * self.vbv_buffer_s))

    @property
    def is_constant_quality(self) -> bool:
        return self.crf is not None


def plan_ladder(display_width: int, display_height: int, settings: LadderSettings = LadderSettings()) -> list[Rendition]:
    """Renditions for a source of the given displayed size (after rotation), best first.

    Never upscales: rungs above the source's short side are dropped; if the source is smaller than
    every rung, it is encoded once at its own size.
    """
    short, long_ = sorted((display_width, display_height))
    is_portrait = display_height > display_width
    chosen = [rung for rung in settings.rungs if rung.short_side <= short][: settings.max_renditions]
    if not chosen:
        smallest = min(settings.rungs, key=lambda rung: rung.short_side)
        chosen = [Rung(short_side=short, video_bitrate_bps=smallest.video_bitrate_bps,
                       audio_bitrate_bps=smallest.audio_bitrate_bps, vbv_buffer_s=smallest.vbv_buffer_s)]
    renditions = []
    for rung in chosen:
        rung_short = _even(rung.short_side)
        rung_long = _even(round(long_ * rung.short_side / short))
        width, height = (rung_short, rung_long) if is_portrait else (rung_long, rung_short)
        renditions.append(Rendition(
            name=f"{rung.short_side}p",
            width=width,
            height=height,
            video_bitrate_bps=rung.video_bitrate_bps,
            audio_bitrate_bps=rung.audio_bitrate_bps,
            vbv_buffer_s=rung.vbv_buffer_s,
        ))
    return renditions


def _even(value: int) -> int:
    """H.264 4:2:0 needs even dimensions."""
    return max(2, value - value % 2)
