"""Benchmark: getting an episode's bytes in — tus in chunks vs the one streamed ingest request, on loopback.

    .venv/bin/python bench/resumable_upload.py [--mib 64] [--chunk-mib 8 16 64] [--rounds 3]

A real service (create_app, real sockets) and the real SeaweedFS store on loopback. Each round, in
turn: the streamed hand-off (POST /v1/series/S/episodes/N/ingest: the body spooled to local disk, then
a job), and tus uploads (POST /v1/uploads, then PATCHes of each --chunk-mib, into S3 parts of 8 MiB
with a tail carried between chunks). Times run until the last answer (the job's work is not timed:
random bytes fail validation at once). Then one tus upload again under tracemalloc, for the most
Python memory the service held: the claim is one part per request in flight. Prints medians and the
load the rest of the machine put on it meanwhile; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from common import ROOT, _machine_busy_s

sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from server.app import create_app  # noqa: E402
from server.services import Services  # noqa: E402
from tests.support.catalog import add_series  # noqa: E402
from tests.support.jobs import AUTH, ingest_env  # noqa: E402
from tests.support.s3_server import free_port, start_test_store  # noqa: E402
from tests.support.uploads import creation_headers, patch_headers, uploads_bucket  # noqa: E402

MIB = 1024 * 1024


async def streamed(http: aiohttp.ClientSession, base: str, data: bytes, episode: str) -> None:
    headers = {**AUTH, "Idempotency-Key": f"bench-{uuid.uuid4().hex}", "Content-Type": "video/mp4"}
    async with http.post(f"{base}/v1/series/bench/episodes/{episode}/ingest", data=io.BytesIO(data),
                         headers=headers) as response:
        assert response.status == 202, await response.text()


async def tus(http: aiohttp.ClientSession, base: str, data: bytes, episode: str, chunk: int) -> None:
    async with http.post(f"{base}/v1/uploads", headers=creation_headers(AUTH, len(data), series="bench",
                                                                        episode=episode)) as response:
        assert response.status == 201, await response.text()
        url = base + response.headers["Location"]
    offset = 0
    while offset < len(data):
        async with http.patch(url, data=io.BytesIO(data[offset:offset + chunk]),
                              headers=patch_headers(AUTH, offset)) as response:
            assert response.status == 204, await response.text()
            offset = int(response.headers["Upload-Offset"])


async def run(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-tus-"))
    store = start_test_store(work / "s3")
    try:
        from server.config import Settings
        settings = Settings.from_env(ingest_env(work, store, SERIES_UPLOADS_BUCKET=f"u-{uuid.uuid4().hex[:12]}",
                                                SERIES_MAX_UPLOAD_BYTES=str(1024 * MIB),
                                                SERIES_UPLOAD_MAX_PER_INGEST_TOKEN="1000"))
        services = Services.open(settings)
        services.store.ensure_bucket()
        with uploads_bucket(settings) as bucket:
            bucket.ensure_bucket()
        add_series(services, "bench")
        runner = web.AppRunner(create_app(settings, services))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        data = os.urandom(args.mib * MIB)
        timings: dict[str, list[float]] = {}
        busy_before, started, own_before = _machine_busy_s(), time.perf_counter(), _own_cpu_s()
        episode = 0
        async with aiohttp.ClientSession() as http:
            for _ in range(args.rounds):
                ways = [("streamed POST /ingest", lambda e: streamed(http, base, data, e))]
                ways += [(f"tus, {size} MiB chunks", lambda e, size=size: tus(http, base, data, e, size * MIB))
                         for size in args.chunk_mib]
                for name, way in ways:
                    episode += 1
                    began = time.perf_counter()
                    await way(str(episode))
                    timings.setdefault(name, []).append(time.perf_counter() - began)
            wall = time.perf_counter() - started
            others = max(0.0, (_machine_busy_s() - busy_before - (_own_cpu_s() - own_before)) / wall)
            tracemalloc.start()
            await tus(http, base, data, "traced", args.chunk_mib[-1] * MIB)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        print(f"{args.mib} MiB of random bytes, median of {args.rounds} rounds (the rest of the machine used "
              f"about {others:.1f} cores meanwhile):")
        for name, values in timings.items():
            median = statistics.median(values)
            print(f"  {name:<24} {median:6.2f} s  {args.mib / median:6.1f} MiB/s")
        print(f"  most Python memory traced during one tus upload in {args.chunk_mib[-1]} MiB chunks (client and "
              f"service in this process, the client's chunk included): {peak / MIB:.1f} MiB")
        await runner.cleanup()
        services.close()
    finally:
        store.stop(timeout_s=1)


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="upload size in MiB (default 64)")
    parser.add_argument("--chunk-mib", type=int, nargs="+", default=[8, 16, 64], help="tus chunk sizes in MiB")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each way once per round (default 3)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
