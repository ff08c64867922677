"""validate(): the verdict on an upload, with every reason a person can act on.

Reason codes (stable; the API, the CLI and the uploader's UI key on them):
    file_too_large       the file is bigger than ValidationRules.max_size_bytes (checked before opening it)
    empty_file           0 bytes
    not_media            FFmpeg cannot open it as media (text renamed .mp4, a mangled header, ...)
    no_video_stream      no video stream; the message says "audio only" when there is audio. Audio-only
                         uploads use this code too, so clients have one code for "there is no picture".
    still_image          an image, not a video: an image demuxer (image2, png_pipe, ...), an image codec
                         (png, mjpeg, ...) holding at most one frame, or a video stream that decodes to one
                         frame. Duration rules are not applied to stills; the duration of one picture means
                         nothing to the uploader.
    no_decodable_video   a video stream exists but not one frame of it decodes
    too_short/too_long   the duration is outside [min_duration_s, max_duration_s], both bounds inclusive to
                         the frame (DURATION_TOLERANCE_S absorbs time-base rounding, far below one frame)
    unknown_duration     decode=False and the header does not say how long the file is
    truncated            the header promises more than TRUNCATION_TOLERANCE_S beyond the last decoded frame
    decode_errors        a packet failed to decode (an exception from the decoder, a packet or frame
                         flagged corrupt) before the last decoded frame, or more than
                         TAIL_DECODE_ERROR_LIMIT failures after it. A few failures after the last good
                         frame are what a cut-off upload looks like; `truncated` reports those.
    resolution_too_high  a side is longer than max_side_px (as stored); such a file is not decoded at all.
                         Also a picture that grows past the limit mid-stream (an in-band SPS change): the
                         decode pass stops there and the message says when
    resolution_too_low   the short side is under min_short_side_px (in the header, or in any picture)
    over_work_budget     width x height x frame rate x duration is over max_decoded_pixels (the header's
                         claim, before any decode; and the pictures actually decoded, which stop there)
    frame_rate_too_high  the average input frame rate is above max_frame_rate
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.errors import EmptyMedia, TruncatedMedia, UnreadableMedia
from pipeline.inspect.frame_limits import DEFAULT_MAX_DECODED_PIXELS, FrameLimits, describe_pixels
from pipeline.inspect.measure import DecodeStats, decode_video
from pipeline.inspect.probe import MediaInfo, probe

DURATION_TOLERANCE_S = 0.001          # bounds are exact to the frame; this only absorbs time-base rounding
TRUNCATION_TOLERANCE_S = 1.0
TAIL_DECODE_ERROR_LIMIT = 3
IMAGE_DEMUXERS = {"image2", "image2pipe"}
IMAGE_CODECS = {"png", "mjpeg", "jpeg2000", "bmp", "tiff", "webp", "gif", "apng", "jpegls", "qoi", "ppm", "pgm"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationRules:
    min_duration_s: float = 30.0
    max_duration_s: float = 20 * 60.0
    max_side_px: int = 4096
    min_short_side_px: int = 128
    max_frame_rate: float = 120.0
    max_size_bytes: int = 8 * 1024**3
    # the work one upload may ask for: width x height summed over every decoded picture
    max_decoded_pixels: int = DEFAULT_MAX_DECODED_PIXELS

    @property
    def frame_limits(self) -> FrameLimits:
        """What every decoded picture is held to (pipeline/inspect/frame_limits.py)."""
        return FrameLimits(max_side_px=self.max_side_px, min_short_side_px=self.min_short_side_px,
                           max_decoded_pixels=self.max_decoded_pixels)


@dataclass(frozen=True, slots=True, kw_only=True)
class Issue:
    code: str          # stable, for machines: "too_long", "no_video_stream", ...
    message: str       # a sentence for the uploader
    how_to_fix: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationReport:
    info: MediaInfo | None
    issues: tuple[Issue, ...] = field(default_factory=tuple)
    decoded: DecodeStats | None = None
    size_bytes: int | None = None
    path: Path | None = None

    @property
    def is_acceptable(self) -> bool:
        return not self.issues

    @property
    def duration_s(self) -> float | None:
        """Measured from decoded frames when there was a decode pass, else the header's claim."""
        if self.decoded is not None:
            return self.decoded.duration_s
        return self.info.header_duration_s if self.info else None

    @property
    def bit_rate_bps(self) -> int | None:
        size = self.info.size_bytes if self.info else self.size_bytes
        duration = self.duration_s
        return round(size * 8 / duration) if size and duration else None

    def as_dict(self) -> dict:
        info, decoded = self.info, self.decoded
        path = info.path if info else self.path
        video = info.video if info else None
        audio = info.audio if info else None
        return {
            "verdict": "accepted" if self.is_acceptable else "rejected",
            "file": path.name if path else None,
            "size_bytes": info.size_bytes if info else self.size_bytes,
            "container": info.container if info else None,
            "streams": [{"index": s.index, "type": s.type, "codec": s.codec} for s in info.streams] if info else [],
            "duration_s": self.duration_s,
            "header_duration_s": info.header_duration_s if info else None,
            "decoded_duration_s": decoded.duration_s if decoded else None,
            "bit_rate_bps": self.bit_rate_bps,
            "video": None if video is None else {
                "codec": video.codec, "width": video.width, "height": video.height,
                "display_width": video.display_width, "display_height": video.display_height,
                "rotation": video.rotation, "pix_fmt": video.pix_fmt, "bit_depth": video.bit_depth,
                "frame_rate": float(video.frame_rate) if video.frame_rate else None,
                "frame_rate_mode": _frame_rate_mode(decoded),
                "min_frame_rate": decoded.min_frame_rate if decoded else None,
                "max_frame_rate": decoded.max_frame_rate if decoded else None,
            },
            "audio": {
                "present": audio is not None,
                "codec": audio.codec if audio else None,
                "channels": audio.channels if audio else None,
                "sample_rate": audio.sample_rate if audio else None,
            },
            "decode": {
                "performed": decoded is not None,
                "frames": decoded.frames if decoded else None,
                "errors": decoded.error_count if decoded else None,
                "first_error_s": decoded.first_error_s if decoded else None,
                "stopped_early": decoded.stopped_early if decoded else None,
            },
            "reasons": [{"code": i.code, "message": i.message, "how_to_fix": i.how_to_fix} for i in self.issues],
        }


