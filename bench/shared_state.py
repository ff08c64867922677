"""Benchmark: key servers on a shared PostgreSQL with a million buyers, and revocation across instances.

    flock /tmp/bench.lock .venv/bin/python bench/shared_state.py [--buyers 1000000] [--rounds 3]
        [--seconds 8] [--slices 4] [--connections 64] [--active 20000] [--churn 100000]
        [--revocations 200] [--listen-killed 50] [--json]

Everything is real: a throwaway PostgreSQL cluster (tests/support/postgres.py: Debian's server, fsync
off, loopback), SeaweedFS, `series serve` processes exactly as operators run them (the JSON access log
to a file), wrk as the load generator (installed with apt if missing). Parts, in one run:

  memory     the key server's RSS against 0 buyers, then against `--buyers` entitlements COPYed into
             PostgreSQL, after the steady mix and after the churn below (the whole-table snapshot this
             replaces cost +663 MiB at 1 M, bench notes in /work/shared/notes/SCALE-NOTES.md)
  steady     the key-bench mix (80 % entitled, 15 % unentitled, 5 % bad tokens) with `--active` viewers
             drawn from all the buyers, each asking again and again as players do: requests/s, p50/p99,
             database queries per key request once warm (the server's own series_access_database_queries
             counter, change-feed polls included)
  processes  `series serve --processes 1` vs `--processes 2` on the same mix, with the bare aiohttp
             handler as the ceiling, driven in turn in --slices slices per round: server CPU µs per
             request (all of a server's processes) and requests/s. The load generator takes a core.
  churn      every request a viewer not seen before (`--churn` of them): every answer from the database
  revocation A and B (one process each): a purchase through A's webhook, B grants, a refund through A's
             webhook, then B asked back to back until it refuses: the time from A's answer to B's first
             refusal, `--revocations` trials; then `--listen-killed` more with B's LISTEN connection
             terminated (pg_terminate_backend) just before each refund; then PostgreSQL stopped: when B
             last granted, when it first refused, and how long after the restart it grants again.

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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import key_server  # noqa: E402  (bench/key_server.py: the mix, wrk, the bare ceiling)
from common import _machine_busy_s  # noqa: E402

SERIES = "bench"
EPISODES, PERIODS = 10, 20
WEBHOOK_SECRET = "bench-webhook-Qm7Tz2Lp9Xc4Vb8Nk3"
OPERATOR_TOKEN = "bench-operator-Hs5Wd1Jr6Yf0Ga7Ue2"


@dataclass
class Server:
    """A `series serve` subprocess (its supervisor and children for --processes > 1)."""

    name: str
    process: subprocess.Popen
    port: int
    log: Path

    def pids(self) -> list[int]:
        found, queue = [], [self.process.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                queue += [int(child) for child in task.read_text().split()]
        return found

    def serving_pids(self) -> list[int]:
        """The processes that answer requests: the service processes under a supervisor (not its
        multiprocessing resource tracker), else the process itself."""
        children = [pid for pid in self.pids()[1:] if b"spawn_main" in _cmdline(pid)]
        return children or [self.process.pid]

    def cpu_s(self) -> float:
        return sum(_cpu_or_zero(pid) for pid in self.pids())

    def rss_mib(self) -> float:
        return sum(_rss_kib(pid) for pid in self.serving_pids()) / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class BareServers:
    """`count` processes of the bare aiohttp handler (16 bytes) on one port (SO_REUSEPORT): the ceiling,
    and, with two, what two processes cost on this machine with nothing of ours in them."""

    def __init__(self, count: int) -> None:
        from tests.support.s3_server import free_port

        self.port = free_port()
        self.processes = [subprocess.Popen([sys.executable, __file__, "--serve-bare", str(self.port)],
                                           stdout=subprocess.PIPE, text=True) for _ in range(count)]
        for process in self.processes:
            if process.stdout.readline().strip() != "READY":
                self.stop()
                raise RuntimeError("a bare server did not start")

    def cpu_s(self) -> float:
        return sum(_cpu_or_zero(process.pid) for process in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            key_server.stop_server(process)


def serve_bare(port: int) -> None:
    from aiohttp import web

    async def main() -> None:
        app = web.Application()

        async def bare(request: web.Request) -> web.Response:
            return web.Response(body=key_server.BARE_KEY, content_type="application/octet-stream")

        app.router.add_get("/key", bare)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
        print("READY", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def _cpu_or_zero(pid: int) -> float:
    try:
        return key_server.cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_series(name: str, env: dict[str, str], work: Path, *, processes: int = 1) -> Server:
    from tests.support.s3_server import free_port

    port = free_port()
    log = work / f"{name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen([sys.executable, "-m", "server", "serve", "--processes", str(processes)],
                                   cwd=ROOT, env={**os.environ, **env, "SERIES_LISTEN_PORT": str(port),
                                                  "SERIES_DATA_DIR": str(work / name)},
                                   stdout=subprocess.DEVNULL, stderr=handle)
    server = Server(name, process, port, log)
    try:
        _wait_until_serving(server, processes)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_serving(server: Server, processes: int) -> None:
    name, process, port, log = server.name, server.process, server.port, server.log
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            status = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                     f"http://127.0.0.1:{port}/healthz"], capture_output=True, text=True).stdout
        except FileNotFoundError:      # no curl: ask with Python
            status = _status(port, "/healthz")
        if status == "200" and len(server.serving_pids()) == processes:
            time.sleep(1.0)            # every process up (SO_REUSEPORT) and its first feed poll done
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.3)


def _status(port: int, path: str) -> str:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except OSError:
        return "000"


def metrics_of(server: Server) -> dict[str, float]:
    """This server's key outcomes and access-room database queries (one process: --processes 1)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, float] = {"key_requests": 0.0, "queries": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "series_key_requests_total":
                found["key_requests"] = found.get("key_requests", 0) + sample.value
            elif sample.name == "series_access_database_queries_total":
                found[f"queries_{sample.labels['what']}"] = sample.value
                found["queries"] = found.get("queries", 0) + sample.value
    return found


