"""What the per-title benchmark measures on a ladder's output: quality against the source, bytes, bit rates.

Quality comes from one ffmpeg CLI run per ladder (the imageio-ffmpeg build, which has libvmaf): the
source is decoded once and split to every rung; each rung's segments are read back in order (the
concat protocol), upscaled bicubically to the source's size for VMAF, PSNR-Y and SSIM (libvmaf's
features), and compared at their own size with PSNR-Y against the source scaled down bilinearly,
as pipeline/encode/rendition_output.py scales it.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import av
from per_title_corpus import ffmpeg_exe

SEGMENT_TARGET_S = 6       # peak windows of 0.5x to 1.5x this (RFC 8216 4.1), as packager/hls/playlist.py measures
# Our renditions carry no colour tags (their pixels keep the source's range and matrix); a tagged source
# (Big Buck Bunny: limited range, BT.709) against an untagged rung makes FFmpeg 9 insert a range
# conversion, and every rung of ours measured ~35 dB. So our rungs are given the source's tags, pixels
# untouched; the ffmpeg CLI's renditions carry their own tags, which FFmpeg converts by when they differ.
RANGES = {1: "tv", 2: "pc"}
COLORSPACES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"}


def source_tags(source: Path) -> str:
    """A setparams filter giving a frame the source's colour range and matrix, or "" for an untagged source."""
    with av.open(str(source)) as container:
        frame = next(container.decode(video=0))
    tags = []
    if frame.color_range in RANGES:
        tags.append(f"range={RANGES[frame.color_range]}")
    if frame.colorspace in COLORSPACES:
        tags.append(f"colorspace={COLORSPACES[frame.colorspace]}")
    return "setparams=" + ":".join(tags) + "," if tags else ""


def segments_of(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg_*.ts"))


def ladder_quality(source: Path, directories: dict[str, Path], display: tuple[int, int],
                   subsample: int, retag: str = "") -> dict[str, dict]:
    """rung name -> {vmaf, vmaf_min, psnr_y, ssim, own_psnr_y, width, height} over the whole episode.

    `retag` (source_tags()) is put on every rung before comparing: for our untagged renditions."""
    names = list(directories)
    sizes = {name: _frame_size(segments_of(directories[name])[0]) for name in names}
    width, height = display
    with tempfile.TemporaryDirectory() as logs:
        command = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-i", str(source)]
        for name in names:
            command += ["-i", "concat:" + "|".join(str(p) for p in segments_of(directories[name]))]
        graph = [f"[0:v]setpts=PTS-STARTPTS,format=yuv420p,split={2 * len(names)}"
                 + "".join(f"[rf{i}][ro{i}]" for i in range(len(names)))]
        for i, name in enumerate(names):
            w, h = sizes[name]
            graph += [
                f"[{i + 1}:v]setpts=PTS-STARTPTS,{retag}split=2[df{i}][do{i}]",
                f"[df{i}]scale={width}:{height}:flags=bicubic,format=yuv420p[up{i}]",
                f"[up{i}][rf{i}]libvmaf=n_threads=2:n_subsample={subsample}:feature='name=psnr|name=float_ssim'"
                f":log_fmt=json:log_path={logs}/vmaf{i}.json[vo{i}]",
                f"[ro{i}]scale={w}:{h}:flags=bilinear[rs{i}]",
                f"[do{i}][rs{i}]psnr=stats_file={logs}/psnr{i}.log[po{i}]",
            ]
        command += ["-filter_complex", ";".join(graph)]
        for i in range(len(names)):
            command += ["-map", f"[vo{i}]", "-map", f"[po{i}]"]
        command += ["-f", "null", "-"]
        subprocess.run(command, check=True)
        results = {}
        for i, name in enumerate(names):
            pooled = json.loads(Path(logs, f"vmaf{i}.json").read_text())["pooled_metrics"]
            own = [float(m) for m in re.findall(r"psnr_y:([0-9.]+|inf)", Path(logs, f"psnr{i}.log").read_text())]
            results[name] = {"width": sizes[name][0], "height": sizes[name][1],
                             "vmaf": pooled["vmaf"]["mean"], "vmaf_min": pooled["vmaf"]["min"],
                             "psnr_y": pooled["psnr_y"]["mean"], "ssim": pooled["float_ssim"]["mean"],
                             "own_psnr_y": statistics.fmean(min(v, 99.0) for v in own)}
    return results


def rung_bytes(directory: Path) -> dict:
    """Bytes as stored (TS), video bytes alone, the video bit rate, and the segment peak over the average."""
    durations, sizes, video_bytes = [], [], 0
    for segment in segments_of(directory):
        with av.open(str(segment)) as container:
            stream = container.streams.video[0]
            times = []
            for packet in container.demux(stream):
                if packet.size:
                    video_bytes += packet.size
                    times.append(packet.pts * packet.time_base)
            frame_s = 1 / Fraction(stream.average_rate or 30)
            durations.append(max(times) - min(times) + frame_s)
        sizes.append(segment.stat().st_size)
    total_s = sum(durations)
    average = sum(sizes) * 8 / total_s
    return {"bytes": sum(sizes), "video_bytes": video_bytes, "duration_s": float(total_s),
            "video_bitrate_bps": video_bytes * 8 / float(total_s), "average_bitrate_bps": float(average),
            "peak_to_average": float(_peak(durations, sizes) / average)}


def _peak(durations: list[Fraction], sizes: list[int]) -> Fraction:
    """Largest rate of contiguous segments lasting 0.5x to 1.5x the target (packager/hls/playlist.py peak_bandwidth)."""
    best = Fraction(0)
    for start in range(len(durations)):
        seconds, bits = Fraction(0), 0
        for end in range(start, len(durations)):
            seconds += durations[end]
            bits += sizes[end] * 8
            if seconds > SEGMENT_TARGET_S * 1.5:
                break
            if seconds >= SEGMENT_TARGET_S * 0.5:
                best = max(best, bits / seconds)
    return best or max(Fraction(s * 8) / d for s, d in zip(sizes, durations))


def _frame_size(segment: Path) -> tuple[int, int]:
    with av.open(str(segment)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


def hull(points: list[tuple[str, str, float, float]]) -> list[tuple[str, str, float, float]]:
    """The upper-left convex hull of (ladder, rung, bit rate, quality): the encodes no mix of others beats."""
    ordered = sorted(points, key=lambda p: (p[2], -p[3]))
    upper: list[tuple[str, str, float, float]] = []
    for point in ordered:
        if upper and point[3] <= upper[-1][3]:
            continue                    # more bits for no more quality: never on the hull
        while len(upper) >= 2 and _turns_left(upper[-2], upper[-1], point):
            upper.pop()
        upper.append(point)
    return upper


def _turns_left(a, b, c) -> bool:
    return (b[2] - a[2]) * (c[3] - a[3]) - (b[3] - a[3]) * (c[2] - a[2]) >= 0
