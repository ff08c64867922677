"""Benchmark: a thumbnail on demand (server/playback/thumbnails.py), cold and from the store's cache,
against the ffmpeg CLI drawing the same frame from the same decrypted segment.

    flock /tmp/bench.lock .venv/bin/python bench/thumbnails.py [--seconds 60] [--rounds 5] [--width 320]

Publishes a generated 720p episode (the full ladder, veryfast) to a throwaway embedded store, then per
round asks for thumbnails at times spread over the episode: `ours-cold` (cache emptied first: fetch
the segment, decrypt, decode from the last keyframe, scale, JPEG, write the cache), `ours-cached`
(the same requests again) and `ffmpeg` (`ffmpeg -ss T -i segment.ts -frames:v 1 -vf scale=W:-2`
on the segment we decrypted, so it does no fetching or decrypting: its figure is the decode alone),
interleaved per time so each sees the same machine. Prints median wall ms per thumbnail and the ratio
to the peer; asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import source_clip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--times", type=int, default=8, help="thumbnail times per round, spread over the episode")
    args = parser.parse_args()
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("the ffmpeg CLI (the peer) is missing: apt-get install ffmpeg", file=sys.stderr)
        return 1

    import m3u8

    from packager.publishing.seek import read_segment_at
    from packager.publishing.versions import EpisodeLocation, read_pointer
    from server.config import Settings
    from server.local.object_store import LocalObjectStore, LocalStoreSettings
    from server.playback.thumbnails import THUMBNAILS_DIR, _key_lookup, _variant_for, render_thumbnail
    from server.publishing.episode import ingest_episode
    from server.services import Services
    from tests.support.catalog import add_series
    from tests.support.s3_server import free_port

    source = source_clip(args.seconds, 1280, 720)
    with tempfile.TemporaryDirectory(prefix="thumbnail-bench-") as tmp:
        work = Path(tmp)
        store = LocalObjectStore(LocalStoreSettings(data_dir=work / "s3", port=free_port()))
        store.start()
        try:
            env = {"SERIES_DATA_DIR": str(work / "data"), "SERIES_S3_ENDPOINT": store.endpoint,
                   "SERIES_S3_ACCESS_KEY": store.settings.access_key, "SERIES_S3_SECRET_KEY": store.settings.secret_key,
                   "SERIES_S3_BUCKET": "bench", "SERIES_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
                   "SERIES_TOKEN_KEYS": "b1:" + base64.b64encode(os.urandom(32)).decode()}
            with Services.open(Settings.from_env(env)) as services:
                services.store.ensure_bucket()
                add_series(services, "bench")
                ingest_episode(source, series_id="bench", episode_id="1", settings=services.settings,
                               store=services.store, keystore=services.keystore, catalog=services.catalog)
                location = EpisodeLocation(series_id="bench", episode_id="1")
                pointer = read_pointer(services.store, location)
                version, duration = int(pointer["version"]), float(pointer["duration_s"])
                prefix = location.version_prefix(version)
                master = m3u8.loads(services.store.get_bytes(f"{prefix}/master.m3u8").decode())
                variant = _variant_for(master, args.width)
                figures: dict[str, list[float]] = {"ours-cold": [], "ours-cached": [], "ffmpeg": []}
                for round_index in range(args.rounds):
                    services.store.delete_prefix(f"{prefix}/{THUMBNAILS_DIR}/")
                    for k in range(args.times):
                        at_s = round((k + 0.37 + round_index * 0.11) * duration / args.times, 3) % duration
                        for kind in ("ours-cold", "ours-cached"):
                            started = time.perf_counter()
                            render_thumbnail(services.store, services.keystore, location, version=version,
                                             duration_s=duration, at_s=at_s, width=args.width)
                            figures[kind].append(time.perf_counter() - started)
                        found = read_segment_at(services.store, prefix, variant.uri, at_s,
                                                key_for_uri=_key_lookup(services.keystore, location))
                        segment = work / "segment.ts"
                        segment.write_bytes(found.plaintext)
                        started = time.perf_counter()
                        subprocess.run([ffmpeg, "-v", "error", "-y", "-ss", f"{float(at_s - found.start_s):.3f}",
                                        "-i", str(segment), "-frames:v", "1", "-vf", f"scale={args.width}:-2",
                                        str(work / "peer.jpg")], check=True)
                        figures["ffmpeg"].append(time.perf_counter() - started)
        finally:
            store.stop()
    peer = statistics.median(figures["ffmpeg"])
    print(f"{args.seconds:g} s 1280x720 episode, {args.rounds} rounds x {args.times} times, width {args.width}, "
          f"rendition {variant.stream_info.resolution[0]}x{variant.stream_info.resolution[1]}, load "
          f"{os.getloadavg()[0]:.2f}")
    for kind, values in figures.items():
        median = statistics.median(values)
        print(f"  {kind:<12} median {median * 1000:7.1f} ms  (min {min(values) * 1000:.1f}, max "
              f"{max(values) * 1000:.1f})  {median / peer:5.2f}x the ffmpeg CLI")
    return 0


if __name__ == "__main__":
    sys.exit(main())
