"""Benchmark: the forensic A/B watermark: detection under attacks, false accusations, mark quality, cost.

    flock /tmp/bench.lock .venv/bin/python bench/watermark.py [--seconds 150] [--innocents 200]

Source: FFmpeg's testsrc2 (flat colour fields, where a mark shows first, sharp edges, motion, a clock)
with light moving grain (noise=alls=4), 1280x720 30 fps, made once with the imageio-ffmpeg CLI at CRF 16,
so the ladder is 720p, 540p, 360p and 234p. One process transcodes it unmarked, another
marked (2 s segments both, alternating, each measured by the kernel), then:
- quality: luma PSNR of A and B against the unmarked encode, and VMAF (the imageio-ffmpeg build's
  libvmaf) of unmarked, A and B against the source scaled to the rung, for every rung (the mark is
  full strength from 480 lines up, proportionally weaker below: 360p 0.75, 234p 0.49);
  PNGs of one frame (unmarked, A, and A-B amplified 20x) under var/bench/watermark/;
- leaks: each of ATTACKS is the played copy of its own session (a random A/B sequence, from the rung
  named) attacked by the system ffmpeg CLI (tests/pipeline/leaks.py), read with read_leak() and decided
  among every session (the leaker and 250 others); the same reading is then decided among `--innocents`
  sessions that did not leak it (a false accusation is any "identified" there);
- cost: extra transcode wall and CPU time and extra storage of the marked transcode.
Not a test: it prints a table and writes var/bench/watermark/results.json; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
from common import CACHE, ROOT, measure  # also puts the project on sys.path, for tests.pipeline.leaks
from per_title_corpus import ffmpeg_exe

from pipeline.watermark import WatermarkReference, decide, read_leak, session_bits
from tests.pipeline.leaks import Attack, attack, played_copy

OUT = CACHE / "watermark"
SECRET = b"bench-watermark-session-secret!!"
WIDTH, HEIGHT = 1280, 720

CHILD = """
import sys
from pipeline.encode.ladder import LadderSettings, plan_ladder
from pipeline.encode.transcode import transcode
from pipeline.watermark import WatermarkSpec
source, out, kind = sys.argv[1:4]
settings = LadderSettings(segment_s=2.0)
spec = WatermarkSpec(seed=bytes(range(16))) if kind == "marked" else None
result = transcode(source, plan_ladder(1280, 720, settings), out, settings, watermark=spec)
if spec is not None:
    open(out + "/reference.npz", "wb").write(result.watermark.to_bytes())
"""

# (rung the leaker's player was on, what the leaker's ffmpeg did)
ATTACKS: list[tuple[str, Attack]] = [
    ("720p", Attack(crf=28)),
    ("720p", Attack(crf=32)),
    ("540p", Attack(height=360, crf=28)),
    ("360p", Attack(height=720, crf=26)),
    ("720p", Attack(crop=0.02)),
    ("540p", Attack(crop=0.05, crf=30)),
    ("720p", Attack(fps=24, crf=30)),
    ("720p", Attack(noise=20, crf=30)),
    ("234p", Attack(crf=28)),
    ("720p", Attack(width=640, height=480)),
    ("720p", Attack(start_s=0, duration_s=120)),
    ("720p", Attack(start_s=17.4, duration_s=120, crf=30)),
    ("540p", Attack(start_s=29.9, duration_s=120, fps=25)),
    ("360p", Attack(start_s=8.2, duration_s=120, crop=0.03)),
    ("720p", Attack(start_s=23.3, duration_s=120, noise=12)),
    ("720p", Attack(start_s=12.5, duration_s=120, height=360, crf=32)),
    ("540p", Attack(start_s=30, duration_s=120, fps=24, crop=0.04, noise=8, crf=30)),
    ("234p", Attack(start_s=5, duration_s=120, crf=30)),
    ("720p", Attack(start_s=20, duration_s=120, crop=0.05, fps=25, crf=32)),
    ("360p", Attack(start_s=1.7, duration_s=120, height=540, crf=23)),
    ("720p", Attack(start_s=26.1, duration_s=120, noise=16, fps=24)),
]


def source_clip(seconds: float) -> Path:
    path = OUT / f"testsrc2-{WIDTH}x{HEIGHT}-{seconds:g}s.mp4"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.relative_to(ROOT)} ...", flush=True)
        partial = path.with_name(path.name + ".partial.mp4")
        subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate=30:duration={seconds:g}",
             "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=48000:duration={seconds:g}",
             "-vf", "noise=alls=4:allf=t+u", "-c:v", "libx264", "-preset", "veryfast", "-crf", "16",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-shortest", str(partial)],
            check=True)
        partial.replace(path)
    return path


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg_*.ts"))


def stored_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("seg_*.ts"))


def joined(paths: list[Path], target: Path) -> Path:
    with target.open("wb") as out:
        for path in paths:
            out.write(path.read_bytes())
    return target


def luma_psnr(distorted: Path, reference: Path) -> float:
    """Average luma PSNR, dB, of two files of the same frames (ffmpeg's psnr filter)."""
    run = subprocess.run([ffmpeg_exe(), "-nostdin", "-i", str(distorted), "-i", str(reference), "-lavfi",
                          "[0:v]setpts=PTS-STARTPTS[a];[1:v]setpts=PTS-STARTPTS[b];[a][b]psnr", "-f", "null", "-"],
                         capture_output=True, text=True, check=True)
    return float(re.search(r"PSNR y:([\d.]+|inf)", run.stderr).group(1))


def vmaf(distorted: Path, source: Path, width: int, height: int, logs: Path) -> float:
    """Mean VMAF of `distorted` against `source` scaled (bicubic) to the rung's size, every 10th frame."""
    log = logs / f"vmaf-{distorted.stem}.json"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(distorted), "-i", str(source), "-lavfi",
                    (f"[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS,scale={width}:{height}:flags=bicubic[ref];"
                     "[d][ref]libvmaf=shortest=1:n_threads=2:n_subsample=10"
                     f":log_fmt=json:log_path={log}"), "-f", "null", "-"], check=True)
    return json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"]


