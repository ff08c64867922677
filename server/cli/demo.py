"""`series demo`: everything locally — the embedded store, a sample episode published, the service
serving it with the web app (test purchases on) — and its URLs: the storefront first, the episode's page,
and two master playlists, one for a viewer who bought the series and one who did not."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from pathlib import Path

from packager.publishing.publish import EpisodeLocation, read_pointer
from server.cli.catalog.series import ensure_demo_series
from server.cli.common import (
    EXIT_OK,
    ingest_options,
    ingest_with_progress,
    log,
    media_file,
    running_services,
    with_segment_format,
)
from server.cli.operations.serving import serve_until_signalled
from server.config import Settings
from server.playback.playlists import master_url

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEMO_SAMPLE = PROJECT_DIR / "samples" / "demo-scene.mp4"
DEMO_SERIES, DEMO_EPISODE = "demo", "1"
DEMO_VIEWER, DEMO_GUEST = "demo-viewer", "guest-viewer"


def add_commands(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", parents=[ingest_options()],
                               help="start everything locally, publish a sample episode, print playable URLs")
    demo.add_argument("--json", action="store_true", help="print the URLs as one JSON object on the first stdout line")
    demo.add_argument("--sample", type=_sample_file, default=DEMO_SAMPLE,
                      help="episode to publish (default: a generated 40 s sample, made if absent)")
    demo.add_argument("--reingest", action="store_true", help="publish a new version even if one is live")
    demo.set_defaults(handler=cmd_demo)


def _sample_file(text: str) -> Path:
    return media_file(text)        # an explicit sample must exist; the default one is generated


def cmd_demo(args, settings: Settings) -> int:
    settings = with_segment_format(settings, args.segment_format)
    if settings.webhook_secret is not None:        # the demo sells with test purchases (clearly labelled)
        settings = dataclasses.replace(settings, web=dataclasses.replace(settings.web, test_payments=True))
    with running_services(settings) as services:
        if not args.sample.exists():
            log.info("generating a 40 s 720p sample episode at %s", args.sample)
            from pipeline.synthetic import generate_clip
            generate_clip(args.sample, duration_s=40, width=1280, height=720, fps=30, picture="scene")
        ensure_demo_series(services, DEMO_SERIES)
        location = EpisodeLocation(series_id=DEMO_SERIES, episode_id=DEMO_EPISODE)
        if args.reingest or read_pointer(services.store, location) is None:
            ingest_with_progress(services, args.sample, DEMO_SERIES, DEMO_EPISODE, show_bar=args.progress)
        services.entitlements.grant(DEMO_VIEWER, DEMO_SERIES, source="comp", reason="demo")
        urls = {
            "storefront_url": f"{settings.public_url}/",
            "watch_url": f"{settings.public_url}/series/{DEMO_SERIES}/episodes/{DEMO_EPISODE}",
            "entitled_url": master_url(settings.public_url, DEMO_SERIES, DEMO_EPISODE,
                                       services.tokens.mint(DEMO_VIEWER, DEMO_SERIES)),
            "unentitled_url": master_url(settings.public_url, DEMO_SERIES, DEMO_EPISODE,
                                         services.tokens.mint(DEMO_GUEST, DEMO_SERIES)),
            "api_reference_url": f"{settings.public_url}/docs",
        }

        def announce() -> None:
            if args.json:
                print(json.dumps(urls), flush=True)
            else:
                sign_in = (f"sign in as {DEMO_VIEWER} (owns the series), or as a new viewer and buy it with a test "
                           "purchase" if settings.web.local_sign_in else "local sign-in is off (SERIES_LOCAL_SIGN_IN)")
                print(f"Storefront: {urls['storefront_url']}\n"
                      f"  Watch: {urls['watch_url']} — {sign_in}\n"
                      f"Serving on {settings.public_url} — Ctrl+C stops everything this demo started.\n"
                      f"  {DEMO_VIEWER} (bought the series): {urls['entitled_url']}\n"
                      f"  {DEMO_GUEST} (did not buy, key refused): {urls['unentitled_url']}\n"
                      f"Try: ffmpeg -i \"{urls['entitled_url']}\" -f null -\n"
                      f"API reference: {urls['api_reference_url']}", flush=True)

        asyncio.run(serve_until_signalled(settings, services, on_ready=announce))
    return EXIT_OK
