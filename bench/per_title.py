"""Benchmark: per-title ladders against today's fixed ladder and the ffmpeg CLI's, on four kinds of content.

    flock /tmp/bench.lock .venv/bin/python bench/per_title.py [--seconds 30] [--rounds 3] [--titles ...]

For each title of the corpus (bench/per_title_corpus.py), each in its own process: our per-title ladder
(the analysis `--rounds` times, for its median, then the transcode), our fixed ladder, and the ffmpeg
CLI encoding the fixed ladder with the same x264 settings (bench/transcode_vs_ffmpeg.py's command).
CPU time of the analysis and of each transcode comes from the process itself (time.process_time(),
all threads) and the kernel (wait4); the machine is shared, so CPU time is what to read, wall beside.

Then the first round's outputs are measured against the source over the whole episode with the ffmpeg
CLI's libvmaf (the imageio-ffmpeg wheel's build): VMAF (v0.6.1 model), PSNR-Y and SSIM with every rung
upscaled bicubically to the source's size, as a player shows it full screen, every `--subsample`-th
frame; and PSNR-Y at the rung's own size against the source scaled down the way the transcode scales
it. Printed per title: every rung of each ladder (bytes, bit rates, peak/average, quality), the
per-title rung's quality delta against the fixed rung of the same size, the bitrate-quality convex
hull of all encodes, and the per-title/fixed byte ratio; then the targets of the issue, met or not.
Everything is also written to var/bench/per_title-results.json. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from common import CACHE, measure  # noqa: E402  (bench/common.py also puts the project on sys.path)
from per_title_corpus import TITLES, build_corpus, ffmpeg_exe  # noqa: E402
from per_title_quality import hull, ladder_quality, rung_bytes, source_tags  # noqa: E402
from transcode_vs_ffmpeg import ffmpeg_command  # noqa: E402

from pipeline.encode.ladder import LadderMode, LadderSettings, plan_ladder  # noqa: E402
from pipeline.encode.transcode import output_frame_rate  # noqa: E402
from pipeline.inspect.probe import probe  # noqa: E402

RESULTS = CACHE / "per_title-results.json"

OURS = """
import json, sys, time
from pipeline.encode.ladder import LadderMode, LadderSettings
from pipeline.per_title.decision import plan_ladder_for
from pipeline.encode.transcode import transcode
source, out, width, height, preset, mode, report, analyses = sys.argv[1:9]
settings = LadderSettings(preset=preset, mode=LadderMode(mode))
analysis_cpu, analysis_wall = [], []
for _ in range(int(analyses)):
    cpu, wall = time.process_time(), time.perf_counter()
    plan = plan_ladder_for(source, int(width), int(height), settings)
    analysis_cpu.append(time.process_time() - cpu)
    analysis_wall.append(time.perf_counter() - wall)
cpu, wall = time.process_time(), time.perf_counter()
result = transcode(source, list(plan.renditions), out, settings)
json.dump({"plan": plan.as_dict(), "renditions": [r.rendition.name for r in result.renditions],
           "analysis_cpu_s": analysis_cpu, "analysis_wall_s": analysis_wall,
           "transcode_cpu_s": time.process_time() - cpu, "transcode_wall_s": time.perf_counter() - wall},
          open(report, "w"))
"""

LADDERS = ("per-title", "fixed", "ffmpeg")


def run_ladder(ladder: str, source: Path, out: Path, settings: LadderSettings, analyses: int) -> dict:
    """One measured run of `ladder` into `out`; returns its timings and where each rung's segments are."""
    info = probe(source).video
    width, height = info.display_width, info.display_height
    renditions = plan_ladder(width, height, settings)
    if ladder == "ffmpeg":
        fps = output_frame_rate(info.frame_rate, settings.max_frame_rate)
        command = ffmpeg_command(source, out, width, height, fps, settings)
        command[0] = ffmpeg_exe()
        result = measure(command)
        result["directories"] = {r.name: out / f"r{i}" for i, r in enumerate(renditions)}
        return result
    report = out / "report.json"
    mode = LadderMode.PER_TITLE if ladder == "per-title" else LadderMode.FIXED
    result = measure([sys.executable, "-c", OURS, str(source), str(out), str(width), str(height), settings.preset,
                      mode.value, str(report), str(analyses if ladder == "per-title" else 1)])
    result.update(json.loads(report.read_text()))
    result["directories"] = {name: out / name for name in result["renditions"]}
    return result