def _frame_rate_mode(decoded: DecodeStats | None) -> str | None:
    if decoded is None or decoded.is_variable_frame_rate is None:
        return None
    return "variable" if decoded.is_variable_frame_rate else "constant"


def validate(
    path: str | os.PathLike, rules: ValidationRules = ValidationRules(), *, decode: bool = True
) -> ValidationReport:
    """Probe `path` and judge it against `rules`. Never raises for bad media: the report says why.

    With decode=True the first video stream is decoded once (bounded: at most max_duration_s x 240 frames,
    and it stops once the file is clearly too long) so the duration is measured, not trusted from the
    header, and corrupt packets are counted. Ingest passes decode=False because the transcoder decodes anyway.
    """
    path = Path(path)
    size_bytes = path.stat().st_size
    if size_bytes > rules.max_size_bytes:
        return ValidationReport(info=None, size_bytes=size_bytes, path=path, issues=(Issue(
            code="file_too_large",
            message=f"{path.name} is {_size(size_bytes)}; the limit is {_size(rules.max_size_bytes)}",
            how_to_fix="export the episode at a lower bitrate",
        ),))
    try:
        info = probe(path)
    except UnreadableMedia as exc:
        how_to_fix = ("upload the episode file again" if isinstance(exc, (EmptyMedia, TruncatedMedia))
                      else "upload a video file such as MP4, MOV, MKV or WebM")
        return ValidationReport(info=None, size_bytes=size_bytes, path=path,
                                issues=(Issue(code=exc.code, message=str(exc), how_to_fix=how_to_fix),))
    decoded = None
    if decode and info.video is not None and info.video.codec != "none" and not _too_big_to_decode(info, rules):
        limits = rules.frame_limits
        if min(info.video.width, info.video.height) < rules.min_short_side_px:
            limits = replace(limits, min_short_side_px=0)   # the header's size already says so, once
        decoded = decode_video(path, rules.max_duration_s, limits)
    return ValidationReport(info=info, size_bytes=size_bytes, path=path, decoded=decoded,
                            issues=tuple(check_info(info, rules, decoded)))


