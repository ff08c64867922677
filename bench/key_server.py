"""Benchmark: the key endpoint under load, against a bare aiohttp handler returning 16 bytes.

    .venv/bin/python bench/key_server.py [--seconds 10] [--connections 64] [--variants bare,key]
                                         [--wrk] [--json]

Everything is real: SeaweedFS (`weed mini`, stopped by its PID), SQLite, keys created through KeyStore,
viewers granted through EntitlementStore, tokens minted by TokenSigner, the app built by create_app() with
its middlewares and JSON access log (to a file). Each server runs in its own process; the load generator
(an aiohttp client, CONNECTIONS concurrent connections) runs in this one, so on a 2-core machine each gets
about one core. The request mix is 80 % entitled, 15 % unentitled (valid token, no purchase), 5 % bad tokens;
every response is checked: entitled → exactly that key's 16 bytes, unentitled → 403, bad → 401; a 429 is
counted apart (rate limits are raised for the bench) and anything else is a wrong answer.

Variants, measured in the same run one after another:
    bare         aiohttp, one handler returning 16 bytes, no middleware, no access log: the ceiling
    bare-thread  the same, the 16 bytes fetched through asyncio.to_thread: the cost of a thread hop
    key-db       the key endpoint with the access room's memory off: every answer read from the database in
                 the key path's threads (episode facts and entitlement, and a session write per request:
                 admissions are not remembered either), i.e. a key path without memory
    key-nolimit  the key endpoint without the concurrent-session limit (SERIES_MAX_SESSIONS=0): the peer
                 that shows what the limit costs (each viewer's first key writes its session; a session
                 is written again every 150 s, so a --warmup that reaches every viewer shows the steady
                 state, a short one mostly the first writes)
    key          the key endpoint as shipped: answers memory holds are given on the loop

Each round starts every variant's server, then drives them in turn in --slices short slices (aiohttp
client, then wrk, per slice): this VM's speed drifts by ±20 % over tens of seconds, and fine interleaving
gives every variant the same share of that drift.

With --wrk (Debian's `wrk`, installed with apt-get if missing and allowed), each variant is also driven by
wrk over the same request mix: wrk is C and loads the server harder than a Python client can, but it
cannot match answers to requests, so it only counts statuses. Not a test: it prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERIES = "bench"
BARE_KEY = b"0123456789abcdef"
VARIANTS = ("bare", "bare-thread", "key-db", "key-nolimit", "key")
MIX = (("entitled", 0.80), ("unentitled", 0.15), ("bad", 0.05))


@dataclass(frozen=True, slots=True)
class Planned:
    path: str
    kind: str                # entitled | unentitled | bad | bare
    expected: bytes | None   # the key bytes for entitled and bare requests


# -- world: store, database, keys, viewers ----------------------------------------------------------

def bench_env(work: Path, s3_endpoint: str, access_key: str, secret_key: str) -> dict[str, str]:
    return {
        "SERIES_DATA_DIR": str(work / "data"),
        "SERIES_S3_ENDPOINT": s3_endpoint,
        "SERIES_S3_ACCESS_KEY": access_key,
        "SERIES_S3_SECRET_KEY": secret_key,
        "SERIES_S3_BUCKET": "bench",
        "SERIES_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "SERIES_TOKEN_KEYS": "b1:" + base64.b64encode(os.urandom(32)).decode(),
        # Limits raised so that the load, which replays a few thousand viewers from one address, is not refused.
        "SERIES_RATE_VIEWER_PER_S": "1000000", "SERIES_RATE_VIEWER_BURST": "1000000",
        "SERIES_RATE_IP_PER_S": "1000000", "SERIES_RATE_IP_BURST": "1000000",
    }


def seed(env: dict[str, str], *, viewers: int, episodes: int, periods: int, plan_size: int,
         mix: tuple[tuple[str, float], ...] = MIX) -> list[Planned]:
    """Create keys and entitlements, mint tokens, and return a shuffled request plan in the mix."""
    from server.config import Settings
    from server.services import Services

    services = Services.open(Settings.from_env(env))
    try:
        services.store.ensure_bucket()
        keys = [key for episode in range(episodes)
                for key in services.keystore.create_keys(SERIES, f"e{episode}", periods)]
        buyers = [f"v{n}" for n in range(viewers)]
        strangers = [f"u{n}" for n in range(max(1, viewers // 5))]
        for viewer in buyers:
            services.entitlements.grant(viewer, SERIES, source="purchase")
        buyer_tokens = [services.tokens.mint(v, SERIES) for v in buyers]
        stranger_tokens = [services.tokens.mint(v, SERIES) for v in strangers]
    finally:
        services.close()
    rng = random.Random(7)
    plan = []
    for _ in range(plan_size):
        kind = rng.choices([k for k, _ in mix], weights=[w for _, w in mix])[0]
        key = rng.choice(keys)
        if kind == "entitled":
            plan.append(Planned(f"/v1/keys/{key.key_id}?token={rng.choice(buyer_tokens)}", kind, key.key))
        elif kind == "unentitled":
            plan.append(Planned(f"/v1/keys/{key.key_id}?token={rng.choice(stranger_tokens)}", kind, None))
        else:
            token = rng.choice(buyer_tokens)
            bad = rng.choice([token[:-8] + "AAAAAAAA", "not-a-token", token.split(".")[0] + ".e30.x"])
            plan.append(Planned(f"/v1/keys/{key.key_id}?token={bad}", kind, None))
    return plan


# -- servers (each in its own process) --------------------------------------------------------------

def serve(variant: str, env_file: Path, log_file: Path) -> None:
    """Run one variant's server on a free loopback port; print 'PORT n' once it listens."""
    import logging

    from aiohttp import web

    logging.basicConfig(level=logging.WARNING)

    async def main() -> None:
        if variant.startswith("bare"):
            app = web.Application()

            async def bare(request: web.Request) -> web.Response:
                body = await asyncio.to_thread(bytes, BARE_KEY) if variant == "bare-thread" else BARE_KEY
                return web.Response(body=body, content_type="application/octet-stream")

            app.router.add_get("/key", bare)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
        else:
            from server.app import create_app, start_runner
            from server.config import Settings
            from server.edge.accesslog import configure_access_log
            from server.access.memory import MISSING, AnswerCache

            configure_access_log(log_file.open("a"))      # as `series serve` does, to a file instead of stderr
            if variant == "key-db":
                AnswerCache.get = lambda self, key, now: MISSING     # memory off: every answer from the database
            env = json.loads(env_file.read_text())
            if variant == "key-nolimit":
                env["SERIES_MAX_SESSIONS"] = "0"                     # no session limit: its cost is the difference
            settings = Settings.from_env(env)
            runner = await start_runner(create_app(settings))      # as `series serve` runs it
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        await asyncio.sleep(1.5 if not variant.startswith("bare") else 0)   # settle: the first change-feed polls
        print(f"PORT {port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def start_server(variant: str, env_file: Path, work: Path) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", variant, "--env-file", str(env_file),
                                "--log-file", str(work / f"access-{variant}.log")],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = process.stdout.readline()
    match = re.match(r"PORT (\d+)", line)
    if not match:
        process.kill()
        raise RuntimeError(f"{variant} server did not start: {line!r}")
    return process, int(match.group(1))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- load generator ----------------------------------------------------------------------------------

