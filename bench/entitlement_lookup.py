"""Benchmark: one is_entitled() point lookup on SQLite and on PostgreSQL, beside the bare driver call.

    .venv/bin/python bench/entitlement_lookup.py [--buyers 200000] [--lookups 20000] [--rounds 3] [--url URL]

The key server asks this when its cache does not know the (viewer, series) pair, so its latency is
the price of a cache miss. Entitlements for `--buyers` viewers are loaded (COPY on PostgreSQL, one
transaction on SQLite), then lookups of random buyers (90 %) and strangers (10 %) are timed one by
one on one thread: EntitlementStore.is_entitled() through drm's Database, and the same SELECT
through the bare driver (sqlite3; psycopg on one connection, prepared), so the layer's own cost
shows. Engines and paths are interleaved round by round. PostgreSQL is a throwaway cluster on
loopback (tests/support/postgres.py) unless --url names one. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import _machine_busy_s

from drm.access.entitlements import EntitlementStore
from drm.storage.database import Database
from drm.storage.engines import open_database

LOOKUP = "SELECT 1 FROM entitlements WHERE viewer_id = ? AND series_id = ? AND revoked_at IS NULL"


def load_postgresql(url: str, buyers: int) -> None:
    import psycopg

    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy("COPY entitlements (viewer_id, series_id, source, granted_at, reason, reference)"
                         " FROM STDIN") as copy:
            for number in range(buyers):
                copy.write_row((f"viewer-{number}", f"series-{number % 50}", "purchase", 1.7e9, "", f"p{number}"))
        cursor.execute("ANALYZE entitlements")


def load_sqlite(db: Database, buyers: int) -> None:
    with db.transaction() as tx:
        tx.executemany("INSERT INTO entitlements (viewer_id, series_id, source, granted_at, reason, reference)"
                       " VALUES (?, ?, 'purchase', 1.7e9, '', ?)",
                       [(f"viewer-{n}", f"series-{n % 50}", f"p{n}") for n in range(buyers)])


def pairs(buyers: int, count: int, seed: int) -> list[tuple[str, str]]:
    chosen = random.Random(seed)
    out = []
    for _ in range(count):
        number = chosen.randrange(buyers)
        if chosen.random() < 0.1:
            out.append((f"stranger-{number}", f"series-{number % 50}"))
        else:
            out.append((f"viewer-{number}", f"series-{number % 50}"))
    return out


def timed(lookup: Callable[[str, str], object], queries: list[tuple[str, str]]) -> list[float]:
    samples = []
    for viewer_id, series_id in queries:
        started = time.perf_counter_ns()
        lookup(viewer_id, series_id)
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=200_000)
    parser.add_argument("--lookups", type=int, default=20_000, help="per path and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", help="a migrated, empty PostgreSQL database (default: a throwaway cluster)")
    args = parser.parse_args()

    cluster = None
    url = args.url
    if url is None:
        from tests.support.postgres import start_cluster

        cluster = start_cluster()
        url = cluster.url(cluster.create_database(prefix="bench"))
    workdir = Path(tempfile.mkdtemp(prefix="series-bench-"))
    try:
        pg = open_database(url, migrate=True)
        load_postgresql(url, args.buyers)
        lite = open_database(workdir / "bench.sqlite")
        load_sqlite(lite, args.buyers)
        raw_lite = sqlite3.connect(workdir / "bench.sqlite")

        import psycopg

        raw_pg = psycopg.connect(url, autocommit=True, prepare_threshold=0)
        raw_sql = LOOKUP.replace("?", "%s")
        paths = {
            "sqlite   is_entitled()": EntitlementStore(lite).is_entitled,
            "sqlite   bare sqlite3": lambda v, s: raw_lite.execute(LOOKUP, (v, s)).fetchone(),
            "postgres is_entitled()": EntitlementStore(pg).is_entitled,
            "postgres bare psycopg": lambda v, s: raw_pg.execute(raw_sql, (v, s)).fetchone(),
        }
        for lookup in paths.values():                      # warm caches and prepared statements
            timed(lookup, pairs(args.buyers, 500, seed=99))
        samples: dict[str, list[float]] = {name: [] for name in paths}
        busy_before, started = _machine_busy_s(), time.perf_counter()
        for round_number in range(args.rounds):
            queries = pairs(args.buyers, args.lookups, seed=round_number)
            for name, lookup in paths.items():
                samples[name] += timed(lookup, queries)
        wall = time.perf_counter() - started
        busy = (_machine_busy_s() - busy_before) / wall if busy_before is not None else float("nan")

        print(f"{args.buyers:,} buyers, {args.rounds} rounds x {args.lookups:,} lookups per path, one thread;"
              f" machine busy {busy:.2f} cores on average (ours included, ~1)")
        print(f"{'path':<26}{'p50 µs':>9}{'p90 µs':>9}{'p99 µs':>9}{'mean µs':>9}{'lookups/s':>11}")
        for name, values in samples.items():
            cuts = statistics.quantiles(values, n=100)
            mean = statistics.fmean(values)
            print(f"{name:<26}{cuts[49]:>9.1f}{cuts[89]:>9.1f}{cuts[98]:>9.1f}{mean:>9.1f}{1e6 / mean:>11,.0f}")
        raw_pg.close()
        raw_lite.close()
        lite.close()
        pg.close()
    finally:
        if cluster is not None:
            cluster.stop()
        for path in sorted(workdir.glob("*"), reverse=True):
            path.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