def still(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k == index:
                return frame.to_ndarray(format="rgb24"), frame.to_ndarray(format="yuv420p")[:frame.height]
    raise SystemExit(f"{path} has no frame {index}")


def write_png(path: Path, rgb: np.ndarray) -> None:
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        container.mux(stream.encode(None))


def quality(source: Path, plain: Path, marked: Path, work: Path) -> dict:
    figures = {}
    rungs = (("720p", (1280, 720)), ("540p", (960, 540)), ("360p", (640, 360)), ("234p", (416, 234)))
    for rung, (width, height) in rungs:
        files = {kind: joined(segments(directory), work / f"{rung}-{kind}.ts")
                 for kind, directory in (("unmarked", plain / rung), ("A", marked / rung), ("B", marked / rung / "b"))}
        figures[rung] = {
            "psnr_a_db": luma_psnr(files["A"], files["unmarked"]),
            "psnr_b_db": luma_psnr(files["B"], files["unmarked"]),
            **{f"vmaf_{kind.lower()}": vmaf(path, source, width, height, work) for kind, path in files.items()},
        }
    # one frame in the middle of segment 10 of the top rung: unmarked, A, and A - B amplified 20x
    frame = 30
    (unmarked_rgb, _), (a_rgb, a_luma), (_, b_luma) = (
        still(directory / "seg_00010.ts", frame) for directory in (plain / "720p", marked / "720p", marked / "720p/b"))
    write_png(OUT / "unmarked.png", unmarked_rgb)
    write_png(OUT / "a.png", a_rgb)
    difference = np.clip(128 + 20 * (a_luma.astype(float) - b_luma), 0, 255).astype(np.uint8)
    write_png(OUT / "a-minus-b-x20.png", np.repeat(difference[..., None], 3, axis=2))
    return figures


def trace_leaks(marked: Path, reference: WatermarkReference, innocents: int, work: Path, figures: dict) -> list[dict]:
    """Trace every leak; figures["leaks"] grows (and results.json is rewritten) as each is done."""
    count = reference.segment_count
    sessions = {f"session-{k}": session_bits(SECRET, f"session-{k}", count) for k in range(len(ATTACKS) + 250)}
    results = figures.setdefault("leaks", [])
    for number, (rung, what) in enumerate(ATTACKS):
        leaker = f"session-{number}"
        rendition = SimpleNamespace(segments=[SimpleNamespace(path=p) for p in segments(marked / rung)],
                                    b_segments=[SimpleNamespace(path=p) for p in segments(marked / rung / "b")])
        copy = played_copy(rendition, sessions[leaker], work / "copy.ts")
        leak = attack(copy, work / f"leak-{number:02d}.mp4", what)
        started = time.perf_counter()
        reading = read_leak(leak, reference)
        read_s = time.perf_counter() - started
        verdict = decide(reading, sessions)
        innocent = {s: bits for s, bits in sessions.items() if int(s.split("-")[1]) >= len(ATTACKS)}
        innocent = dict(list(innocent.items())[:innocents])
        innocent_verdict = decide(reading, innocent)
        bits = sessions[leaker]
        read = [(v, b) for v, b in zip(reading.values, bits) if v is not None]
        results.append({
            "leak": f"{rung} copy; {what.describe()}", "segments_read": reading.segments_read,
            "wrong_sign": sum((v > 0) != (b == 0) for v, b in read),
            "mean_soft": statistics.fmean(v * (1 - 2 * b) for v, b in read) if read else None,
            "identified": verdict.identified, "accused": [c.session_id for c in verdict.accused],
            "is_correct": [c.session_id for c in verdict.accused] == [leaker],
            "leaker_p": next((c.p_value for c in verdict.candidates if c.session_id == leaker), 1.0),
            "false_accusations": len(innocent_verdict.accused),
            "best_innocent_p": innocent_verdict.candidates[0].p_value if innocent_verdict.candidates else 1.0,
            "offset_s": reading.offset_s, "visible_area": reading.visible_area, "match": reading.match,
            "read_s": read_s, "leak_s": reading.duration_s,
        })
        row = results[-1]
        print(f"{number:2d} {row['leak']:<58} read {row['segments_read']:3d} wrong {row['wrong_sign']:2d} "
              f"soft {row['mean_soft'] or 0:5.2f} p {row['leaker_p']:.1e} {'OK ' if row['is_correct'] else 'MISS'} "
              f"innocent p {row['best_innocent_p']:.2f} ({read_s:.1f} s)", flush=True)
        leak.unlink()
        save(figures)
    return results


def save(figures: dict) -> None:
    (OUT / "results.json").write_text(json.dumps(figures, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=150)
    parser.add_argument("--innocents", type=int, default=200)
    parser.add_argument("--report", action="store_true", help="print the table of the last run's results.json")
    args = parser.parse_args()
    if args.report:
        report(json.loads((OUT / "results.json").read_text()))
        return
    source = source_clip(args.seconds)
    work = OUT / "work"
    work.mkdir(parents=True, exist_ok=True)
    plain, marked = OUT / "unmarked", OUT / "marked"
    cost = {}
    for kind, directory in (("unmarked", plain), ("marked", marked)):
        subprocess.run(["rm", "-rf", str(directory)], check=True)
        print(f"transcoding {kind} ...", flush=True)
        cost[kind] = measure([sys.executable, "-c", CHILD, str(source), str(directory), kind])
        cost[kind]["stored_bytes"] = stored_bytes(directory)
    reference_bytes = (marked / "reference.npz").read_bytes()
    reference = WatermarkReference.from_bytes(reference_bytes)
    figures = {"cost": cost, "reference_bytes": len(reference_bytes), "segments": reference.segment_count,
               "seconds": args.seconds, "innocents": args.innocents}
    save(figures)
    print(f"tracing {len(ATTACKS)} leaks ...", flush=True)
    trace_leaks(marked, reference, args.innocents, work, figures)
    print("measuring quality ...", flush=True)
    figures["quality"] = quality(source, plain, marked, work)
    save(figures)
    report(figures)


def report(figures: dict) -> None:
    cost, leaks = figures["cost"], figures.get("leaks", [])
    plain, marked = cost["unmarked"], cost["marked"]
    print(f"\nsource: testsrc2 with grain {WIDTH}x{HEIGHT} 30 fps, {figures['seconds']:g} s, "
          f"{figures['segments']} segments of 2 s")
    print("| transcode | wall s | CPU s | others (cores) | stored MB |")
    print("|---|---|---|---|---|")
    for kind, row in cost.items():
        print(f"| {kind} | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | {row['others_cores']:.2f} | "
              f"{row['stored_bytes'] / 1e6:.1f} |")
    print(f"| marked / unmarked | {marked['wall_s'] / plain['wall_s']:.2f}x | "
          f"{marked['cpu_s'] / plain['cpu_s']:.2f}x | "
          f"| {marked['stored_bytes'] / plain['stored_bytes']:.2f}x |")
    print(f"reference: {figures['reference_bytes'] / 1e3:.0f} kB")
    print("\n| rung | PSNR-Y A vs unmarked | PSNR-Y B vs unmarked | VMAF unmarked | VMAF A | VMAF B |")
    print("|---|---|---|---|---|---|")
    for rung, q in figures.get("quality", {}).items():
        print(f"| {rung} | {q['psnr_a_db']:.1f} dB | {q['psnr_b_db']:.1f} dB | {q['vmaf_unmarked']:.2f} | "
              f"{q['vmaf_a']:.2f} | {q['vmaf_b']:.2f} |")
    if not leaks:
        return
    print("\n| leak | segments read | wrong sign | mean soft value | leaker's p | named | best innocent p |")
    print("|---|---|---|---|---|---|---|")
    for row in leaks:
        print(f"| {row['leak']} | {row['segments_read']} | {row['wrong_sign']} | {row['mean_soft'] or 0:.2f} | "
              f"{row['leaker_p']:.1e} | {'leaker' if row['is_correct'] else ', '.join(row['accused']) or 'nobody'} | "
              f"{row['best_innocent_p']:.2f} |")
    identified = sum(row["is_correct"] for row in leaks)
    wrong = sum(bool(row["accused"]) and not row["is_correct"] for row in leaks)
    false = sum(row["false_accusations"] for row in leaks)
    print(f"\nleaks: {identified}/{len(leaks)} named their session among {len(ATTACKS) + 250}; {wrong} named "
          f"someone else; {false} false accusations in {len(leaks)} x {figures['innocents']} innocent decisions "
          f"(smallest innocent p {min(row['best_innocent_p'] for row in leaks):.2f}); read "
          f"{statistics.median(row['read_s'] for row in leaks):.1f} s median per leak")

if __name__ == "__main__":
    main()