def bench_title(title: str, source: Path, settings: LadderSettings, rounds: int, subsample: int) -> dict:
    print(f"\n== {title}: {source.name}", flush=True)
    kept: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        for ladder in LADDERS:
            out = Path(scratch) / ladder
            out.mkdir()
            result = run_ladder(ladder, source, out, settings, rounds)
            kept[ladder] = result
            analysis = (f"  analysis cpu {statistics.median(result['analysis_cpu_s']):5.1f} s (median of "
                        f"{rounds}: {' '.join(f'{v:.1f}' for v in result['analysis_cpu_s'])}) wall "
                        f"{statistics.median(result['analysis_wall_s']):5.1f} s" if ladder == "per-title" else "")
            print(f"  {ladder:9s} wall {result['wall_s']:6.1f} s  cpu {result['cpu_s']:6.1f} s"
                  f"  peak RSS {result['peak_rss_mb']:5.0f} MB  others {result['others_cores']:.2f} cores"
                  + analysis, flush=True)
        print("  measuring quality (VMAF, PSNR, SSIM against the source) ...", flush=True)
        info = probe(source).video
        display = (info.display_width, info.display_height)
        ours = source_tags(source)
        rungs = {ladder: ladder_quality(source, kept[ladder]["directories"], display, subsample,
                                        retag="" if ladder == "ffmpeg" else ours)
                 for ladder in LADDERS}
        for ladder in LADDERS:
            for name, rung in rungs[ladder].items():
                rung.update(rung_bytes(kept[ladder]["directories"][name]))
    return summarize_title(title, source, kept, rungs)


def summarize_title(title: str, source: Path, kept: dict, rungs: dict) -> dict:
    decisions = {d["name"]: d for d in kept["per-title"]["plan"]["rungs"]}
    print(f"  {'rung':6s} {'ladder':9s} {'MB':>7s} {'video kbit/s':>12s} {'peak/avg':>8s} {'VMAF':>6s} "
          f"{'PSNR-Y':>7s} {'SSIM':>6s} {'own PSNR':>8s}  per-title decision")
    for name in rungs["fixed"]:
        for ladder in LADDERS:
            rung = rungs[ladder].get(name)
            if rung is None:
                print(f"  {name:6s} {ladder:9s} {'dropped':>7s}  {decisions[name]['message']}")
                continue
            note = decisions[name]["message"] if ladder == "per-title" else ""
            print(f"  {name:6s} {ladder:9s} {rung['bytes'] / 1e6:7.2f} {rung['video_bitrate_bps'] / 1000:12.0f} "
                  f"{rung['peak_to_average']:8.2f} {rung['vmaf']:6.2f} {rung['psnr_y']:7.2f} {rung['ssim']:6.4f} "
                  f"{rung['own_psnr_y']:8.2f}  {note}")
    deltas = {name: {"vmaf": rungs["per-title"][name]["vmaf"] - rungs["fixed"][name]["vmaf"],
                     "own_psnr_y": rungs["per-title"][name]["own_psnr_y"] - rungs["fixed"][name]["own_psnr_y"],
                     "psnr_y": rungs["per-title"][name]["psnr_y"] - rungs["fixed"][name]["psnr_y"]}
              for name in rungs["per-title"]}
    print("  per-title minus fixed, same size: " + ", ".join(
        f"{name} VMAF {d['vmaf']:+.2f} PSNR {d['own_psnr_y']:+.2f} dB" for name, d in deltas.items()))
    totals = {ladder: sum(r["bytes"] for r in rungs[ladder].values()) for ladder in LADDERS}
    video = {ladder: sum(r["video_bytes"] for r in rungs[ladder].values()) for ladder in LADDERS}
    ratio = totals["per-title"] / totals["fixed"]
    print(f"  total bytes: per-title {totals['per-title'] / 1e6:.2f} MB, fixed {totals['fixed'] / 1e6:.2f} MB, "
          f"ffmpeg {totals['ffmpeg'] / 1e6:.2f} MB; per-title/fixed {ratio:.3f} (video only "
          f"{video['per-title'] / video['fixed']:.3f}); ffmpeg/fixed {totals['ffmpeg'] / totals['fixed']:.3f}")
    points = [(ladder, name, r["video_bitrate_bps"], r["vmaf"]) for ladder in LADDERS for name, r in rungs[ladder].items()]
    on_hull = hull(points)
    print("  convex hull (video kbit/s, VMAF): " + ", ".join(
        f"{ladder} {name} {rate / 1000:.0f}/{vmaf:.1f}" for ladder, name, rate, vmaf in on_hull))
    runs = kept["per-title"]
    analysis_cpu = statistics.median(runs["analysis_cpu_s"])
    analysis_wall = statistics.median(runs["analysis_wall_s"])
    transcode_cpu, fixed_cpu = runs["transcode_cpu_s"], kept["fixed"]["transcode_cpu_s"]
    print(f"  time: analysis cpu {analysis_cpu:.2f} s (median of {len(runs['analysis_cpu_s'])}) = "
          f"{analysis_cpu / transcode_cpu:.1%} of the per-title transcode's cpu ({transcode_cpu:.1f} s), "
          f"{analysis_cpu / fixed_cpu:.1%} of the fixed transcode's ({fixed_cpu:.1f} s); analysis wall "
          f"{analysis_wall:.2f} s = {analysis_wall / runs['transcode_wall_s']:.1%} of the per-title transcode's wall "
          f"({runs['transcode_wall_s']:.1f} s); per-title analysis + transcode {analysis_cpu + transcode_cpu:.1f} s cpu vs fixed "
          f"{fixed_cpu:.1f} s", flush=True)
    return {"title": title, "source": source.name, "rungs": rungs, "deltas": deltas, "total_bytes": totals,
            "video_bytes": video, "bytes_ratio": ratio, "hull": on_hull, "plan": kept["per-title"]["plan"],
            "analysis_cpu_s": analysis_cpu, "analysis_wall_s": analysis_wall,
            "per_title_transcode_cpu_s": transcode_cpu, "fixed_transcode_cpu_s": fixed_cpu,
            "runs": {ladder: {k: v for k, v in r.items() if k not in ("directories", "plan")}
                     for ladder, r in kept.items()}}


