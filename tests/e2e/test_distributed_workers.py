"""Transcode workers on the distributed engine (Procrastinate on PostgreSQL), as hosts would run them: one
`series serve` taking uploads, `series worker` processes running them, one object store.

A worker killed with SIGKILL mid-transcode (with its child) has its job re-run by another worker within the
bound (stalled after SERIES_JOB_STALLED_S), every job publishes exactly once, three re-ingests of one episode
go live v1 < v2 < v3 in submission order while the older version keeps playing, and once the grace period has
passed `series gc` leaves no orphaned version or key. A worker paused (SIGSTOP) until its job was re-run
elsewhere changes nothing when it wakes. A cancelled running job stops within 5 s, nothing published. A
worker sent SIGTERM finishes the job it runs, takes no new one, and exits 0.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from drm.keystore import KeyStore
from drm.storage.engines import open_database
from packager.publishing.versions import EpisodeLocation, read_pointer, stored_versions
from packager.store import ObjectStore
from server.config import Settings
from server.publishing.garbage import collect_garbage
from tests.conftest import settings_env
from tests.e2e.test_two_instances import Instance
from tests.support.catalog import add_series_for
from tests.support.jobs import AUTH, INGEST_TOKEN
from tests.support.media import clip
from tests.support.s3_server import free_port

ROOT_DIR = Path(__file__).resolve().parents[2]
SERIES = "fleet"
STALLED_S = 4.0
RERUN_BOUND_S = 45.0            # the target for a dead worker's job to run again
CANCEL_BOUND_S = 5.0
DEADLINE_S = 240.0


class Worker:
    """One `series worker` subprocess, stopped by its own PID."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path, *, drain_s: float = 5.0) -> None:
        self.name, self.log_path, self.metrics_port = name, log_path, free_port()
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server", "worker", "--drain-s", str(drain_s),
                 "--metrics-port", str(self.metrics_port)],
                cwd=ROOT_DIR, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def children(self) -> list[int]:
        """The job children it runs (not multiprocessing's resource tracker)."""
        try:
            listed = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in listed if b"resource_tracker" not in _cmdline(int(pid))]

    def signal_all(self, signum: int) -> list[int]:
        children = self.children()
        for pid in [self.pid, *children]:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        return children

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-25:])


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def fleet_env(tmp_path, s3_store, postgres_url) -> dict[str, str]:
    env = settings_env(tmp_path / "seed", s3_store, SERIES_DATABASE_URL=postgres_url, SERIES_INGEST_TOKEN=INGEST_TOKEN,
                       SERIES_MIN_DURATION_S="4", SERIES_LADDER_MAX_RENDITIONS="1", SERIES_JOB_STALLED_S=str(STALLED_S),
                       SERIES_JOB_RETRY_DELAY_S="1", SERIES_RATE_IP_BURST="100000")
    assert Settings.from_env(env).jobs.engine == "procrastinate"       # the default on PostgreSQL
    migrated = subprocess.run([sys.executable, "-m", "server", "db", "migrate"], cwd=ROOT_DIR,
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    add_series_for(Settings.from_env(env), SERIES)
    return env


@pytest.fixture
async def fleet(tmp_path, fleet_env):
    """One service (runs no transcodes) and two workers; more workers can be added with fleet["start"]."""
    started: list = []
    service_env = {**fleet_env, "SERIES_DATA_DIR": str(tmp_path / "service"), "SERIES_LISTEN_PORT": str(free_port())}
    service = Instance("service", service_env, tmp_path / "service.log")
    started.append(service)

    def start_worker(name: str, drain_s: float = 5.0) -> Worker:
        worker = Worker(name, {**fleet_env, "SERIES_DATA_DIR": str(tmp_path / name)}, tmp_path / f"{name}.log",
                        drain_s=drain_s)
        started.append(worker)
        return worker

    try:
        workers = [start_worker("worker-a"), start_worker("worker-b")]
        async with aiohttp.ClientSession() as http:
            await service.wait_until_serving(http)
        yield {"service": service, "workers": workers, "start": start_worker, "env": fleet_env}
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture(scope="module")
def worker_clip(media_dir) -> Path:
    """Long enough to be caught mid-transcode, small enough for the suite (seconds of CPU)."""
    return clip(media_dir, "worker.mp4", duration_s=12, width=426, height=240, fps=25)


async def submit(http: aiohttp.ClientSession, service: Instance, episode: str, key: str, media: Path) -> str:
    headers = {**AUTH, "Idempotency-Key": key, "Content-Type": "video/mp4"}
    async with http.post(service.url(f"/v1/series/{SERIES}/episodes/{episode}/ingest"), headers=headers,
                         data=io.BytesIO(media.read_bytes())) as response:
        assert response.status == 202, await response.text()
        return (await response.json())["job_id"]


def job_rows(env: dict[str, str]) -> dict[str, dict]:
    with open_database(env["SERIES_DATABASE_URL"]) as db:
        return {row["job_id"]: dict(row) for row in db.query("SELECT * FROM ingest_jobs")}


async def until(predicate, what: str, *, timeout_s: float = DEADLINE_S, every_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        assert time.monotonic() < deadline, what
        await asyncio.sleep(every_s)


def worker_of(row: dict, workers: list[Worker]) -> Worker | None:
    """The worker whose process holds the job (owner ids start host:pid:...)."""
    owner = row.get("owner_id") or ""
    parts = owner.split(":")
    return next((worker for worker in workers if len(parts) > 1 and parts[1] == str(worker.pid)), None)


async def test_a_killed_worker_s_job_runs_again_elsewhere_and_every_job_publishes_once(fleet, worker_clip):
    service, workers, env = fleet["service"], fleet["workers"], fleet["env"]
    settings = Settings.from_env(env)
    store = ObjectStore(settings.store)
    reingested = EpisodeLocation(series_id=SERIES, episode_id="3")
    pointers: list[int] = []

    async def watch_pointer() -> None:      # the version players are sent to, sampled throughout
        while True:
            pointer = await asyncio.to_thread(read_pointer, store, reingested)
            if pointer is not None and (not pointers or pointers[-1] != pointer["version"]):
                pointers.append(int(pointer["version"]))
                master = f"{reingested.prefix}/v{pointer['version']}/master.m3u8"
                assert await asyncio.to_thread(store.exists, master), f"the pointer names an incomplete {master}"
            await asyncio.sleep(0.05)

    async with aiohttp.ClientSession() as http:
        watcher = asyncio.get_running_loop().create_task(watch_pointer())
        try:
            submitted = [await submit(http, service, "1", "e1", worker_clip),
                         await submit(http, service, "2", "e2", worker_clip)]
            reingests = [await submit(http, service, "3", f"e3-{n}", worker_clip) for n in (1, 2, 3)]
            submitted += reingests

            # kill -9 a worker and its child at a random point of a transcode
            def transcoding():
                rows = job_rows(env)
                return next((row for row in rows.values() if row["state"] == "transcoding"
                             and worker_of(row, workers)), None)
            victim_row = await until(transcoding, "no job reached transcoding")
            await asyncio.sleep(random.uniform(0.0, 0.5))
            victim = worker_of(victim_row, workers)
            killed_children = victim.signal_all(signal.SIGKILL)
            killed_at = time.monotonic()
            survivor = next(worker for worker in workers if worker is not victim)
            assert killed_children, "the worker had no transcode child to kill"

            # the killed job runs again, on the other worker, within the bound
            def rerun():
                row = job_rows(env)[victim_row["job_id"]]
                return row if row["attempt"] > victim_row["attempt"] and row["owner_id"] else None
            rerun_row = await until(rerun, f"the killed job never ran again:\n{survivor.log_tail()}",
                                    timeout_s=RERUN_BOUND_S, every_s=0.05)
            rerun_after_s = time.monotonic() - killed_at
            assert worker_of(rerun_row, workers) is survivor, rerun_row
            assert not any(_alive(pid) for pid in killed_children)

            def all_finished():
                rows = job_rows(env)
                return rows if all(rows[job_id]["state"] in ("published", "failed") for job_id in submitted) else None
            rows = await until(all_finished, f"jobs never finished:\n{survivor.log_tail()}")
            # what the operators see: the survivor counted its stalled re-run, the service the queue's depth
            async with http.get(f"http://127.0.0.1:{survivor.metrics_port}/metrics") as response:
                worker_metrics = await response.text()
            async with http.get(service.url("/metrics")) as response:
                service_metrics = await response.text()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    with open_database(env["SERIES_DATABASE_URL"]) as db:
        ended = db.query("SELECT attempt, error_code FROM ingest_job_attempts WHERE job_id = ?",
                         (victim_row["job_id"],))
    assert [tuple(row) for row in ended] == [(victim_row["attempt"], "interrupted")]      # why attempt 1 ended
    assert "series_worker_stalled_reruns_total 1.0" in worker_metrics, worker_metrics
    assert 'series_jobs{state="queued"}' in service_metrics

    # every job published, once: one version per job, none published twice
    assert {rows[job_id]["state"] for job_id in submitted} == {"published"}, rows
    versions = [rows[job_id]["version"] for job_id in reingests]
    assert versions == sorted(versions) and len(set(versions)) == 3, versions      # in submission order
    assert pointers == sorted(pointers) and pointers[-1] == versions[-1], pointers  # never backwards
    assert set(versions) <= set(pointers) | {versions[0]}, (pointers, versions)
    for episode in ("1", "2"):
        live = read_pointer(store, EpisodeLocation(series_id=SERIES, episode_id=episode))
        assert live is not None and live["version"] == 1, live      # no second version of a re-run job
    print(f"killed job re-run after {rerun_after_s:.1f} s (stalled after {STALLED_S:.0f} s)")

    # once the grace period has passed, gc leaves only live versions and their keys
    gc = subprocess.run([sys.executable, "-m", "server", "gc"], cwd=ROOT_DIR, env={**os.environ, **env},
                        capture_output=True, text=True, timeout=120)
    assert gc.returncode == 0, gc.stderr
    with open_database(env["SERIES_DATABASE_URL"]) as db:
        keystore = KeyStore(db, settings.drm)
        collect_garbage(store, keystore, grace_s=settings.gc_grace_s, now=time.time() + settings.gc_grace_s + 1)
        for episode in ("1", "2", "3"):
            location = EpisodeLocation(series_id=SERIES, episode_id=episode)
            live = read_pointer(store, location)["version"]
            assert set(stored_versions(store, location)) == {live}, (episode, stored_versions(store, location))
            assert set(keystore.key_versions(SERIES, episode)) == {live}, (episode, keystore.key_versions(SERIES,
                                                                                                         episode))
    store.close()


async def test_a_paused_worker_woken_after_its_job_ran_elsewhere_changes_nothing(fleet, worker_clip):
    service, workers, env = fleet["service"], fleet["workers"], fleet["env"]
    async with aiohttp.ClientSession() as http:
        job_id = await submit(http, service, "7", "paused", worker_clip)

        def transcoding():
            row = job_rows(env)[job_id]
            return row if row["state"] == "transcoding" and worker_of(row, workers) else None
        row = await until(transcoding, "the job never reached transcoding")
        paused = worker_of(row, workers)
        children = paused.signal_all(signal.SIGSTOP)
        try:
            def published():
                current = job_rows(env)[job_id]
                return current if current["state"] == "published" else None
            done = await until(published, "the job was not re-run while its worker was paused")
            assert done["attempt"] == row["attempt"] + 1
        finally:
            paused.signal_all(signal.SIGCONT)
        # the woken child's next write is refused: it stops, and the job, the pointer and the catalog stay
        await until(lambda: not any(_alive(pid) for pid in children), "the woken child did not stop", timeout_s=30)
        await asyncio.sleep(1.0)
    after = job_rows(env)[job_id]
    assert (after["state"], after["version"], after["attempt"]) == ("published", done["version"], done["attempt"])
    with ObjectStore(Settings.from_env(env).store) as store:
        location = EpisodeLocation(series_id=SERIES, episode_id="7")
        assert read_pointer(store, location)["version"] == done["version"]
        assert set(stored_versions(store, location)) == {done["version"]}
    assert paused.process.poll() is None        # the paused worker lives on, and takes new jobs


async def test_a_cancelled_running_job_stops_within_seconds(fleet, worker_clip):
    service, workers, env = fleet["service"], fleet["workers"], fleet["env"]
    async with aiohttp.ClientSession() as http:
        job_id = await submit(http, service, "8", "cancel-me", worker_clip)

        def transcoding():
            row = job_rows(env)[job_id]
            return row if row["state"] == "transcoding" and worker_of(row, workers) else None
        row = await until(transcoding, "the job never reached transcoding")
        children = worker_of(row, workers).children()
        async with http.post(service.url(f"/v1/jobs/{job_id}/cancel"), headers=AUTH) as response:
            assert response.status == 202, await response.text()
        asked_at = time.monotonic()

        def stopped():
            current = job_rows(env)[job_id]
            return current if current["state"] == "failed" and not any(_alive(pid) for pid in children) else None
        done = await until(stopped, "the cancelled job did not stop", timeout_s=CANCEL_BOUND_S, every_s=0.05)
        assert time.monotonic() - asked_at <= CANCEL_BOUND_S
    assert done["error_code"] == "cancelled"
    with ObjectStore(Settings.from_env(env).store) as store:
        assert read_pointer(store, EpisodeLocation(series_id=SERIES, episode_id="8")) is None   # nothing live


async def test_a_worker_told_to_stop_finishes_its_job_takes_no_other_and_exits_cleanly(fleet, worker_clip):
    service, env = fleet["service"], fleet["env"]
    for idle in fleet["workers"]:
        idle.stop()                         # the fleet's idle workers leave: one draining worker is left
    draining = fleet["start"]("draining", drain_s=120)
    async with aiohttp.ClientSession() as http:
        job_id = await submit(http, service, "9", "drained", worker_clip)

        def transcoding():
            row = job_rows(env)[job_id]
            return row if row["state"] == "transcoding" and worker_of(row, [draining]) else None
        row = await until(transcoding, "the job never reached transcoding")
        draining.process.send_signal(signal.SIGTERM)           # what systemd or Kubernetes sends
        later = await submit(http, service, "10", "after-the-signal", worker_clip)
        exit_code = await asyncio.to_thread(draining.process.wait, DEADLINE_S)
        assert exit_code == 0, draining.log_tail()
        done = job_rows(env)[job_id]
        # the running job was finished by the worker that had it, not handed back and run again
        assert (done["state"], done["attempt"]) == ("published", row["attempt"])
        assert job_rows(env)[later]["state"] == "queued"       # a stopping worker takes no new job
        fleet["start"]("next")
        await until(lambda: job_rows(env)[later]["state"] == "published", "the next worker did not run the job")
