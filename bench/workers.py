"""Benchmark: transcode workers on the distributed engine (Procrastinate on PostgreSQL).

    flock /tmp/bench.lock .venv/bin/python bench/workers.py [--episodes 6] [--seconds 20] [--kills 10]
        [--stalled-s 10] [--json]

Everything is real: a throwaway PostgreSQL cluster (tests/support/postgres.py), SeaweedFS, `series db
migrate`, and `series worker` processes exactly as operators run them. Jobs are handed over as the ingest
API does (a job row, then a deferral), from an object in the uploads bucket. Parts:

  throughput  `--episodes` episodes of a generated `--seconds` s 640x360 clip, with one worker and then two
              worker processes (concurrency 1 each): wall time until every job is published, episodes per
              hour, and the machine's CPU per episode (so what more cores would give: a transcode is
              CPU-bound, so roughly cores / CPU-seconds-per-episode episodes per second, less the
              database and store's share)
  recovery    two workers; `--kills` times: a job is submitted, the worker transcoding it is killed with
              SIGKILL (with its child) at a random point, and the time until the other worker runs it again
              is measured; then the killed worker is started again. Bounded by SERIES_JOB_STALLED_S
              (`--stalled-s`) + the 2 s sweep + the 1 s fetch poll.

Not a test: it prints figures and asserts nothing. The machine is shared: hold the bench lock, and read
the load printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import _machine_busy_s, source_clip  # noqa: E402

SERIES = "bench-workers"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--stalled-s", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from tests.support.postgres import start_cluster
    from tests.support.s3_server import start_test_store

    clip = source_clip(args.seconds, 640, 360, fps=25)
    results: dict = {"episodes": args.episodes, "clip_s": args.seconds, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as scratch:
        cluster = start_cluster()
        store = start_test_store(Path(scratch) / "s3")
        try:
            for workers in (1, 2):
                env = _prepared_env(cluster, store, Path(scratch) / f"t{workers}", args.stalled_s, clip)
                results[f"throughput_{workers}"] = _throughput(env, workers, args.episodes, Path(scratch))
            env = _prepared_env(cluster, store, Path(scratch) / "kills", args.stalled_s, clip)
            results["recovery"] = _recovery(env, args.kills, Path(scratch))
        finally:
            store.stop()
            cluster.stop()
    _report(results, args)


def _prepared_env(cluster, store, data_dir: Path, stalled_s: float, clip: Path) -> dict[str, str]:
    from packager.store import ObjectStore
    from server.config import Settings
    from tests.support.catalog import add_series_for

    url = cluster.url(cluster.create_database(prefix="bench"))
    from tests.conftest import settings_env

    env = settings_env(data_dir, store, SERIES_DATABASE_URL=url, SERIES_INGEST_TOKEN="bench-ingest-token-Zr8Kq3Vm1Wd5",
                       SERIES_JOB_STALLED_S=str(stalled_s), SERIES_LADDER_MAX_RENDITIONS="2",
                       SERIES_MIN_DURATION_S="4")
    env.pop("SERIES_X264_PRESET")       # the service's own preset, not the tests' faster one
    migrated = subprocess.run([sys.executable, "-m", "server", "db", "migrate"], cwd=ROOT,
                              env={**os.environ, **env}, capture_output=True, text=True)
    if migrated.returncode != 0:
        raise SystemExit(f"series db migrate failed: {migrated.stderr.strip()}")
    settings = Settings.from_env(env)
    add_series_for(settings, SERIES)
    from dataclasses import replace

    with ObjectStore(settings.store) as episodes, ObjectStore(replace(settings.store,
                                                                      bucket=settings.jobs.uploads_bucket)) as uploads:
        episodes.ensure_bucket()
        uploads.ensure_bucket()
        uploads.put_bytes("raw/bench.mp4", clip.read_bytes(), content_type="video/mp4")
    return env


def _submit(env: dict[str, str], episodes: list[str]) -> list[str]:
    """Record and hand over one job per episode, as the ingest API does."""
    from server.config import Settings
    from server.jobs.engines.procrastinate_engine import Engine
    from server.jobs.job_store import JobStore
    from server.jobs.jobs import SOURCE_BUCKET, JobRequest, fingerprint

    settings = Settings.from_env(env)
    jobs = JobStore.open(settings.database_target)

    async def hand_over(created) -> None:
        engine = Engine(settings, jobs)
        await engine.open()
        try:
            for job in created:
                await engine.defer(job)
        finally:
            await engine.close()
    try:
        created = []
        for episode in episodes:
            key = f"bench-{episode}-{os.urandom(4).hex()}"
            job, _ = jobs.create(JobRequest(series_id=SERIES, episode_id=episode, source_kind=SOURCE_BUCKET,
                                            source_bucket=settings.jobs.uploads_bucket, source_key="raw/bench.mp4",
                                            idempotency_key=key, fingerprint=fingerprint({"key": key})))
            created.append(job)
        asyncio.run(hand_over(created))
        return [job.job_id for job in created]
    finally:
        jobs.close()


def _rows(env: dict[str, str]) -> dict[str, dict]:
    from drm.storage.engines import open_database

    with open_database(env["SERIES_DATABASE_URL"]) as db:
        return {row["job_id"]: dict(row) for row in db.query("SELECT * FROM ingest_jobs")}


def _start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "server", "worker", "--drain-s", "5"], cwd=ROOT,
                                env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _throughput(env: dict[str, str], workers: int, episodes: int, scratch: Path) -> dict:
    job_ids = _submit(env, [str(n) for n in range(1, episodes + 1)])
    busy_before = _machine_busy_s()
    started = time.perf_counter()
    processes = [_start_worker(env, scratch / f"throughput-{workers}-{n}.log") for n in range(workers)]
    try:
        while True:
            rows = _rows(env)
            states = [rows[job_id]["state"] for job_id in job_ids]
            if all(state in ("published", "failed") for state in states):
                break
            time.sleep(0.2)
    finally:
        wall = time.perf_counter() - started
        busy = (_machine_busy_s() - busy_before) if busy_before is not None else float("nan")
        for process in processes:
            _stop(process)
    published = states.count("published")
    return {"workers": workers, "published": published, "wall_s": round(wall, 1),
            "episodes_per_hour": round(3600 * published / wall, 1),
            "machine_cpu_s_per_episode": round(busy / max(1, published), 1),
            "machine_cores_busy": round(busy / wall, 2)}


def _holder(row: dict, processes: list[subprocess.Popen]) -> subprocess.Popen | None:
    parts = (row.get("owner_id") or "").split(":")
    return next((p for p in processes if len(parts) > 1 and parts[1] == str(p.pid)), None)


def _kill_with_children(pid: int) -> None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for target in [pid, *map(int, children)]:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _recovery(env: dict[str, str], kills: int, scratch: Path) -> dict:
    processes = [_start_worker(env, scratch / f"recovery-{n}.log") for n in range(2)]
    measured: list[float] = []
    try:
        for trial in range(kills):
            (job_id,) = _submit(env, [f"k{trial}"])
            deadline = time.monotonic() + 300
            while True:
                row = _rows(env)[job_id]
                victim = _holder(row, processes) if row["state"] == "transcoding" else None
                if victim is not None or row["state"] in ("published", "failed"):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"job {job_id} never reached transcoding: {row}")
                time.sleep(0.05)
            if victim is None:
                continue            # it finished before we caught it: no kill this trial
            time.sleep(random.uniform(0.0, 1.0))
            _kill_with_children(victim.pid)
            victim.wait()
            killed_at = time.perf_counter()
            while True:
                current = _rows(env)[job_id]
                if current["attempt"] > row["attempt"] and current["owner_id"]:
                    measured.append(time.perf_counter() - killed_at)
                    break
                if time.perf_counter() - killed_at > 300:
                    raise SystemExit(f"job {job_id} was never re-run after the kill")
                time.sleep(0.05)
            processes[processes.index(victim)] = _start_worker(env, scratch / f"recovery-{trial}.log")
    finally:
        for process in processes:
            _stop(process)
    return {"kills": len(measured), "stalled_s": float(env["SERIES_JOB_STALLED_S"]),
            "median_s": round(statistics.median(measured), 1) if measured else None,
            "max_s": round(max(measured), 1) if measured else None,
            "min_s": round(min(measured), 1) if measured else None}


def _report(results: dict, args) -> None:
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{results['episodes']} episodes of a {results['clip_s']:g} s 640x360 clip, {results['cores']} cores")
    for workers in (1, 2):
        r = results[f"throughput_{workers}"]
        print(f"  {workers} worker(s): {r['published']} published in {r['wall_s']} s = {r['episodes_per_hour']} "
              f"episodes/h; machine CPU {r['machine_cpu_s_per_episode']} s per episode, "
              f"{r['machine_cores_busy']} cores busy")
    one, two = results["throughput_1"], results["throughput_2"]
    cpu = one["machine_cpu_s_per_episode"]
    print(f"  two workers / one: x{one['wall_s'] / two['wall_s']:.2f}; CPU-bound, so about "
          f"{3600 * 8 / cpu:.0f} episodes/h on 8 cores, {3600 * 32 / cpu:.0f} on 32 (cores x 3600 / CPU s per episode)")
    r = results["recovery"]
    print(f"  recovery after kill -9 ({r['kills']} kills, SERIES_JOB_STALLED_S={r['stalled_s']:g}): "
          f"median {r['median_s']} s, min {r['min_s']} s, max {r['max_s']} s until another worker runs the job")


if __name__ == "__main__":
    main()
