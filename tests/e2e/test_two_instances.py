"""Two `series serve` instances on different ports, one PostgreSQL, one object store, as two hosts would
run them: an episode ingested through one plays through the other, a purchase on A plays through B, a
refund on A is refused by B within the bound the issue sets (1.5 s, measured from A's answer), and B
rides out a PostgreSQL restart without being restarted: 503 while the database is away (nothing granted
from memory once it has been away for 5 s), keys again after. B runs as two processes on one port
(`--processes 2`), so the refund must reach both; so must the session limit and a revoked account."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from drm.payments.purchases import PURCHASE, REFUND
from drm.storage.engines import open_database
from server.access.feed import FRESHNESS_S
from server.access.revocations import RELOAD_INTERVAL_S
from server.config import Settings
from tests.conftest import settings_env
from tests.server.catalog_support import OPERATOR_TOKEN, WEBHOOK_SECRET, payment_body
from tests.support.catalog import add_series_for
from tests.support.jobs import AUTH, INGEST_TOKEN
from tests.support.media import count_frames
from tests.support.s3_server import free_port

ROOT_DIR = Path(__file__).resolve().parents[2]
SERIES, EPISODE, BUYER = "two-hosts", "1", "alice"
REVOCATION_BOUND_S = 1.5        # the bound for a refund on A to be refused by B
START_TIMEOUT_S = 90.0


class Instance:
    """One `series serve` subprocess (its own data directory and port), stopped by its own PID."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path, processes: int = 1) -> None:
        self.name, self.port = name, int(env["SERIES_LISTEN_PORT"])
        self.log_path = log_path
        with log_path.open("wb") as log:       # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server", "serve", "--processes", str(processes)], cwd=ROOT_DIR,
                env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self) -> str:
        lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if '"method"' not in line]
        return "\n".join(lines[-30:])

    async def wait_until_serving(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.process.poll() is None, f"{self.name} exited:\n{self.log_tail()}"
            try:
                async with http.get(self.url("/healthz")) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, f"{self.name} did not start:\n{self.log_tail()}"
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def shared_env(tmp_path, s3_store, postgres_url) -> dict[str, str]:
    """What every instance shares: the database, the store and its bucket, the secrets."""
    env = settings_env(tmp_path / "seed", s3_store, SERIES_DATABASE_URL=postgres_url, SERIES_INGEST_TOKEN=INGEST_TOKEN,
                       SERIES_OPERATOR_TOKEN=OPERATOR_TOKEN, SERIES_WEBHOOK_SECRET=WEBHOOK_SECRET,
                       SERIES_MIN_DURATION_S="4", SERIES_LADDER_MAX_RENDITIONS="1",
                       SERIES_RATE_VIEWER_BURST="100000", SERIES_RATE_IP_BURST="100000",
                       # the instances run jobs themselves (a one-host install's choice on PostgreSQL)
                       SERIES_JOB_ENGINE="in-process")
    add_series_for(Settings.from_env(env), SERIES)
    return env


@pytest.fixture
async def instances(tmp_path, shared_env):
    started = []
    for name, processes in (("A", 1), ("B", 2)):
        env = {**shared_env, "SERIES_DATA_DIR": str(tmp_path / name), "SERIES_LISTEN_PORT": str(free_port())}
        started.append(Instance(name, env, tmp_path / f"{name}.log", processes))
    try:
        async with aiohttp.ClientSession() as http:
            for instance in started:
                await instance.wait_until_serving(http)
        yield started
    finally:
        for instance in started:
            instance.stop()


def listeners_within(url: str, expected: int, timeout_s: float) -> int:
    """How many change-feed LISTEN connections PostgreSQL sees, polled until `expected` or the timeout."""
    deadline = time.monotonic() + timeout_s
    with open_database(url) as db:
        while True:
            count = db.query("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'series-listen-%'")[0][0]
            if count == expected or time.monotonic() > deadline:
                return count
            time.sleep(0.2)


async def post_webhook(http: aiohttp.ClientSession, instance: Instance, body: bytes) -> dict:
    from drm.payments.purchases import SIGNATURE_HEADER, sign

    headers = {SIGNATURE_HEADER: sign(WEBHOOK_SECRET.encode(), int(time.time()), body),
               "Content-Type": "application/json"}
    async with http.post(instance.url("/v1/webhooks/payments"), data=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def key_answer(instance: Instance, key_path: str) -> tuple[int, bytes]:
    # a new connection each time: B's two processes share the port, and the kernel spreads connections
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        async with fresh.get(instance.url(key_path)) as response:
            return response.status, await response.read()


async def test_two_instances_share_purchases_refunds_and_survive_a_database_restart(
        instances, shared_env, short_clip, postgres_cluster):
    a, b = instances
    async with aiohttp.ClientSession() as http:
        # B's two processes and A each follow the change feed on a LISTEN connection of their own
        # (B answering means one of its processes serves; the other may still be opening its connection)
        assert await asyncio.to_thread(listeners_within, shared_env["SERIES_DATABASE_URL"], 3, 60) == 3

        # an episode handed to B is run by B's first process (whichever process took the upload), on PostgreSQL
        headers = {**AUTH, "Idempotency-Key": "two-hosts-1", "Content-Type": "video/mp4"}
        async with http.post(b.url(f"/v1/series/{SERIES}/episodes/{EPISODE}/ingest"), headers=headers,
                             data=io.BytesIO(short_clip.read_bytes())) as response:
            assert response.status == 202, await response.text()
            job_id = (await response.json())["job_id"]
        deadline = time.monotonic() + 180
        while True:
            async with http.get(a.url(f"/v1/jobs/{job_id}"), headers=AUTH) as response:     # seen from A too
                job = await response.json()
            if job["state"] in ("published", "failed"):
                break
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.2)
        assert job["state"] == "published", job

        # a purchase on A plays through B
        token = playback_token(shared_env)
        master = b.url(f"/v1/series/{SERIES}/episodes/{EPISODE}/master.m3u8?token={token}")
        assert (await post_webhook(http, a, payment_body(PURCHASE, "pay-1", BUYER, SERIES)))["result"] == "granted"
        frames, _ = await asyncio.to_thread(count_frames, master)
        assert frames > 0
        key_path = await first_key_path(http, b, master)
        for _ in range(6):                          # both of B's processes now remember the grant
            assert (await key_answer(b, key_path))[0] == 200

        # the session limit (3) holds across the instances and B's two processes: a second and a third
        # session get in through A and B, a fourth is refused by every process, the first plays on
        others = [key_path.replace(f"token={token}", f"token={playback_token(shared_env)}") for _ in range(3)]
        assert (await key_answer(a, others[0]))[0] == 200
        assert (await key_answer(b, others[1]))[0] == 200
        for _ in range(4):
            assert (await key_answer(b, others[2]))[0] == 403
            assert (await key_answer(a, others[2]))[0] == 403
        assert (await key_answer(b, key_path))[0] == 200

        # a refund on A is refused by B within the bound, measured from A's answer
        assert (await post_webhook(http, a, payment_body(REFUND, "pay-1", BUYER, SERIES)))["result"] == "revoked"
        refunded_at = time.monotonic()
        answers = []
        while time.monotonic() - refunded_at < REVOCATION_BOUND_S + 3:
            answers.append((time.monotonic() - refunded_at, (await key_answer(b, key_path))[0]))
            if len(answers) >= 4 and all(status == 403 for _, status in answers[-4:]):
                break
        granted_after = [at for at, status in answers if status == 200]
        assert not granted_after or max(granted_after) <= REVOCATION_BOUND_S, answers
        assert [status for _, status in answers[-4:]] == [403] * 4, answers

        # bought again, then PostgreSQL goes away and comes back; B is never restarted
        assert (await post_webhook(http, a, payment_body(PURCHASE, "pay-2", BUYER, SERIES)))["result"] == "granted"
        await eventually_status(b, key_path, 200, within_s=5)
        b_pid = b.process.pid
        await asyncio.to_thread(postgres_cluster.pg_ctl, "-m", "fast", "-w", "stop")
        stopped_at = time.monotonic()
        try:
            seen = []
            while time.monotonic() - stopped_at < FRESHNESS_S + 4:
                sent = time.monotonic() - stopped_at
                seen.append((sent, (await key_answer(b, key_path))[0]))
                await asyncio.sleep(0.05)
            late = [(sent, status) for sent, status in seen if sent > FRESHNESS_S + 0.1]
            assert late and all(status == 503 for _, status in late), seen      # fail closed, never from memory
            assert all(status in (200, 503) for _, status in seen), seen
        finally:
            await asyncio.to_thread(postgres_cluster.start)
        await eventually_status(b, key_path, 200, within_s=60)
        assert b.process.poll() is None and b.process.pid == b_pid
        # A too, once its memory (the change feed, the revocations: each reloaded within a second) is fresh
        await eventually_status(a, key_path, 200, within_s=10)

        # the buyer is signed out everywhere through A: B's processes refuse the buyer's tokens within the bound
        async with http.post(a.url("/v1/operator/account-tokens/revoke"), json={"subject": BUYER},
                             headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}) as response:
            assert response.status == 200, await response.text()
        revoked_at, answers = time.monotonic(), []
        while time.monotonic() - revoked_at < RELOAD_INTERVAL_S + 4:       # a reload each second, per process
            answers.append((time.monotonic() - revoked_at, (await key_answer(b, key_path))[0]))
            if len(answers) >= 6 and all(status == 401 for _, status in answers[-6:]):   # both of B's processes
                break
        granted_after = [at for at, status in answers if status == 200]
        assert not granted_after or max(granted_after) <= RELOAD_INTERVAL_S + 2, answers
        assert [status for _, status in answers[-6:]] == [401] * 6, answers


def playback_token(shared_env: dict[str, str]) -> str:
    """A playback token for the buyer, minted with the signing keys every instance shares."""
    from drm.access.tokens import TokenSigner

    return TokenSigner(Settings.from_env(shared_env).drm).mint(BUYER, SERIES)


async def first_key_path(http: aiohttp.ClientSession, instance: Instance, master_url: str) -> str:
    """The path and query of the first key URI the episode's first media playlist names, as served."""
    import m3u8

    async with http.get(master_url) as response:
        master = m3u8.loads(await response.text(), uri=master_url)
    media_url = master.playlists[0].absolute_uri
    async with http.get(media_url) as response:
        media = m3u8.loads(await response.text(), uri=media_url)
    key_uri = media.keys[-1].absolute_uri
    return key_uri[key_uri.index("/v1/keys/"):]


async def eventually_status(instance: Instance, key_path: str, status: int, *, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while (await key_answer(instance, key_path))[0] != status:
        assert time.monotonic() < deadline, f"{instance.name} never answered {status}:\n{instance.log_tail()}"
        await asyncio.sleep(0.1)