# -- the world -------------------------------------------------------------------------------------------

def make_world(work: Path, url: str, store) -> dict[str, str]:
    from server.config import Settings
    from server.services import Services
    from tests.support.catalog import add_series

    env = key_server.bench_env(work, store.endpoint, store.settings.access_key, store.settings.secret_key)
    env.update({"SERIES_DATABASE_URL": url, "SERIES_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "SERIES_OPERATOR_TOKEN": OPERATOR_TOKEN})
    with Services.open(Settings.from_env(env)) as services:
        services.store.ensure_bucket()
        add_series(services, SERIES)
    return env


def seed_keys(env: dict[str, str]) -> list:
    from server.config import Settings
    from server.services import Services

    with Services.open(Settings.from_env(env)) as services:
        return [key for episode in range(EPISODES) for key in services.keystore.create_keys(SERIES, f"e{episode}", PERIODS)]


def copy_buyers(url: str, buyers: int) -> float:
    """COPY `buyers` active entitlements (v0 … v{buyers-1}) into PostgreSQL; seconds taken."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy("COPY entitlements (viewer_id, series_id, source, granted_at, reason, reference)"
                         " FROM STDIN") as copy:
            for number in range(buyers):
                copy.write_row((f"v{number}", SERIES, "purchase", 1.7e9, "bench", f"p{number}"))
        cursor.execute("ANALYZE entitlements")
    return time.perf_counter() - started


def plan(env: dict[str, str], keys: list, *, viewers: list[str], size: int, seed: int) -> list:
    """The key-bench mix over `viewers` (80 % of requests), strangers (15 %) and bad tokens (5 %)."""
    from drm.access.tokens import TokenSigner
    from server.config import Settings

    signer = TokenSigner(Settings.from_env(env).drm)
    rng = random.Random(seed)
    tokens = {viewer: signer.mint(viewer, SERIES) for viewer in viewers}
    strangers = [signer.mint(f"u{n}", SERIES) for n in range(max(1, len(viewers) // 5))]
    planned = []
    for number in range(size):
        kind = rng.choices(["entitled", "unentitled", "bad"], weights=[80, 15, 5])[0]
        key = rng.choice(keys)
        if kind == "entitled":
            viewer = viewers[number % len(viewers)] if len(viewers) >= size else rng.choice(viewers)
            planned.append(key_server.Planned(f"/v1/keys/{key.key_id}?token={tokens[viewer]}", kind, key.key))
        elif kind == "unentitled":
            planned.append(key_server.Planned(f"/v1/keys/{key.key_id}?token={rng.choice(strangers)}", kind, None))
        else:
            token = tokens[rng.choice(viewers)]
            bad = rng.choice([token[:-8] + "AAAAAAAA", "not-a-token", token.split(".")[0] + ".e30.x"])
            planned.append(key_server.Planned(f"/v1/keys/{key.key_id}?token={bad}", kind, None))
    return planned


def wrk(server_port: int, planned: list, seconds: float, connections: int, work: Path) -> dict:
    result = key_server.drive_wrk(server_port, planned, seconds=seconds, connections=connections, work=work)
    result["requests"] = result["requests_per_s"] * seconds
    return result


# -- parts ---------------------------------------------------------------------------------------------

def measure_memory_at_zero(env, work, steady, args) -> dict:
    server = start_series("zero", env, work)
    try:
        at_start = server.rss_mib()
        wrk(server.port, steady, args.seconds, args.connections, work)
        return {"rss_start_mib": at_start, "rss_after_mix_mib": server.rss_mib()}
    finally:
        server.stop()


def steady_and_processes(env, work, steady, args) -> dict:
    """--processes 1 and 2, and the bare handler in 1 and 2 processes, driven in turn; the 1-process server's
    database queries per key request."""
    servers: dict = {}
    try:
        for name, count in (("bare", 1), ("bare2", 2)):
            servers[name] = BareServers(count)
        for name, processes in (("one", 1), ("two", 2)):
            servers[name] = start_series(name, env, work, processes=processes)
        ports = {name: server.port for name, server in servers.items()}
        cpu_of = {name: server.cpu_s for name, server in servers.items()}
        bare_plan = [key_server.Planned("/key", "bare", key_server.BARE_KEY)]
        plans = {"bare": bare_plan, "bare2": bare_plan, "one": steady, "two": steady}
        rss_start = servers["one"].rss_mib()
        # Warm until steady: each process remembers on its own, so a viewer's first answer is a miss in every
        # process that serves it; a pass of the plan per process, and one more.
        for name, processes in (("one", 1), ("two", 2)):
            wrk(ports[name], steady, float(max(2, round((processes + 1) * len(steady) / 3000))), args.connections, work)
        before = metrics_of(servers["one"])
        rounds: dict[str, list[dict]] = {name: [] for name in ports}
        slice_s = args.seconds / args.slices
        for _ in range(args.rounds):
            per_round = {name: {"cpu_s": 0.0, "requests": 0.0, "slices": []} for name in ports}
            for _ in range(args.slices):
                for name, port in ports.items():
                    cpu_before = cpu_of[name]()
                    result = wrk(port, plans[name], slice_s, args.connections, work)
                    cpu_after = cpu_of[name]()
                    per_round[name]["cpu_s"] += cpu_after - cpu_before
                    per_round[name]["requests"] += result["requests"]
                    per_round[name]["slices"].append(result)
            for name, measured in per_round.items():
                slices = measured["slices"]
                rounds[name].append({
                    "requests_per_s": measured["requests"] / args.seconds,
                    "p50_ms": statistics.median(s["p50_ms"] for s in slices),
                    "p99_ms": statistics.median(s["p99_ms"] for s in slices),
                    "cpu_us_per_request": 1e6 * measured["cpu_s"] / measured["requests"],
                })
        after = metrics_of(servers["one"])
        key_requests = after["key_requests"] - before["key_requests"]
        queries = {name.removeprefix("queries_"): after.get(name, 0) - before.get(name, 0)
                   for name in after if name.startswith("queries_")}
        summary = {name: {
            "rounds": runs,
            "requests_per_s": statistics.median(r["requests_per_s"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "cpu_us_per_request": statistics.median(r["cpu_us_per_request"] for r in runs),
        } for name, runs in rounds.items()}
        summary["cpu_two_over_one"] = statistics.median(
            two["cpu_us_per_request"] / one["cpu_us_per_request"] for one, two in zip(rounds["one"], rounds["two"]))
        summary["bare_cpu_two_over_one"] = statistics.median(
            two["cpu_us_per_request"] / one["cpu_us_per_request"] for one, two in zip(rounds["bare"], rounds["bare2"]))
        summary["steady"] = {"key_requests": key_requests, "queries": queries,
                             "queries_per_key_request": sum(queries.values()) / key_requests,
                             "queries_per_key_request_without_polls":
                                 sum(v for k, v in queries.items() if k != "feed") / key_requests}
        summary["memory"] = {"rss_start_mib": rss_start, "rss_after_steady_mib": servers["one"].rss_mib(),
                             "rss_two_processes_mib": servers["two"].rss_mib()}
        return summary
    finally:
        for server in servers.values():
            server.stop()


def churn(env, work, churn_plan, args) -> dict:
    server = start_series("churn", env, work)
    try:
        rss_start = server.rss_mib()
        before = metrics_of(server)
        seconds = float(max(2 * args.seconds, 30))      # long enough for the memory bounds to be reached
        result = wrk(server.port, churn_plan, seconds, args.connections, work)
        after = metrics_of(server)
        key_requests = after["key_requests"] - before["key_requests"]
        queries = sum(after.get(n, 0) - before.get(n, 0) for n in after if n.startswith("queries_"))
        return {**result, "key_requests": key_requests, "queries_per_key_request": queries / max(1, key_requests),
                "rss_start_mib": rss_start, "rss_after_mib": server.rss_mib()}
    finally:
        server.stop()


async def revocation(env, work, keys, cluster, args) -> dict:
    import aiohttp

    from drm.access.tokens import TokenSigner
    from drm.payments.purchases import SIGNATURE_HEADER, sign
    from server.config import Settings

    signer = TokenSigner(Settings.from_env(env).drm)
    a = start_series("A", env, work)
    try:
        b = start_series("B", env, work)
    except BaseException:
        a.stop()
        raise
    key = keys[0]
    results: dict = {}
    try:
        async with aiohttp.ClientSession() as http:
            async def webhook(kind: str, payment: str, viewer: str) -> float:
                body = json.dumps({"id": f"evt-{payment}-{kind.split('.')[1]}", "type": kind, "data": {
                    "payment_id": payment, "viewer_id": viewer, "series_id": SERIES, "amount_cents": 499,
                    "currency": "USD"}}).encode()
                headers = {SIGNATURE_HEADER: sign(WEBHOOK_SECRET.encode(), int(time.time()), body),
                           "Content-Type": "application/json"}
                async with http.post(f"http://127.0.0.1:{a.port}/v1/webhooks/payments", data=body,
                                     headers=headers) as response:
                    assert response.status == 200, await response.text()
                    await response.read()
                return time.perf_counter()

            async def key_status(token: str) -> int:
                async with http.get(f"http://127.0.0.1:{b.port}/v1/keys/{key.key_id}?token={token}") as response:
                    await response.read()
                    return response.status

            async def until(token: str, status: int, limit_s: float = 30.0) -> float:
                started = time.perf_counter()
                while (answer := await key_status(token)) != status:
                    if time.perf_counter() - started > limit_s:
                        raise RuntimeError(f"B answered {answer}, never {status}")
                return time.perf_counter()

            async def trials(count: int, prefix: str, before_refund=None) -> list[float]:
                latencies = []
                for n in range(count):
                    viewer, payment = f"{prefix}{n}", f"pay-{prefix}{n}"
                    token = signer.mint(viewer, SERIES)
                    await webhook("payment.succeeded", payment, viewer)
                    await until(token, 200)
                    assert await key_status(token) == 200          # now from B's memory
                    if before_refund is not None:
                        await before_refund()
                    refunded = await webhook("payment.refunded", payment, viewer)
                    latencies.append(await until(token, 403) - refunded)
                return latencies

            def summary(latencies: list[float]) -> dict:
                ms = sorted(1000 * value for value in latencies)
                return {"trials": len(ms), "p50_ms": statistics.median(ms), "p90_ms": ms[int(0.9 * (len(ms) - 1))],
                        "max_ms": ms[-1]}

            results["listening"] = summary(await trials(args.revocations, "r"))

            import psycopg

            async def kill_listener() -> None:
                # B reconnects on its own (0.2 s, doubling to 5 s): wait for the previous trial's kill to heal
                deadline = time.perf_counter() + 15
                while True:
                    with psycopg.connect(env["SERIES_DATABASE_URL"], autocommit=True) as connection:
                        killed = connection.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                            (f"series-listen-{b.process.pid}",)).fetchall()
                    if killed:
                        return
                    if time.perf_counter() > deadline:
                        raise RuntimeError("B's LISTEN connection was not back within 15 s of the last kill")
                    await asyncio.sleep(0.1)

            results["listen_killed"] = summary(await trials(args.listen_killed, "k", kill_listener))

            # PostgreSQL stopped: B must grant nothing once 5 s have passed
            viewer = "stop0"
            token = signer.mint(viewer, SERIES)
            await webhook("payment.succeeded", "pay-stop0", viewer)
            await until(token, 200)
            await asyncio.to_thread(cluster.pg_ctl, "-m", "fast", "-w", "stop")
            stopped = time.perf_counter()
            seen = []
            try:
                while time.perf_counter() - stopped < 10:
                    sent = time.perf_counter() - stopped
                    seen.append((sent, await key_status(token)))
                    await asyncio.sleep(0.01)
            finally:
                await asyncio.to_thread(cluster.start)
            restarted = time.perf_counter()
            back = await until(token, 200, limit_s=120) - restarted
            granted = [at for at, status in seen if status == 200]
            refused = [at for at, status in seen if status == 503]
            results["database_stopped"] = {
                "last_grant_s": max(granted) if granted else None, "first_503_s": min(refused) if refused else None,
                "grants_after_5s": sum(1 for at in granted if at > 5.0), "answers": len(seen),
                "other_statuses": sorted({status for _, status in seen} - {200, 503}),
                "grants_again_after_restart_s": back}
    finally:
        a.stop()
        b.stop()
    return results


# -- main -----------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=1_000_000)
    parser.add_argument("--active", type=int, default=20_000, help="viewers of the steady mix, drawn from the buyers")
    parser.add_argument("--churn", type=int, default=100_000, help="viewers of the churn mix, one request each")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per server and round")
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--revocations", type=int, default=200)
    parser.add_argument("--listen-killed", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    if not key_server.ensure_wrk():
        raise SystemExit("wrk is needed (apt-get install wrk)")

    from drm.storage.engines import open_database
    from server.local.object_store import LocalObjectStore, LocalStoreSettings
    from tests.support.postgres import start_cluster
    from tests.support.s3_server import free_port

    results: dict = {"machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}}
    busy_before, started = _machine_busy_s(), time.perf_counter()
    cluster = start_cluster()
    work = Path(tempfile.mkdtemp(prefix="shared-state-bench-"))
    store = LocalObjectStore(LocalStoreSettings(data_dir=work / "s3", port=free_port()))
    store.start()
    try:
        url = cluster.url(cluster.create_database(prefix="bench"))
        open_database(url, migrate=True).close()
        env = make_world(work, url, store)
        keys = seed_keys(env)
        rng = random.Random(1)
        active = [f"v{rng.randrange(args.buyers)}" for _ in range(args.active)]
        steady = plan(env, keys, viewers=active, size=2 * args.active, seed=2)
        print("memory at 0 buyers ...", file=sys.stderr, flush=True)
        results["zero_buyers"] = measure_memory_at_zero(env, work, steady, args)
        print(f"COPY {args.buyers:,} entitlements ...", file=sys.stderr, flush=True)
        results["copy_s"] = copy_buyers(url, args.buyers)
        print("steady mix, 1 vs 2 processes, bare ceiling ...", file=sys.stderr, flush=True)
        results["key"] = steady_and_processes(env, work, steady, args)
        print("churn ...", file=sys.stderr, flush=True)
        churners = [f"v{number}" for number in rng.sample(range(args.buyers), args.churn)]
        results["churn"] = churn(env, work, plan(env, keys, viewers=churners, size=args.churn, seed=3), args)
        print("revocation across instances ...", file=sys.stderr, flush=True)
        results["revocation"] = asyncio.run(revocation(env, work, keys, cluster, args))
    except BaseException:
        # a part that fails late must not take the earlier parts' figures with it
        print(json.dumps({"partial_results": results}, indent=2, default=str), file=sys.stderr)
        raise
    finally:
        store.stop()
        cluster.stop()
    wall = time.perf_counter() - started
    results["machine"].update(load_after=os.getloadavg()[0], minutes=wall / 60,
                              machine_busy_cores=(_machine_busy_s() - busy_before) / wall if busy_before else None)
    report(results, args)
    return 0


def report(results: dict, args) -> None:
    if args.json:
        print(json.dumps(results, indent=2, default=str))
        return
    machine = results["machine"]
    key = results["key"]
    print(f"shared state on PostgreSQL: {args.buyers:,} buyers (COPY {results['copy_s']:.1f} s), {args.active:,} active "
          f"viewers, {args.connections} connections, wrk, {args.rounds} rounds x {args.seconds:g} s in {args.slices} "
          f"slices; {machine['cpus']} CPUs shared with the load generator; 1-min load {machine['load_before']:.1f} "
          f"before, {machine['load_after']:.1f} after; machine busy {machine['machine_busy_cores'] or 0:.2f} cores "
          f"on average over {machine['minutes']:.1f} min")
    print(f"{'server':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>12}")
    for name, label in (("bare", "bare aiohttp"), ("bare2", "bare aiohttp x 2"), ("one", "--processes 1"),
                        ("two", "--processes 2")):
        r = key[name]
        print(f"{label:<22}{r['requests_per_s']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
              f"{r['cpu_us_per_request']:>12.0f}")
    print(f"CPU per request, 2 processes / 1: {key['cpu_two_over_one']:.2f} (target <= 1.1); the bare handler's: "
          f"{key['bare_cpu_two_over_one']:.2f}")
    steady = key["steady"]
    print(f"database queries per key request, steady: {steady['queries_per_key_request']:.4f} (target <= 0.05; "
          f"{steady['queries_per_key_request_without_polls']:.4f} without the change-feed polls) over "
          f"{steady['key_requests']:,.0f} key requests: {steady['queries']}")
    churned = results["churn"]
    print(f"churn (every viewer new): {churned['requests_per_s']:.0f} req/s, p50 {churned['p50_ms']:.2f} ms, p99 "
          f"{churned['p99_ms']:.2f} ms, {churned['queries_per_key_request']:.2f} queries per key request")
    zero, memory = results["zero_buyers"], key["memory"]
    print(f"key server RSS: 0 buyers {zero['rss_start_mib']:.0f} MiB at start, {zero['rss_after_mix_mib']:.0f} after the "
          f"mix; {args.buyers:,} buyers {memory['rss_start_mib']:.0f} at start, {memory['rss_after_steady_mib']:.0f} after "
          f"the steady mix, {churned['rss_after_mib']:.0f} after {args.churn:,} new viewers (target <= +50 MiB: "
          f"{churned['rss_after_mib'] - zero['rss_after_mix_mib']:+.0f} MiB); 2 processes "
          f"{memory['rss_two_processes_mib']:.0f} MiB together")
    revocation = results["revocation"]
    for name, label, target in (("listening", "B listening", "p50 <= 50 ms, max <= 1500 ms"),
                                ("listen_killed", "B's LISTEN killed before each refund", "max <= 2000 ms")):
        r = revocation[name]
        print(f"revocation A -> B, {label}: {r['trials']} trials, p50 {r['p50_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms, "
              f"max {r['max_ms']:.1f} ms ({target})")
    stopped = revocation["database_stopped"]
    print(f"PostgreSQL stopped: B's last grant {stopped['last_grant_s']:.2f} s after the stop, first 503 at "
          f"{stopped['first_503_s']:.2f} s, {stopped['grants_after_5s']} grants after 5 s (target 0) in "
          f"{stopped['answers']} answers; keys again {stopped['grants_again_after_restart_s']:.1f} s after the restart")


if __name__ == "__main__":
    sys.exit(main())