def check_info(info: MediaInfo, rules: ValidationRules, decoded: DecodeStats | None = None) -> list[Issue]:
    """Every rule `info` (and the decode pass, when there was one) breaks, in the order a person fixes them."""
    video = info.video
    if video is None:
        return [Issue(
            code="no_video_stream",
            message=f"{info.path.name} has no video stream" + (" (it is audio only)" if info.audio else ""),
            how_to_fix="upload the episode as a video file",
        )]
    if _is_still(info, decoded):
        return [Issue(code="still_image", message=f"{info.path.name} is a still image, not a video",
                      how_to_fix="upload the episode as a video file")]
    issues: list[Issue] = []
    if video.codec == "none":
        issues.append(Issue(code="no_decodable_video",
                            message="The video stream is in a format FFmpeg has no decoder for",
                            how_to_fix="re-export the episode as H.264, HEVC, VP9 or AV1 and upload it again"))
    elif decoded is not None and decoded.frames == 0:
        issues.append(Issue(code="no_decodable_video",
                            message=f"Not one picture of the {video.codec} video stream could be decoded",
                            how_to_fix="re-export the episode with a standard encoder and upload it again"))
    if decoded is not None and decoded.frames:
        issues.extend(_check_truncation(info, decoded))
    if decoded is not None and decoded.error_count:
        issues.extend(_check_decode_errors(decoded))
    if max(video.width, video.height) > rules.max_side_px:
        issues.append(Issue(
            code="resolution_too_high",
            message=f"Video is {video.width}x{video.height}; the limit is {rules.max_side_px} px a side",
            how_to_fix=f"export at most {rules.max_side_px} px on the long side",
        ))
    elif 0 < min(video.width, video.height) < rules.min_short_side_px:
        issues.append(Issue(
            code="resolution_too_low",
            message=f"Video is {video.width}x{video.height}; the short side must be at least "
                    f"{rules.min_short_side_px} px",
            how_to_fix=f"export at least {rules.min_short_side_px} px on the short side",
        ))
    if decoded is not None and decoded.over_limit is not None:
        breach = decoded.over_limit
        issues.append(Issue(code=breach.code, message=breach.message, how_to_fix=breach.how_to_fix))
        return issues      # the pass stopped there: duration and frame rate were not measured
    frame_rate = (decoded.average_frame_rate if decoded else None) or (
        float(video.frame_rate) if video.frame_rate else None)
    issues.extend(check_work(video.width, video.height, frame_rate, info.header_duration_s, rules))
    if frame_rate and frame_rate > rules.max_frame_rate:
        issues.append(Issue(
            code="frame_rate_too_high",
            message=f"Video runs at {frame_rate:.2f} fps; the limit is {rules.max_frame_rate:g} fps",
            how_to_fix="export at 60 fps or less",
        ))
    if decoded is None:
        issues.extend(check_duration(info.header_duration_s, rules))
    elif decoded.frames:
        duration_s, at_least = decoded.duration_s, decoded.stopped_early
        if at_least and info.header_duration_s and info.header_duration_s > duration_s:
            duration_s, at_least = info.header_duration_s, False  # the header's longer claim is plausible here
        issues.extend(check_duration(duration_s, rules, at_least=at_least))
    return issues


def check_work(width: int, height: int, frame_rate: float | None, duration_s: float | None,
               rules: ValidationRules) -> list[Issue]:
    """The work budget, judged before any transcoding: pixels per second x duration against
    max_decoded_pixels. The transcoder's decode holds the pictures it really gets to the same budget."""
    if not frame_rate or not duration_s:
        return []
    pixels = width * height * frame_rate * duration_s
    if pixels <= rules.max_decoded_pixels:
        return []
    return [Issue(
        code="over_work_budget",
        message=(f"{width}x{height} at {frame_rate:.4g} fps for {format_duration(duration_s)} is "
                 f"{describe_pixels(pixels)} pixels to decode; the limit is "
                 f"{describe_pixels(rules.max_decoded_pixels)} (about 4K at 30 fps for 20 minutes)"),
        how_to_fix="export the episode at a lower resolution or frame rate",
    )]


