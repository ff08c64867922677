"""plan_ladder(): which renditions to encode for a source, chosen by its short side.

Rungs follow Apple's HLS authoring table (16:9) and are transposed for portrait, so 9:16 video gets
1080x1920, 720x1280, ... instead of being squashed into landscape boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(frozen=True, slots=True, kw_only=True)
class LadderSettings:
    rungs: tuple[Rung, ...] = DEFAULT_RUNGS
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
    maxrate_bps: int = field(init=False)
    bufsize_bits: int = field(init=False)

    def __post_init__(self) -> None:
        # capped VBV keeps the peak near the average, as BANDWIDTH must be within 10 % (Apple 1.27)
        object.__setattr__(self, "maxrate_bps", int(self.video_bitrate_bps * 1.1))
        object.__setattr__(self, "bufsize_bits", int(self.video_bitrate_bps * self.vbv_buffer_s))


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
