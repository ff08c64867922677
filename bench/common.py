"""What every benchmark here needs: a cached generated source, and a child process measured by the kernel."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "bench"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def source_clip(seconds: float, width: int, height: int, fps: int = 30) -> Path:
    """A generated clip with motion and a tone, made once into var/bench/ and reused by later runs."""
    from pipeline.synthetic import generate_clip

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"gradient-{width}x{height}-{seconds:g}s.mp4"   # not src-*: transcode_vs_ffmpeg.py makes those
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        generate_clip(path, duration_s=seconds, width=width, height=height, fps=fps)
    return path


def measure(command: list[str]) -> dict[str, float]:
    """Run `command` to completion; wall time, CPU time (user + system) and peak RSS from wait4().

    `others_cores` is the CPU the rest of the machine used meanwhile, in cores (busy time from
    /proc/stat minus the child's own): the load a figure was measured under, since the machine is shared.
    """
    busy_before = _machine_busy_s()
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{command[0]} failed with status {status}: {' '.join(command)}")
    cpu = usage.ru_utime + usage.ru_stime
    others = max(0.0, (_machine_busy_s() - busy_before - cpu) / wall) if busy_before is not None else math.nan
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": usage.ru_maxrss / 1024, "others_cores": others}


def _machine_busy_s() -> float | None:
    """Seconds of CPU all processes have used since boot (Linux /proc/stat), None elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]   # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