async def drive(port: int, plan: list[Planned], *, seconds: float, connections: int, warmup_s: float) -> dict:
    """CONNECTIONS workers, each one request at a time, for warmup + seconds; only the latter counted."""
    import aiohttp

    base = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    counts = {"right": 0, "wrong": 0, "limited": 0}
    sent_total = 0
    wrong_examples: list[str] = []
    started = time.perf_counter()
    measure_from = started + warmup_s
    deadline = measure_from + seconds

    async def worker(offset: int, session: aiohttp.ClientSession) -> None:
        index = offset
        while True:
            sent = time.perf_counter()
            if sent >= deadline:
                return
            planned = plan[index % len(plan)]
            index += connections
            async with session.get(base + planned.path) as response:
                status, body = response.status, await response.read()
            done = time.perf_counter()
            nonlocal sent_total
            sent_total += 1
            if sent < measure_from:
                continue
            latencies.append(done - sent)
            if status == 429:
                counts["limited"] += 1
                continue
            is_right = {"entitled": status == 200 and body == planned.expected,
                        "bare": status == 200 and body == planned.expected,
                        "unentitled": status == 403, "bad": status == 401}[planned.kind]
            counts["right" if is_right else "wrong"] += 1
            if not is_right and len(wrong_examples) < 5:
                wrong_examples.append(f"{planned.kind}: HTTP {status} {body[:80]!r}")

    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(n, session) for n in range(connections)))
    return {"latencies": latencies, "seconds": seconds, "sent": sent_total, **counts, "wrong_examples": wrong_examples}


