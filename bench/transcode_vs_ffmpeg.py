"""Benchmark: our transcode against the ffmpeg CLI on the same ladder, presets, GOP and segmenting.

    .venv/bin/python bench/transcode_vs_ffmpeg.py [--input FILE] [--seconds 60] [--rounds 2]

Runs are interleaved (ours, ffmpeg, ours, ffmpeg, ...) so both see the same machine; each runs in its
own process so wall time, CPU time and peak RSS come from the kernel (wait4). Needs the ffmpeg CLI
(Debian's `ffmpeg`) as the peer. Not a test: it prints figures and ratios, it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.ladder import LadderSettings, plan_ladder  # noqa: E402
from pipeline.probe import probe  # noqa: E402
from pipeline.synthetic import generate_clip  # noqa: E402

OURS = """
import sys
from pipeline.ladder import LadderSettings, plan_ladder
from pipeline.transcode import transcode
source, out, width, height, preset = sys.argv[1:6]
transcode(source, plan_ladder(int(width), int(height), LadderSettings(preset=preset)), out,
          LadderSettings(preset=preset))
"""


def ffmpeg_command(source: Path, out: Path, width: int, height: int, settings: LadderSettings) -> list[str]:
    """The ffmpeg CLI doing our job: one decode, split+scale per rung, libx264 High with IDRs forced every
    2 s and no scene cuts, capped VBV, AAC 48 kHz stereo per variant, 6 s TS segments via var_stream_map."""
    renditions = plan_ladder(width, height, settings)
    n = len(renditions)
    graph = f"[0:v]split={n}" + "".join(f"[s{i}]" for i in range(n)) + ";" + ";".join(
        f"[s{i}]scale={r.width}:{r.height}[v{i}]" for i, r in enumerate(renditions))
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-filter_complex", graph]
    for i in range(n):
        command += ["-map", f"[v{i}]", "-map", "0:a:0?"]
    command += ["-c:v", "libx264", "-preset", settings.preset, "-profile:v", "high",
                "-force_key_frames", f"expr:gte(t,n_forced*{settings.gop_s:g})", "-c:a", "aac", "-ar", "48000", "-ac", "2"]
    for i, r in enumerate(renditions):
        gop = round(settings.gop_s * 30) + 1
        command += [f"-b:v:{i}", str(r.video_bitrate_bps), f"-maxrate:v:{i}", str(r.maxrate_bps),
                    f"-bufsize:v:{i}", str(r.bufsize_bits), f"-b:a:{i}", str(r.audio_bitrate_bps),
                    f"-x264-params:v:{i}", f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0"]
    command += ["-f", "hls", "-hls_time", f"{settings.segment_s:g}", "-hls_playlist_type", "vod",
                "-var_stream_map", " ".join(f"v:{i},a:{i}" for i in range(n)),
                "-hls_segment_filename", str(out / "r%v/seg_%05d.ts"), str(out / "r%v/index.m3u8")]
    return command


def measure(command: list[str]) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{command[0]} failed with status {status}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, help="source file (default: a generated 1080p clip)")
    parser.add_argument("--seconds", type=float, default=60, help="length of the generated clip")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("the ffmpeg CLI is the peer: apt-get install ffmpeg")
    cache = ROOT / "var" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    source = args.input or cache / f"src-{args.width}x{args.height}-{args.seconds:g}s.mp4"
    if not source.exists():
        print(f"generating {source} ...", flush=True)
        generate_clip(source, duration_s=args.seconds, width=args.width, height=args.height, fps=30)
    video = probe(source).video
    duration = probe(source).header_duration_s
    settings = LadderSettings(preset=args.preset)
    results = {"ours": [], "ffmpeg": []}
    for round_ in range(args.rounds):
        for name in ("ours", "ffmpeg"):
            with tempfile.TemporaryDirectory(dir=cache) as out:
                command = ([sys.executable, "-c", OURS, str(source), out, str(video.display_width),
                            str(video.display_height), args.preset] if name == "ours"
                           else ffmpeg_command(source, Path(out), video.display_width, video.display_height, settings))
                result = measure(command)
            results[name].append(result)
            print(f"round {round_ + 1} {name:6s} wall {result['wall_s']:6.1f} s  cpu {result['cpu_s']:6.1f} s  "
                  f"peak RSS {result['peak_rss_mb']:6.0f} MB  realtime x{duration / result['wall_s']:.2f}", flush=True)
    best = {name: min(runs, key=lambda r: r["wall_s"]) for name, runs in results.items()}
    print(f"\n{source.name}: {duration:.0f} s, {video.display_width}x{video.display_height}, "
          f"{len(plan_ladder(video.display_width, video.display_height, settings))} rungs, preset {args.preset}")
    for key in ("wall_s", "cpu_s", "peak_rss_mb"):
        print(f"  {key:12s} ours {best['ours'][key]:8.1f}  ffmpeg {best['ffmpeg'][key]:8.1f}  "
              f"ours/ffmpeg {best['ours'][key] / best['ffmpeg'][key]:.2f}")


if __name__ == "__main__":
    main()