def verdict(results: list[dict]) -> None:
    ratios = [r["bytes_ratio"] for r in results]
    mean_ratio = statistics.fmean(ratios)
    worst_vmaf = min((d["vmaf"], r["title"], name) for r in results for name, d in r["deltas"].items())
    worst_psnr = min((d["own_psnr_y"], r["title"], name) for r in results for name, d in r["deltas"].items())
    overheads = [r["analysis_cpu_s"] / r["per_title_transcode_cpu_s"] for r in results]
    wall_overheads = [r["analysis_wall_s"] / r["runs"]["per-title"]["transcode_wall_s"] for r in results]
    print("\n== targets")
    print("  bytes per-title/fixed: " + ", ".join(f"{r['title']} {r['bytes_ratio']:.3f}" for r in results)
          + f"; mean {mean_ratio:.3f} (target <= 0.70: {'met' if mean_ratio <= 0.70 else 'NOT met'})")
    print(f"  worst rung VMAF delta {worst_vmaf[0]:+.2f} ({worst_vmaf[1]} {worst_vmaf[2]}; target >= -1: "
          f"{'met' if worst_vmaf[0] >= -1 else 'NOT met'}); worst own-size PSNR delta {worst_psnr[0]:+.2f} dB "
          f"({worst_psnr[1]} {worst_psnr[2]}; target >= -0.5 dB: {'met' if worst_psnr[0] >= -0.5 else 'NOT met'})")
    print("  analysis cpu / per-title transcode cpu: " + ", ".join(
        f"{r['title']} {o:.1%}" for r, o in zip(results, overheads))
          + f"; max {max(overheads):.1%} (target <= 15 %: {'met' if max(overheads) <= 0.15 else 'NOT met'})")
    print("  analysis wall / per-title transcode wall (shared machine: noisier): " + ", ".join(
        f"{r['title']} {o:.1%}" for r, o in zip(results, wall_overheads)) + f"; max {max(wall_overheads):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="length of each corpus title")
    parser.add_argument("--rounds", type=int, default=3, help="analyses per title, for the median (transcodes run once)")
    parser.add_argument("--titles", default=",".join(TITLES))
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--subsample", type=int, default=6, help="VMAF on every n-th frame")
    args = parser.parse_args()
    corpus = build_corpus(args.seconds)
    settings = LadderSettings(preset=args.preset)
    results = {title: bench_title(title, corpus[title], settings, args.rounds, args.subsample)
               for title in args.titles.split(",") if title}
    # titles measured in an earlier run with the same settings stay (a run may redo one title)
    same = {"seconds": args.seconds, "rounds": args.rounds, "preset": args.preset, "subsample": args.subsample}
    earlier = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if {k: earlier.get(k) for k in same} == same:
        results = {**{t["title"]: t for t in earlier["titles"]}, **results}
    ordered = [results[title] for title in TITLES if title in results]
    if len(ordered) > 1:
        verdict(ordered)
    RESULTS.write_text(json.dumps({**same, "titles": ordered}, indent=1, default=str))
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
