"""validate(): the verdict on an upload, with every reason a person can act on."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pipeline.probe import MediaInfo, UnreadableMedia, probe


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationRules:
    min_duration_s: float = 30.0
    max_duration_s: float = 20 * 60.0
    max_side_px: int = 4096
    max_frame_rate: float = 120.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Issue:
    code: str          # stable, for machines: "too_long", "no_video_stream", ...
    message: str       # a sentence for the uploader
    how_to_fix: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationReport:
    info: MediaInfo | None
    issues: tuple[Issue, ...] = field(default_factory=tuple)

    @property
    def is_acceptable(self) -> bool:
        return not self.issues

    def as_dict(self) -> dict:
        video = self.info.video if self.info else None
        audio = self.info.audio if self.info else None
        return {
            "verdict": "accepted" if self.is_acceptable else "rejected",
            "container": self.info.container if self.info else None,
            "duration_s": self.info.header_duration_s if self.info else None,
            "video": None if video is None else {
                "codec": video.codec, "width": video.width, "height": video.height,
                "display_width": video.display_width, "display_height": video.display_height,
                "rotation": video.rotation, "pix_fmt": video.pix_fmt,
                "frame_rate": float(video.frame_rate) if video.frame_rate else None,
            },
            "audio": None if audio is None else {
                "codec": audio.codec, "channels": audio.channels, "sample_rate": audio.sample_rate,
            },
            "reasons": [{"code": i.code, "message": i.message, "how_to_fix": i.how_to_fix} for i in self.issues],
        }


def validate(path: str | os.PathLike, rules: ValidationRules = ValidationRules()) -> ValidationReport:
    """Probe `path` and judge it against `rules`. Never raises for bad media: the report says why."""
    try:
        info = probe(path)
    except UnreadableMedia as exc:
        return ValidationReport(info=None, issues=(Issue(code=exc.code, message=str(exc)),))
    return ValidationReport(info=info, issues=tuple(check_info(info, rules)))


def check_info(info: MediaInfo, rules: ValidationRules) -> list[Issue]:
    issues: list[Issue] = []
    video = info.video
    if video is None:
        issues.append(Issue(
            code="no_video_stream",
            message=f"{info.path.name} has no video stream" + (" (it is audio only)" if info.audio else ""),
            how_to_fix="upload the episode as a video file",
        ))
    else:
        if max(video.width, video.height) > rules.max_side_px:
            issues.append(Issue(
                code="resolution_too_high",
                message=f"Video is {video.width}x{video.height}; the limit is {rules.max_side_px} px a side",
                how_to_fix=f"export at most {rules.max_side_px} px on the long side",
            ))
        if video.frame_rate and float(video.frame_rate) > rules.max_frame_rate:
            issues.append(Issue(
                code="frame_rate_too_high",
                message=f"Video runs at {float(video.frame_rate):.2f} fps; the limit is {rules.max_frame_rate:g} fps",
                how_to_fix="export at 60 fps or less",
            ))
    issues.extend(check_duration(info.header_duration_s, rules))
    return issues


def check_duration(duration_s: float | None, rules: ValidationRules) -> list[Issue]:
    """Duration rule, shared by the header check and the decoded-duration check after transcoding."""
    if duration_s is None:
        return [Issue(code="unknown_duration", message="The file does not say how long it is",
                      how_to_fix="re-export the episode with a standard encoder")]
    if duration_s < rules.min_duration_s:
        return [Issue(code="too_short",
                      message=f"Episode is {format_duration(duration_s)}; the minimum is {format_duration(rules.min_duration_s)}",
                      how_to_fix="upload a longer episode")]
    if duration_s > rules.max_duration_s:
        return [Issue(code="too_long",
                      message=f"Episode is {format_duration(duration_s)}; the limit is {format_duration(rules.max_duration_s)}",
                      how_to_fix="split the episode into shorter parts")]
    return []


def format_duration(seconds: float) -> str:
    """'21 min 4 s', '40 s', '20 min' — as a person says durations."""
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    fraction = seconds - whole
    if minutes and secs:
        return f"{minutes} min {secs} s"
    if minutes:
        return f"{minutes} min" if fraction < 0.001 else f"{minutes} min {fraction:.1f} s"
    return f"{seconds:.1f} s" if fraction >= 0.05 else f"{secs} s"
