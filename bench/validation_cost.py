"""Benchmark: what validating an upload costs, next to transcoding it and next to an ffmpeg decode pass.

    .venv/bin/python bench/validation_cost.py [--input FILE] [--seconds 60] [--rounds 2]

Ingest validates in two halves: a header probe before any work (`validate(decode=False)`), and the
decoded-duration/decode-error check on the frames the transcoder decodes anyway (decode once). So the
extra cost of validation inside an ingest is the probe alone. `series validate` on its own decodes the
whole video; that pass is compared with `ffmpeg -i FILE -map 0:v -f null -`, the usual way to check a
file decodes. Steps are interleaved round by round, each in its own process (wall, CPU and peak RSS from
wait4). Not a test: it prints figures and ratios and asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile

from common import CACHE, measure, source_clip

PROBE = "import sys; from pipeline.inspect.validate import validate; validate(sys.argv[1], decode=False)"
VALIDATE = "import sys; from pipeline.inspect.validate import validate; validate(sys.argv[1])"
TRANSCODE = """
import sys
from pipeline.encode.ladder import LadderSettings, plan_ladder
from pipeline.inspect.probe import probe
from pipeline.encode.transcode import transcode
source, out, preset = sys.argv[1:4]
video = probe(source).video
settings = LadderSettings(preset=preset)
transcode(source, plan_ladder(video.display_width, video.display_height, settings), out, settings)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", help="source file (default: a generated 1080p clip)")
    parser.add_argument("--seconds", type=float, default=60, help="length of the generated clip")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("the ffmpeg CLI is the peer: apt-get install ffmpeg")
    source = args.input or str(source_clip(args.seconds, args.width, args.height))
    runs: dict[str, list[dict]] = {"probe": [], "validate": [], "ffmpeg decode": [], "transcode": []}
    for round_ in range(args.rounds):
        for step in runs:
            with tempfile.TemporaryDirectory(dir=CACHE) as out:
                command = {
                    "probe": [sys.executable, "-c", PROBE, source],
                    "validate": [sys.executable, "-c", VALIDATE, source],
                    "ffmpeg decode": ["ffmpeg", "-v", "error", "-i", source, "-map", "0:v:0", "-f", "null", "-"],
                    "transcode": [sys.executable, "-c", TRANSCODE, source, out, args.preset],
                }[step]
                result = measure(command)
            runs[step].append(result)
            print(f"round {round_ + 1} {step:13s} wall {result['wall_s']:7.2f} s  cpu {result['cpu_s']:7.2f} s  "
                  f"peak RSS {result['peak_rss_mb']:5.0f} MB", flush=True)
    best = {step: min(results, key=lambda r: r["wall_s"]) for step, results in runs.items()}
    wall = {step: result["wall_s"] for step, result in best.items()}
    print(f"\n{source} (best of {args.rounds}, wall time; Python start-up included in ours)")
    print(f"  validation inside an ingest (probe)       {wall['probe']:7.2f} s  "
          f"= {100 * wall['probe'] / (wall['probe'] + wall['transcode']):.1f} % of probe + transcode")
    print(f"  standalone `series validate` (full decode) {wall['validate']:7.2f} s  "
          f"= {100 * wall['validate'] / wall['transcode']:.1f} % of a transcode")
    print(f"  validate / ffmpeg decode pass             {wall['validate'] / wall['ffmpeg decode']:7.2f}")


if __name__ == "__main__":
    main()
