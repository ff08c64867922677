"""Benchmark: our transcode against the ffmpeg CLI on the same ladder, presets, GOP and segmenting.

    flock /tmp/bench.lock .venv/bin/python bench/transcode_vs_ffmpeg.py [--seconds 10] [--rounds 3]
        [--inputs landscape,portrait] [--rss-check [--rss-seconds 60,300] [--rss-size 640x360]]

For each input (a generated 1920x1080 landscape and a 1080x1920 portrait clip, made once with the ffmpeg
CLI into var/bench/), runs alternate ours, ffmpeg, ours, ffmpeg, ... so both see the same machine; each
run is its own process, so wall time, CPU time and peak RSS come from the kernel (wait4). On a shared
machine the wall clock is noisy: the ratio is taken per round (adjacent runs) and the median reported,
and every run prints the CPU the rest of the machine used meanwhile ("others"), so a figure says what
load it was measured under. With --rss-check, our peak RSS is then measured on a short and a long input
(--rss-seconds) to show that memory does not grow with episode length. Not a test: it prints figures
and ratios, it asserts nothing.

Both tools get the same settings: one decode, bilinear scale per rung, libx264 High at the same preset,
bit rate, capped VBV and GOP, IDRs forced every 2 s with no scene cuts, AAC 48 kHz stereo at each
rung's audio bit rate, 6 s MPEG-TS segments. Threading is each tool's own: ours one x264 thread per
rendition on a machine with no more cores than rungs, the ffmpeg CLI x264's automatic count (1.5 per
core) in each of its encoders; the run checks that every other x264 option is identical and prints
the output sizes side by side.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

from common import CACHE, ROOT, measure  # noqa: E402  (bench/common.py also puts the project on sys.path)

from pipeline.encode.ladder import LadderSettings, plan_ladder  # noqa: E402
from pipeline.encode.transcode import output_frame_rate  # noqa: E402
from pipeline.inspect.probe import probe  # noqa: E402

INPUTS = {"landscape": (1920, 1080), "portrait": (1080, 1920)}

OURS = """
import sys
from pipeline.encode.ladder import LadderSettings, plan_ladder
from pipeline.encode.transcode import transcode
source, out, width, height, preset = sys.argv[1:6]
settings = LadderSettings(preset=preset)
transcode(source, plan_ladder(int(width), int(height), settings), out, settings)
"""


def generated_input(width: int, height: int, seconds: float) -> Path:
    """A 30 fps test pattern with moving noise and a tone, made once and cached by size and length."""
    path = CACHE / f"src-{width}x{height}-{seconds:g}s.mp4"
    if not path.exists():
        print(f"generating {path.relative_to(ROOT)} ...", flush=True)
        partial = path.with_suffix(".partial.mp4")
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=30:duration={seconds:g}",
             "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds:g}",
             # grain that changes every frame, so the encoders cannot coast on a static pattern
             "-vf", "noise=alls=12:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k", "-ac", "2", "-shortest", str(partial)],
            check=True,
        )
        partial.replace(path)
    return path


def ffmpeg_command(source: Path, out: Path, width: int, height: int, fps: Fraction,
                   settings: LadderSettings) -> list[str]:
    """The ffmpeg CLI doing our job: one decode, split+scale per rung, libx264 High with IDRs forced every
    2 s and no scene cuts, capped VBV, AAC 48 kHz stereo per variant, 6 s TS segments via var_stream_map."""
    renditions = plan_ladder(width, height, settings)
    n = len(renditions)
    graph = f"[0:v]split={n}" + "".join(f"[s{i}]" for i in range(n)) + ";" + ";".join(
        f"[s{i}]scale={r.width}:{r.height}:flags=bilinear[v{i}]" for i, r in enumerate(renditions))
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-filter_complex", graph]
    for i in range(n):
        command += ["-map", f"[v{i}]", "-map", "0:a:0?"]
    command += ["-c:v", "libx264", "-preset", settings.preset, "-profile:v", "high", "-pix_fmt", "yuv420p",
                "-force_key_frames", f"expr:gte(t,n_forced*{settings.gop_s:g})",
                "-c:a", "aac", "-ar", "48000", "-ac", "2"]
    keyint = math.ceil(Fraction(settings.gop_s) * fps) + 1   # as pipeline/encode/transcode.py sets it
    for i, r in enumerate(renditions):
        command += [f"-b:v:{i}", str(r.video_bitrate_bps), f"-b:a:{i}", str(r.audio_bitrate_bps),
                    f"-x264-params:v:{i}",
                    f"keyint={keyint}:min-keyint={keyint}:scenecut=0:open-gop=0:"
                    f"vbv-maxrate={r.maxrate_bps // 1000}:vbv-bufsize={r.bufsize_bits // 1000}"]
    command += ["-f", "hls", "-hls_time", f"{settings.segment_s:g}", "-hls_playlist_type", "vod",
                "-var_stream_map", " ".join(f"v:{i},a:{i}" for i in range(n)),
                "-hls_segment_filename", str(out / "r%v/seg_%05d.ts"), str(out / "r%v/index.m3u8")]
    return command


def ours_command(source: Path, out: Path, width: int, height: int, settings: LadderSettings) -> list[str]:
    return [sys.executable, "-c", OURS, str(source), str(out), str(width), str(height), settings.preset]


def run(name: str, source: Path, settings: LadderSettings) -> dict:
    """One measured run; also returns the x264 version and options each rung was encoded with, by rung name."""
    info = probe(source).video
    fps = output_frame_rate(info.frame_rate, settings.max_frame_rate)
    renditions = plan_ladder(info.display_width, info.display_height, settings)
    with tempfile.TemporaryDirectory(dir=CACHE) as out:
        if name == "ours":
            command = ours_command(source, Path(out), info.display_width, info.display_height, settings)
            directories = {r.name: Path(out) / r.name for r in renditions}
        else:
            command = ffmpeg_command(source, Path(out), info.display_width, info.display_height, fps, settings)
            directories = {r.name: Path(out) / f"r{i}" for i, r in enumerate(renditions)}
        result = measure(command)
        result["x264"] = {rung: x264_header(directory / "seg_00000.ts") for rung, directory in directories.items()}
        result["bytes"] = {rung: sum(f.stat().st_size for f in directory.glob("*.ts"))
                           for rung, directory in directories.items()}
        return result


def x264_header(segment: Path) -> tuple[str, str]:
    """(version, options) from the SEI libx264 writes before its first picture: the proof that both
    tools asked the encoder for the same thing (lookahead, VBV, GOP included; threads differ)."""
    import av

    with av.open(str(segment)) as container:
        for packet in container.demux(container.streams.video[0]):
            data = bytes(packet)
            start = data.find(b"x264 - core ")
            if start >= 0:
                end = data.index(b"\x00", start)
                header = data[start:end].decode(errors="replace")
                version = header.split(" - ")[1]
                return version, header.partition("options: ")[2]
            break
    return "?", "?"


# How each tool spreads its encoders over the cores: ours one x264 thread per rendition while there are
# no more cores than renditions (pipeline/encode/transcode.py encoder_threads()), the ffmpeg CLI x264's own
# count. Every other option must match.
THREAD_OPTIONS = ("threads", "lookahead_threads", "sliced_threads")


def check_same_encoder_options(ours: dict, peer: dict) -> None:
    """Print whether every rung was encoded with identical x264 options, threading aside, by both tools."""
    differing_rungs = 0
    thread_counts = {}
    for rung, (_, mine) in ours["x264"].items():
        theirs = peer["x264"][rung][1]
        mine_by_key, theirs_by_key = _options(mine), _options(theirs)
        thread_counts[rung] = f"{mine_by_key.get('threads', '?')}/{theirs_by_key.get('threads', '?')}"
        for key in THREAD_OPTIONS:
            mine_by_key.pop(key, None)
            theirs_by_key.pop(key, None)
        if mine_by_key != theirs_by_key or "?" in (mine, theirs):
            differing_rungs += 1
            differing = sorted(set(mine_by_key.items()) ^ set(theirs_by_key.items()))
            print(f"  WARNING {rung}: x264 options differ between ours and ffmpeg: {differing}")
    versions = {tool: sorted({version for version, _ in result["x264"].values()})
                for tool, result in (("ours", ours), ("ffmpeg", peer))}
    if not differing_rungs:
        print(f"  x264 options identical on all {len(ours['x264'])} rungs but threading "
              f"(ours {', '.join(versions['ours'])}; ffmpeg {', '.join(versions['ffmpeg'])}); "
              "x264 threads ours/ffmpeg: " + ", ".join(f"{rung} {t}" for rung, t in thread_counts.items()))
    sizes = ", ".join(f"{rung} {ours['bytes'][rung] / peer['bytes'][rung]:.3f}" if peer["bytes"][rung] else f"{rung} ?"
                      for rung in ours["bytes"])
    print(f"  output bytes ours/ffmpeg per rung (same bit rates and VBV): {sizes}")


def _options(header: str) -> dict[str, str]:
    return dict(option.partition("=")[::2] for option in header.split())


def compare(label: str, source: Path, settings: LadderSettings, rounds: int) -> float:
    """Interleaved rounds of both tools on one input; prints every run and returns the median wall ratio."""
    duration = probe(source).header_duration_s
    results: dict[str, list[dict]] = {"ours": [], "ffmpeg": []}
    for round_ in range(rounds):
        # alternate who goes first, so neither always runs right after the other's cache warm-up
        order = ("ours", "ffmpeg") if round_ % 2 == 0 else ("ffmpeg", "ours")
        for name in order:
            result = run(name, source, settings)
            results[name].append(result)
            print(f"  {label} round {round_ + 1} {name:6s} wall {result['wall_s']:6.1f} s  "
                  f"cpu {result['cpu_s']:6.1f} s  peak RSS {result['peak_rss_mb']:5.0f} MB  "
                  f"realtime x{duration / result['wall_s']:.2f}  others {result['others_cores']:.2f} cores",
                  flush=True)
    check_same_encoder_options(results["ours"][0], results["ffmpeg"][0])
    print(f"{label}: {source.name}, {duration:.0f} s, "
          f"{len(plan_ladder(*INPUTS[label], settings))} rungs, preset {settings.preset}, {rounds} rounds")
    for key in ("wall_s", "cpu_s", "peak_rss_mb"):
        ours = statistics.median(r[key] for r in results["ours"])
        peer = statistics.median(r[key] for r in results["ffmpeg"])
        ratios = [o[key] / f[key] for o, f in zip(results["ours"], results["ffmpeg"])]
        print(f"  {key:12s} median ours {ours:7.1f}  ffmpeg {peer:7.1f}   ours/ffmpeg per round "
              + " ".join(f"{r:.2f}" for r in ratios) + f"  median {statistics.median(ratios):.2f}")
    realtime = {name: duration / statistics.median(r["wall_s"] for r in runs) for name, runs in results.items()}
    others = statistics.median(r["others_cores"] for runs in results.values() for r in runs)
    print(f"  realtime     ours x{realtime['ours']:.2f}  ffmpeg x{realtime['ffmpeg']:.2f}   "
          f"other processes used a median {others:.2f} of {os.cpu_count()} cores meanwhile\n", flush=True)
    return statistics.median(o["wall_s"] / f["wall_s"] for o, f in zip(results["ours"], results["ffmpeg"]))


def memory_growth(settings: LadderSettings, lengths: list[float], width: int, height: int) -> None:
    """Our peak RSS on inputs of different lengths: streaming means it must not grow with the episode."""
    peaks = []
    for seconds in lengths:
        source = generated_input(width, height, seconds)
        result = run("ours", source, settings)
        peaks.append(result["peak_rss_mb"])
        print(f"  ours on {seconds:g} s {width}x{height}: peak RSS {result['peak_rss_mb']:.0f} MB, "
              f"wall {result['wall_s']:.1f} s", flush=True)
    growth = peaks[-1] / peaks[0] - 1
    print(f"peak RSS {lengths[-1]:g} s vs {lengths[0]:g} s: {growth:+.1%} "
          f"({'within' if abs(growth) <= 0.10 else 'OUTSIDE'} the 10 % bound)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="length of the generated comparison inputs")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per input")
    parser.add_argument("--inputs", default="landscape,portrait", help="which generated inputs to compare")
    parser.add_argument("--input", type=Path, help="compare on this file instead of the generated ones")
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--rss-check", action="store_true",
                        help="also measure our peak RSS on a short and a long input (a few minutes more)")
    parser.add_argument("--rss-seconds", default="60,300", help="input lengths for the memory check, comma-separated")
    parser.add_argument("--rss-size", default="640x360", help="frame size of the memory-check inputs")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("the ffmpeg CLI is the peer: apt-get install ffmpeg")
    CACHE.mkdir(parents=True, exist_ok=True)
    settings = LadderSettings(preset=args.preset)
    if args.input:
        INPUTS["file"] = (probe(args.input).video.display_width, probe(args.input).video.display_height)
        compare("file", args.input, settings, args.rounds)
    else:
        ratios = {label: compare(label, generated_input(*INPUTS[label], args.seconds), settings, args.rounds)
                  for label in args.inputs.split(",") if label}
        if ratios:
            print("median wall ratio ours/ffmpeg: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()) + "\n")
    if args.rss_check:
        width, height = (int(v) for v in args.rss_size.split("x"))
        memory_growth(settings, [float(s) for s in args.rss_seconds.split(",")], width, height)


if __name__ == "__main__":
    main()
