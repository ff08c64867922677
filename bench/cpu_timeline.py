"""Where a transcode leaves a core idle: per-core and per-thread CPU of one run, sampled every 50 ms.

    flock /tmp/bench.lock .venv/bin/python bench/cpu_timeline.py [ours|ffmpeg] [--input portrait] [--bucket 0.25]

Runs one transcode (ours or the ffmpeg CLI, the same commands as bench/transcode_vs_ffmpeg.py) and
samples /proc/stat (busy time of every core) and /proc/PID/task/*/stat (CPU of every thread of the
run) every 50 ms. Prints a timeline in buckets: how many cores the machine was busy, how many of them
the run used, and the threads that used the most, so start-up, steady state and tail can be told apart.
Linux only. Not a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import CACHE, ROOT  # noqa: E402  (also puts the project on sys.path)
from transcode_vs_ffmpeg import INPUTS, ffmpeg_command, generated_input, ours_command  # noqa: E402

from pipeline.encode.ladder import LadderSettings  # noqa: E402
from pipeline.encode.transcode import output_frame_rate  # noqa: E402
from pipeline.inspect.probe import probe  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")

# Our run, instrumented (by wrapping private methods: a bench tool, kept in step with pipeline/): OS thread names (threads x264 starts inherit their creator's, so a rendition's
# encoder threads carry its name) and phase marks on stderr, as "MARK <epoch s> <what>".
PROFILED_OURS = """
import ctypes, sys, threading, time
def mark(what):
    print(f"MARK {time.time():.4f} {what}", file=sys.stderr, flush=True)
mark("interpreter up")
_libc = ctypes.CDLL(None)
_bootstrap = threading.Thread._bootstrap_inner
def _named(self):
    _libc.prctl(15, self.name[:15].encode(), 0, 0, 0)
    _bootstrap(self)
threading.Thread._bootstrap_inner = _named
from pipeline.encode.ladder import LadderSettings, plan_ladder
import pipeline.encode.transcode as transcode_module
from pipeline.encode import audio
mark("imports done")
def wrap(owner, name, before=None, after=None):
    original = getattr(owner, name)
    def wrapped(self, *args, **kwargs):
        if before: mark(before(self))
        result = original(self, *args, **kwargs)
        if after: mark(after(self))
        return result
    setattr(owner, name, wrapped)
wrap(transcode_module._Transcoder, "run", before=lambda self: "encoders open, decoding")
wrap(audio.AudioTrack, "finish", before=lambda self: "decode done")
wrap(transcode_module.RenditionOutput, "_flush", before=lambda self: f"{self.rendition.name} flush",
     after=lambda self: f"{self.rendition.name} closed+checked")
source, out, width, height, preset = sys.argv[1:6]
settings = LadderSettings(preset=preset)
transcode_module.transcode(source, plan_ladder(int(width), int(height), settings), out, settings)
mark("transcode returned")
"""


def core_busy() -> list[float]:
    """Busy seconds of each core since boot (/proc/stat cpuN lines; idle and iowait excluded)."""
    cores = []
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            fields = [int(v) for v in values]
            cores.append((sum(fields[:8]) - fields[3] - fields[4]) / TICK)
    return cores


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread of `pid`, keyed "tid:name"."""
    result = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        name = "main" if task.name == str(pid) else name
        result[f"{task.name}:{name}"] = (int(fields[11]) + int(fields[12])) / TICK
    return result


def sample(command: list[str], interval_s: float) -> list[tuple[float, float, dict[str, float]]]:
    """(seconds since start, busy seconds per core, CPU seconds per thread) until the command exits."""
    samples = []
    started = time.perf_counter()
    epoch = time.time()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while process.poll() is None:
        try:
            threads = thread_cpu(process.pid)
        except OSError:
            threads = {}
        samples.append((time.perf_counter() - started, core_busy(), threads))
        time.sleep(interval_s)
    # the run's threads are gone once it has exited: its last interval counts as idle
    samples.append((time.perf_counter() - started, core_busy(), samples[-1][2] if samples else {}))
    stderr = process.stderr.read()
    if process.returncode:
        raise SystemExit(f"{command[0]} failed with status {process.returncode}: {stderr}")
    for line in stderr.splitlines():
        if line.startswith("MARK "):
            _, at, what = line.split(" ", 2)
            print(f"  {float(at) - epoch:6.2f} s  {what}")
    return samples


def print_timeline(samples, bucket_s: float) -> None:
    """One line per bucket: how busy each core was, how many cores the run used, its busiest threads."""
    by_name_total: dict[str, float] = defaultdict(float)
    print(f"{'t (s)':>6} {'cores busy':>10} {'run':>5}  busiest threads (cores)")
    start_index = 0
    edge = bucket_s
    for i, (t, _, _) in enumerate(samples):
        if t < edge and i < len(samples) - 1:
            continue
        t0, busy0, threads0 = samples[start_index]
        t1, busy1, threads1 = samples[i]
        span = max(t1 - t0, 1e-6)
        by_name: dict[str, float] = defaultdict(float)   # a name's threads together (x264's share it)
        for thread, cpu in threads1.items():
            by_name[thread.split(":", 1)[1]] += (cpu - threads0.get(thread, 0.0)) / span
        for name, cores in by_name.items():
            by_name_total[name] += cores * span
        run = sum(by_name.values())
        top = sorted(by_name.items(), key=lambda item: -item[1])[:6]
        per_core = " ".join(f"{(after - before) / span:4.2f}" for before, after in zip(busy0, busy1))
        print(f"{t1:6.2f} {per_core:>10} {run:5.2f}  "
              + "  ".join(f"{name}={cores:.2f}" for name, cores in top if cores >= 0.05))
        start_index = i
        edge = t1 + bucket_s
    print("CPU s by thread name: " + ", ".join(f"{name}={seconds:.2f}" for name, seconds in
                                                 sorted(by_name_total.items(), key=lambda item: -item[1])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool", choices=("ours", "ffmpeg"))
    parser.add_argument("--input", default="portrait", choices=sorted(INPUTS))
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--interval", type=float, default=0.05, help="sampling period, seconds")
    parser.add_argument("--bucket", type=float, default=0.25, help="timeline resolution, seconds")
    args = parser.parse_args()
    settings = LadderSettings(preset=args.preset)
    source = generated_input(*INPUTS[args.input], args.seconds)
    info = probe(source).video
    with tempfile.TemporaryDirectory(dir=CACHE) as out:
        if args.tool == "ours":
            command = ours_command(source, Path(out), info.display_width, info.display_height, settings)
            command[2] = PROFILED_OURS
        else:
            fps = output_frame_rate(info.frame_rate, settings.max_frame_rate)
            command = ffmpeg_command(source, Path(out), info.display_width, info.display_height, fps, settings)
        samples = sample(command, args.interval)
    t_end, busy_end, threads_end = samples[-1]
    print(f"{args.tool} on {source.name}: wall {t_end:.2f} s, "
          f"machine busy {(sum(busy_end) - sum(samples[0][1])) / t_end:.2f} cores on average")
    print_timeline(samples, args.bucket)


if __name__ == "__main__":
    main()
