"""Benchmark: what sampling posters and the storyboard costs a transcode (pipeline/pictures/sampler.py).

    flock /tmp/bench.lock .venv/bin/python bench/pictures_cost.py [--seconds 20] [--rounds 5]

Transcodes the same generated 720p clip (the full ladder, veryfast) with and without the
PictureSampler observing the decode, alternating which goes first each round, each run in its own
process (wall, CPU and peak RSS from wait4); the sampler's run also renders the poster and encodes the
storyboard sheets, as an ingest would. Also prints the sampler alone: the CPU its observe() calls took
on the decoding thread, and finish(); on a shared machine that is the steadier figure. Not a test: it prints figures and ratios and asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from common import CACHE, measure, source_clip

TRANSCODE = """
import sys, time
from pipeline.encode.ladder import LadderSettings, plan_ladder
from pipeline.pictures.sampler import PictureSampler
from pipeline.inspect.probe import probe
from pipeline.encode.transcode import transcode
source, out, preset, with_pictures = sys.argv[1:5]
info = probe(source)
settings = LadderSettings(preset=preset)
sampler = None
if with_pictures == "1":
    sampler = PictureSampler(expected_duration_s=info.header_duration_s)
    observe = sampler.observe
    spent = [0.0, 0]
    def timed(frame, index, fps):
        started = time.thread_time()      # this (decoding) thread only: the encoders run meanwhile
        observe(frame, index, fps)
        spent[0] += time.thread_time() - started
        spent[1] += 1
    sampler.observe = timed
result = transcode(source, plan_ladder(info.video.display_width, info.video.display_height, settings), out, settings,
                   frame_observer=sampler)
if sampler is not None:
    started = time.thread_time()
    pictures = sampler.finish(result.duration_s)
    finish_s = time.thread_time() - started
    print(f"sampler: observe {spent[0]:.3f} s CPU over {spent[1]} frames, finish (poster, sheets) {finish_s:.3f} s; "
          f"poster at {float(pictures.poster.time_s):.2f} s, {pictures.storyboard.tile_count} tiles", file=sys.stderr)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    source = str(source_clip(args.seconds, args.width, args.height))
    runs: dict[str, list[dict]] = {"without": [], "with pictures": []}
    for round_ in range(args.rounds):
        order = list(runs) if round_ % 2 == 0 else list(reversed(runs))
        for name in order:
            with tempfile.TemporaryDirectory(dir=CACHE) as out:
                figures = measure([sys.executable, "-c", TRANSCODE, source, out, args.preset,
                                   "1" if name == "with pictures" else "0"])
            runs[name].append(figures)
            print(f"round {round_ + 1} {name:>14}: wall {figures['wall_s']:.2f} s  cpu {figures['cpu_s']:.2f} s  "
                  f"rss {figures['peak_rss_mb']:.0f} MB  others {figures['others_cores']:.2f}", flush=True)
    for key in ("wall_s", "cpu_s", "peak_rss_mb"):
        ratios = [w[key] / o[key] for w, o in zip(runs["with pictures"], runs["without"])]
        with_pictures = statistics.median(r[key] for r in runs["with pictures"])
        without = statistics.median(r[key] for r in runs["without"])
        print(f"{key}: with/without per round {' / '.join(f'{r:.3f}' for r in ratios)}, "
              f"median {statistics.median(ratios):.3f} (medians {with_pictures:.2f} vs {without:.2f})")


if __name__ == "__main__":
    main()