def check_duration(duration_s: float | None, rules: ValidationRules, *, at_least: bool = False) -> list[Issue]:
    """Duration rule, shared by validate() and the decoded-duration check after transcoding.

    Both bounds are inclusive: exactly 30.000 s passes a 30 s minimum. `at_least` says the duration is
    a lower bound (the decode pass stopped early), so the sentence does not claim to know the length.
    """
    if duration_s is None:
        return [Issue(code="unknown_duration", message="The file does not say how long it is",
                      how_to_fix="re-export the episode with a standard encoder")]
    if duration_s < rules.min_duration_s - DURATION_TOLERANCE_S:
        return [Issue(code="too_short",
                      message=(f"Episode is {format_duration(duration_s)}; "
                               f"the minimum is {format_duration(rules.min_duration_s)}"),
                      how_to_fix="upload a longer episode")]
    if duration_s > rules.max_duration_s + DURATION_TOLERANCE_S:
        prefix = "at least " if at_least else ""
        return [Issue(code="too_long",
                      message=(f"Episode is {prefix}{format_duration(duration_s)}; "
                               f"the limit is {format_duration(rules.max_duration_s)}"),
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


def _is_still(info: MediaInfo, decoded: DecodeStats | None) -> bool:
    video = info.video
    if info.container in IMAGE_DEMUXERS or info.container.endswith("_pipe"):
        return True
    frames = decoded.frames if decoded is not None else video.frame_count
    if video.codec in IMAGE_CODECS and frames <= 1:
        return True
    return decoded is not None and decoded.frames == 1


def _check_truncation(info: MediaInfo, decoded: DecodeStats) -> list[Issue]:
    # The video stream's own duration first: the container's is the longest stream's, and audio that runs
    # on past the last picture is not a cut-off upload.
    header_s = info.video.header_duration_s or info.header_duration_s
    if decoded.stopped_early or not header_s or decoded.duration_s >= header_s - TRUNCATION_TOLERANCE_S:
        return []
    return [Issue(
        code="truncated",
        message=(f"The file says it lasts {format_duration(header_s)} but its pictures end at "
                 f"{format_duration(decoded.duration_s)}; the upload was probably cut off"),
        how_to_fix="upload the complete file again",
    )]


def _check_decode_errors(decoded: DecodeStats) -> list[Issue]:
    return check_decode_errors(decoded.error_count, decoded.tail_error_count, decoded.first_error_s,
                               has_frames=decoded.frames > 0)


def check_decode_errors(error_count: int, tail_error_count: int, first_error_s: float | None, *,
                        has_frames: bool = True) -> list[Issue]:
    """The `decode_errors` rule, for this module's decode pass and for the transcoder's (ingest):
    any damage before the last good picture, or more than TAIL_DECODE_ERROR_LIMIT after it."""
    mid_stream = error_count - tail_error_count
    if mid_stream == 0 and tail_error_count <= TAIL_DECODE_ERROR_LIMIT and has_frames:
        return []
    where = f" starting at {format_duration(first_error_s)}" if first_error_s is not None else ""
    plural = "s" if error_count != 1 else ""
    return [Issue(
        code="decode_errors",
        message=f"{error_count} damaged packet{plural} in the video{where}; viewers would see glitches",
        how_to_fix="export the episode again from the original and upload the new file",
    )]


def _too_big_to_decode(info: MediaInfo, rules: ValidationRules) -> bool:
    # A header claiming 60000x60000 is rejected on its word; decoding it would only allocate huge frames.
    return max(info.video.width, info.video.height) > rules.max_side_px


def _size(size_bytes: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return f"{size_bytes} bytes"
