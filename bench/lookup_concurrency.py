"""Benchmark: the key path's cache-miss lookups under concurrency, threads vs psycopg's async pool.

    flock /tmp/bench.lock .venv/bin/python bench/lookup_concurrency.py [--buyers 1000000] [--concurrency 64]
                                                                      [--seconds 5] [--rounds 3]

The access room reads a missing answer with EntitlementStore.is_entitled() in its own threads
(SERIES_KEY_LOOKUP_THREADS, 4 on PostgreSQL) through drm's pooled Database. The alternative is psycopg's
AsyncConnectionPool awaited on the event loop (no thread hop, but an asyncio import in drm/, which is
synchronous by design). Both answer `--concurrency` concurrent lookups of random buyers for
`--seconds`, on a throwaway PostgreSQL with `--buyers` entitlements, in alternating rounds: lookups/s,
p50/p99 latency, and this process's CPU per lookup (the server's own CPU is the same SQL either way).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOOKUP = "SELECT 1 FROM entitlements WHERE viewer_id = %s AND series_id = %s AND revoked_at IS NULL"


async def drive(lookup, buyers: int, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    rng = random.Random(7)

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await lookup(f"v{rng.randrange(buyers)}", "bench")
            latencies.append(time.perf_counter() - started)

    cpu_before = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu = time.process_time() - cpu_before
    latencies.sort()
    return {"per_s": len(latencies) / seconds, "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))], "cpu_us": 1e6 * cpu / len(latencies)}


async def run(url: str, args) -> dict[str, list[dict]]:
    import psycopg_pool

    from drm.access.entitlements import EntitlementStore
    from drm.storage.engines import open_database

    db = open_database(url, pool_max_size=args.threads + 2)
    store = EntitlementStore(db)
    threads = ThreadPoolExecutor(max_workers=args.threads)
    loop = asyncio.get_running_loop()

    async def threaded(viewer_id: str, series_id: str) -> bool:
        return await loop.run_in_executor(threads, store.is_entitled, viewer_id, series_id)

    pool = psycopg_pool.AsyncConnectionPool(url, min_size=args.threads, max_size=args.threads, open=False,
                                            kwargs={"autocommit": True})
    await pool.open(wait=True)

    async def on_the_loop(viewer_id: str, series_id: str) -> bool:
        async with pool.connection() as connection:
            cursor = await connection.execute(LOOKUP, (viewer_id, series_id))
            return await cursor.fetchone() is not None

    paths = {f"threads ({args.threads}) + drm Database": threaded, f"psycopg async pool ({args.threads})": on_the_loop}
    results: dict[str, list[dict]] = {name: [] for name in paths}
    try:
        for lookup in paths.values():
            await drive(lookup, args.buyers, args.concurrency, 1.0)        # warm: connections, prepared statements
        for _ in range(args.rounds):
            for name, lookup in paths.items():
                results[name].append(await drive(lookup, args.buyers, args.concurrency, args.seconds))
    finally:
        await pool.close()
        threads.shutdown()
        db.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import psycopg

    from drm.storage.engines import open_database
    from tests.support.postgres import start_cluster

    cluster = start_cluster()
    try:
        url = cluster.url(cluster.create_database(prefix="bench"))
        open_database(url, migrate=True).close()
        with psycopg.connect(url) as connection, connection.cursor() as cursor:
            with cursor.copy("COPY entitlements (viewer_id, series_id, source, granted_at, reason, reference)"
                             " FROM STDIN") as copy:
                for number in range(args.buyers):
                    copy.write_row((f"v{number}", "bench", "purchase", 1.7e9, "", f"p{number}"))
            cursor.execute("ANALYZE entitlements")
        results = asyncio.run(run(url, args))
    finally:
        cluster.stop()
    print(f"{args.buyers:,} buyers, {args.concurrency} concurrent lookups, {args.rounds} rounds x {args.seconds:g} s "
          f"(median round); PostgreSQL on the same 2 cores")
    print(f"{'path':<36}{'lookups/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'client CPU µs':>15}")
    for name, rounds in results.items():
        print(f"{name:<36}{statistics.median(r['per_s'] for r in rounds):>11,.0f}"
              f"{statistics.median(r['p50_ms'] for r in rounds):>9.2f}{statistics.median(r['p99_ms'] for r in rounds):>9.2f}"
              f"{statistics.median(r['cpu_us'] for r in rounds):>15.0f}")


if __name__ == "__main__":
    main()