def combine_drives(slices: list[dict], cpu_s: float) -> dict:
    """One figure from a variant's slices: rates over their summed time, percentiles over all latencies."""
    latencies = sorted(latency for part in slices for latency in part["latencies"])
    total, seconds = len(latencies), sum(part["seconds"] for part in slices)
    sent = sum(part["sent"] for part in slices)
    return {
        "requests": total,
        "requests_per_s": total / seconds,
        "p50_ms": 1000 * latencies[total // 2] if total else None,
        "p99_ms": 1000 * latencies[min(total - 1, int(total * 0.99))] if total else None,
        "mean_ms": 1000 * statistics.fmean(latencies) if total else None,
        # warm-up included in both: CPU per request barely moves with other load, unlike requests/s
        "server_cpu_us_per_request": 1e6 * cpu_s / sent,
        **{name: sum(part[name] for part in slices) for name in ("right", "wrong", "limited")},
        "wrong_examples": [example for part in slices for example in part["wrong_examples"]][:5],
    }


WRK_SCRIPT = """
local paths = {}
for line in io.lines("%(plan)s") do paths[#paths + 1] = line end
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""


def drive_wrk(port: int, plan: list[Planned], *, seconds: float, connections: int, work: Path) -> dict:
    plan_file = work / "wrk-plan.txt"
    plan_file.write_text("\n".join(p.path for p in plan) + "\n")
    script = work / "mix.lua"
    script.write_text(WRK_SCRIPT % {"plan": plan_file})
    output = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:g}s", "--latency",
                             "-s", str(script), f"http://127.0.0.1:{port}/"],
                            capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))

    def percentile(name: str) -> float:
        value, unit = re.search(rf"\s{name}%\s+([\d.]+)(us|ms|s)", output).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return {"requests_per_s": rps, "p50_ms": percentile("50"), "p99_ms": percentile("99")}


def ensure_wrk() -> bool:
    if shutil.which("wrk"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True)
    return shutil.which("wrk") is not None


# -- the key path's parts, timed in this process ----------------------------------------------------

def time_parts(env: dict[str, str], plan: list[Planned], rounds: int = 2000) -> dict[str, float]:
    """Microseconds per call of each thing the key path does, without HTTP."""
    from urllib.parse import parse_qs, urlsplit

    from server.config import Settings
    from server.services import Services

    services = Services.open(Settings.from_env(env))
    try:
        entitled = [p for p in plan if p.kind == "entitled"][:rounds]
        if not entitled:
            return {}
        calls = [(urlsplit(p.path).path.rsplit("/", 1)[1], parse_qs(urlsplit(p.path).query)["token"][0])
                 for p in entitled]
        viewers = [services.tokens.verify(token) for _, token in calls]
        for key_id, _ in calls:
            services.keystore.get(key_id)          # warm the unwrapped-key cache, as a running server has

        def per_call(fn) -> float:
            started = time.perf_counter()
            for n in range(len(calls)):
                fn(n)
            return 1e6 * (time.perf_counter() - started) / len(calls)

        return {
            "token_verify_us": per_call(lambda n: services.tokens.verify(calls[n][1])),
            "sqlite_entitlement_us": per_call(lambda n: services.entitlements.is_entitled(viewers[n].viewer_id, SERIES)),
            "keystore_cached_get_us": per_call(lambda n: services.keystore.get(calls[n][0])),
            "thread_hop_us": _thread_hop_us(len(calls)),
        }
    finally:
        services.close()


def _thread_hop_us(n: int) -> float:
    async def hops() -> float:
        started = time.perf_counter()
        for _ in range(n):
            await asyncio.to_thread(int)
        return 1e6 * (time.perf_counter() - started) / n
    return asyncio.run(hops())


# -- main -------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per variant")
    parser.add_argument("--mix", default="80,15,5", help="entitled,unentitled,bad weights (for analysis)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; medians are reported")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each variant's first slice")
    parser.add_argument("--slices", type=int, default=4, help="each round's seconds are driven in this many "
                        "slices, alternating between variants")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--viewers", type=int, default=2000, help="entitled viewers (plus 20 %% unentitled)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {','.join(VARIANTS)}")
    parser.add_argument("--wrk", action="store_true", help="also drive each variant with wrk (installed if missing)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--env-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--log-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.env_file, args.log_file)
        return 0

    from server.local.object_store import LocalObjectStore, LocalStoreSettings
    from tests.support.s3_server import free_port

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    use_wrk = args.wrk and ensure_wrk()
    results: dict[str, dict] = {"machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}}
    with tempfile.TemporaryDirectory(prefix="key-bench-") as tmp:
        work = Path(tmp)
        store = LocalObjectStore(LocalStoreSettings(data_dir=work / "s3", port=free_port()))
        store.start()
        try:
            env = bench_env(work, store.endpoint, store.settings.access_key, store.settings.secret_key)
            env_file = work / "env.json"
            env_file.write_text(json.dumps(env))
            weights = [float(w) for w in args.mix.split(",")]
            mix = tuple((kind, weight) for (kind, _), weight in zip(MIX, weights, strict=True))
            plan = seed(env, viewers=args.viewers, episodes=10, periods=20, plan_size=20_000, mix=mix)
            results["parts"] = time_parts(env, plan)
            rounds: dict[str, list[dict]] = {variant: [] for variant in variants}
            for _ in range(args.rounds):            # interleaved, so every variant sees the same machine
                for variant, result in run_round(variants, env_file, work, plan, args, use_wrk).items():
                    rounds[variant].append(result)
        finally:
            store.stop()
    results["machine"]["load_after"] = os.getloadavg()[0]
    results.update(summarize(rounds, use_wrk))
    report(results, args, use_wrk)
    return 0


def run_round(variants: list[str], env_file: Path, work: Path, plan: list[Planned], args,
              use_wrk: bool) -> dict[str, dict]:
    """All variants' servers up at once, driven in turn in --slices short slices: the speed of this VM
    drifts by ±20 % over tens of seconds, and fine interleaving gives every variant the same share of it."""
    servers = {}
    try:
        for variant in variants:
            servers[variant] = start_server(variant, env_file, work)
        plans = {v: [Planned("/key", "bare", BARE_KEY)] if v.startswith("bare") else plan for v in variants}
        slice_s = args.seconds / args.slices
        drives: dict[str, list[dict]] = {v: [] for v in variants}
        wrks: dict[str, list[dict]] = {v: [] for v in variants}
        cpu = {v: [0.0, 0.0] for v in variants}          # [aiohttp client, wrk] server CPU seconds
        for n in range(args.slices):
            for variant in variants:
                process, port = servers[variant]
                before = cpu_seconds(process.pid)
                drives[variant].append(asyncio.run(drive(port, plans[variant], seconds=slice_s,
                                                         connections=args.connections,
                                                         warmup_s=args.warmup if n == 0 else 0.0)))
                cpu[variant][0] += cpu_seconds(process.pid) - before
                if use_wrk:
                    before = cpu_seconds(process.pid)
                    wrks[variant].append(drive_wrk(port, plans[variant], seconds=slice_s,
                                                   connections=args.connections, work=work))
                    cpu[variant][1] += cpu_seconds(process.pid) - before
        results = {}
        for variant in variants:
            results[variant] = combine_drives(drives[variant], cpu[variant][0])
            if use_wrk:
                slices = wrks[variant]
                rate = statistics.fmean(w["requests_per_s"] for w in slices)    # equal-length slices
                results[variant]["wrk"] = {
                    "requests_per_s": rate,
                    # wrk prints percentiles only: the median slice's (each slice has thousands of requests)
                    "p50_ms": statistics.median(w["p50_ms"] for w in slices),
                    "p99_ms": statistics.median(w["p99_ms"] for w in slices),
                    "p99_worst_slice_ms": max(w["p99_ms"] for w in slices),
                    "server_cpu_us_per_request": 1e6 * cpu[variant][1] / (rate * args.seconds),
                }
        return results
    finally:
        for process, _ in servers.values():
            stop_server(process)


def summarize(rounds: dict[str, list[dict]], use_wrk: bool) -> dict[str, dict]:
    """Per variant: the median round by throughput, wrong/429 answers summed over all rounds, and the
    ratio to bare as the median of per-round ratios (each round's pair saw the same machine load)."""
    summary = {}
    for variant, runs in rounds.items():
        median = sorted(runs, key=lambda r: r["requests_per_s"])[len(runs) // 2]
        summary[variant] = {**median, "rounds": len(runs),
                            "right": sum(r["right"] for r in runs), "wrong": sum(r["wrong"] for r in runs),
                            "limited": sum(r["limited"] for r in runs),
                            "wrong_examples": [e for r in runs for e in r["wrong_examples"]][:5]}
        if variant != "bare" and "bare" in rounds:
            summary[variant]["ratio_to_bare"] = statistics.median(
                run["requests_per_s"] / bare["requests_per_s"] for run, bare in zip(runs, rounds["bare"], strict=True))
            if use_wrk:
                summary[variant]["wrk"] = {**summary[variant]["wrk"], "ratio_to_bare": statistics.median(
                    run["wrk"]["requests_per_s"] / bare["wrk"]["requests_per_s"]
                    for run, bare in zip(runs, rounds["bare"], strict=True))}
    return summary


def report(results: dict[str, dict], args, use_wrk: bool) -> None:
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"key server, {args.connections} connections, {args.seconds:g} s per variant x {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs shared by server and load generator (and anything else running: "
          f"1-min load {results['machine']['load_before']:.1f} before, {results['machine']['load_after']:.1f} after)")
    parts = results["parts"]
    print("per call, in-process: " + ", ".join(f"{name} {value:.1f}" for name, value in parts.items()))
    print(f"{'variant':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} {'right':>8} {'wrong':>6} {'429':>5}"
          f" {'server CPU us/req':>18}")
    for variant in VARIANTS:
        if variant not in results:
            continue
        r = results[variant]
        ratio = f"{r['ratio_to_bare']:.2f}" if "ratio_to_bare" in r else "-"
        print(f"{variant:<12} {r['requests_per_s']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {ratio:>6} "
              f"{r['right']:>8} {r['wrong']:>6} {r['limited']:>5} {r['server_cpu_us_per_request']:>18.0f}")
        for example in r["wrong_examples"]:
            print(f"    wrong: {example}")
        if use_wrk:
            w = r["wrk"]
            ratio = f"{w['ratio_to_bare']:.2f}" if "ratio_to_bare" in w else "-"
            print(f"{'  (wrk)':<12} {w['requests_per_s']:>9.0f} {w['p50_ms']:>8.2f} {w['p99_ms']:>8.2f} {ratio:>6} "
                  f"{'':>8} {'':>6} {'':>5} {w['server_cpu_us_per_request']:>18.0f}"
                  f"   (worst slice p99 {w['p99_worst_slice_ms']:.2f} ms)")


if __name__ == "__main__":
    sys.exit(main())
