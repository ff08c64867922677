"""`series`: the operator's command line (demo, ingest, validate, serve, grant, revoke, token, store, gc;
creator, series and account-token live in server/cli_catalog.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from drm.errors import DrmError
from packager.errors import PackagerError
from pipeline.errors import MediaRejected, PipelineError
from pipeline.fmp4 import SegmentFormat
from pipeline.validate import validate
from server import cli_catalog
from server.accesslog import configure_access_log
from server.episode_versions import EpisodeVersions
from server.ingest import ingest_episode
from server.job_store import JobStore
from server.jobs import STATES, JobError
from server.localstore import LocalObjectStore
from server.playlists import master_url
from server.progressbar import IngestProgress
from server.retention import collect_garbage
from server.services import Services
from server.settings import Settings, SettingsError
from server.upload_spool import sweep_spool

log = logging.getLogger("series")

EXIT_OK = 0
EXIT_FAILED = 1          # the command could not do its job (store down, bad settings, ...)
EXIT_USAGE = 2           # argparse's own code for bad arguments
EXIT_REJECTED = 3        # the media was judged and refused

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEMO_SAMPLE = PROJECT_DIR / "samples" / "demo-episode.mp4"
DEMO_SERIES, DEMO_EPISODE = "demo", "1"
DEMO_VIEWER, DEMO_GUEST = "demo-viewer", "guest-viewer"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not os.environ.get("SERIES_FFMPEG_LOG"):
        logging.getLogger("libav").setLevel(logging.ERROR)
    try:
        settings = Settings.from_env()
        return args.handler(args, settings)
    except SettingsError as exc:
        print(f"series: configuration error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except MediaRejected as exc:
        _print_rejection(exc, args)
        return EXIT_REJECTED
    except (PipelineError, PackagerError, DrmError, JobError) as exc:
        print(f"series: {exc.code}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="series",
        description="Premium video series: ingest episodes into encrypted HLS and serve keys to buyers. "
                    "Configured by SERIES_* environment variables (see README); with none set it uses "
                    "the embedded local object store under ./var.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="start everything locally, publish a sample episode, print playable URLs")
    demo.add_argument("--json", action="store_true", help="print the URLs as one JSON object on the first stdout line")
    demo.add_argument("--sample", type=Path, default=DEMO_SAMPLE, help="episode to publish (generated if absent)")
    demo.add_argument("--reingest", action="store_true", help="publish a new version even if one is live")
    demo.add_argument("--progress", action="store_true", default=None,
                      help="show the ingest progress bar even when stderr is not a terminal")
    _add_segment_format(demo)
    demo.set_defaults(handler=cmd_demo)

    ingest = commands.add_parser("ingest", help="validate, transcode, encrypt and publish one episode")
    ingest.add_argument("file", type=Path)
    ingest.add_argument("--series", required=True, help="series id, e.g. my-series")
    ingest.add_argument("--episode", required=True, help="episode id, e.g. 1")
    ingest.add_argument("--json", action="store_true",
                        help="print the result as JSON, with each rung's sampled PSNR and quality warnings")
    ingest.add_argument("--free-preview", action=argparse.BooleanOptionalAction, default=None,
                        help="mark (or unmark) the episode as a free preview; default: unchanged")
    ingest.add_argument("--progress", action="store_true", default=None,
                        help="show a progress bar (stage, percent, speed, ETA) even when stderr is not a terminal")
    _add_segment_format(ingest)
    ingest.set_defaults(handler=cmd_ingest)

    check = commands.add_parser("validate", help="judge a file as an episode without publishing it")
    check.add_argument("file", type=Path)
    check.add_argument("--json", action="store_true", help="print the validation report as JSON")
    check.set_defaults(handler=cmd_validate)

    serve = commands.add_parser("serve", help="run the HTTP service (playlists, segments, keys)")
    serve.set_defaults(handler=cmd_serve)

    for name, handler, text in (("grant", cmd_grant, "give a viewer access to a series"),
                                ("revoke", cmd_revoke, "take a viewer's access to a series away")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--viewer", required=True)
        sub.add_argument("--series", required=True)
        sub.add_argument("--reason", default="")
        if name == "grant":
            sub.add_argument("--source", choices=("comp", "gift"), default="comp", help="default: comp")
        sub.set_defaults(handler=handler)

    token = commands.add_parser("token", help="mint a playback token and print the episode's URL for it")
    token.add_argument("--viewer", required=True)
    token.add_argument("--series", required=True)
    token.add_argument("--episode", help="also print this episode's master playlist URL")
    token.add_argument("--ttl", type=int, help="lifetime in seconds (default SERIES_TOKEN_TTL_S)")
    token.set_defaults(handler=cmd_token)

    jobs = commands.add_parser("jobs", help="list ingest jobs handed off over the API, or show one")
    jobs.add_argument("job_id", nargs="?", help="show this job in full (default: list recent jobs)")
    jobs.add_argument("--state", choices=STATES, help="list only jobs in this state")
    jobs.add_argument("--limit", type=int, default=20, help="list at most this many, newest first (default 20)")
    jobs.add_argument("--json", action="store_true", help="print JSON")
    jobs.set_defaults(handler=cmd_jobs)

    store = commands.add_parser("store", help="start, stop or inspect the embedded local object store")
    store.add_argument("action", choices=("start", "stop", "status"))
    store.set_defaults(handler=cmd_store)
    cli_catalog.add_commands(commands)

    gc_help = ("delete superseded and orphaned episode versions and their keys (the live version, and the "
               "previous one for SERIES_GC_GRACE_S, stay), and spooled uploads of jobs that failed more than "
               "SERIES_FAILED_UPLOAD_RETENTION_S ago or that no job names (never a queued or running job's)")
    gc = commands.add_parser("gc", help=gc_help, description=gc_help)
    gc.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    gc.add_argument("--json", action="store_true", help="print the result as JSON")
    gc.set_defaults(handler=cmd_gc)
    return parser


# -- commands ---------------------------------------------------------------------------------------

def cmd_validate(args, settings: Settings) -> int:
    report = validate(args.file, settings.rules)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    elif report.is_acceptable:
        video = report.info.video
        print(f"{args.file.name}: accepted ({report.duration_s:.1f} s, "
              f"{video.display_width}x{video.display_height} as displayed, {video.codec})")
    else:
        for issue in report.issues:
            print(f"{args.file.name}: rejected: {issue.message} [{issue.code}]", file=sys.stderr)
    return EXIT_OK if report.is_acceptable else EXIT_REJECTED


def cmd_ingest(args, settings: Settings) -> int:
    settings = _with_segment_format(settings, args.segment_format)
    transcoded = []
    with running_services(settings) as services:
        published = _ingest(services, args.file, args.series, args.episode, is_free_preview=args.free_preview,
                            show_bar=args.progress, on_transcoded=transcoded.append)
    result = {"series": args.series, "episode": args.episode, "version": published.version,
              "renditions": list(published.renditions), "segments": published.segment_count,
              "duration_s": published.duration_s}
    if transcoded:
        result["quality"] = [r.quality.as_dict() for r in transcoded[0].renditions if r.quality is not None]
        result["quality_warnings"] = list(transcoded[0].quality_warnings)
    print(json.dumps(result) if args.json else
          f"published series {args.series} episode {args.episode} as v{published.version}: "
          f"{', '.join(published.renditions)}, {published.segment_count} segments, {published.duration_s:.1f} s")
    return EXIT_OK


def cmd_gc(args, settings: Settings) -> int:
    with running_services(settings) as services:
        collected = collect_garbage(services.store, services.keystore, grace_s=settings.gc_grace_s,
                                    dry_run=args.dry_run)
        uploads = sweep_spool(JobStore(services.db), settings.jobs.spool_dir,
                              retention_s=settings.jobs.failed_upload_retention_s, dry_run=args.dry_run)
    rows = [{"series": c.plan.location.series_id, "episode": c.plan.location.episode_id,
             "live": c.plan.live_version, "keep": list(c.plan.keep), "delete": list(c.plan.delete),
             "objects_deleted": c.objects_deleted, "keys_deleted": c.keys_deleted} for c in collected]
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "episodes": rows,
                          "uploads": [upload.as_dict() for upload in uploads]}))
        return EXIT_OK
    verb = "would delete" if args.dry_run else "deleted"
    for upload in uploads:
        print(f"spooled upload {upload.path} ({upload.reason.replace('_', ' ')}"
              f"{' ' + upload.job_id if upload.job_id else ''}, {upload.size_bytes} bytes): {verb}")
    for row in rows:
        versions = ", ".join(f"v{v}" for v in row["delete"]) or "nothing"
        done = "" if args.dry_run or not row["delete"] else \
            f" ({row['objects_deleted']} objects, {row['keys_deleted']} keys)"
        live = f"v{row['live']}" if row["live"] is not None else "none"
        print(f"series {row['series']} episode {row['episode']}: live {live}, "
              f"{verb} {versions}{done}")
    return EXIT_OK


def cmd_grant(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        services.entitlements.grant(args.viewer, args.series, source=args.source,
                                    reason=args.reason or "granted by operator", actor="cli")
    print(f"viewer {args.viewer} may watch series {args.series}")
    return EXIT_OK


def cmd_revoke(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        revoked = services.entitlements.revoke(args.viewer, args.series, reason=args.reason or "revoked by operator",
                                               actor="cli")
    print(f"viewer {args.viewer} " + ("can no longer watch" if revoked else "had no access to") + f" series {args.series}")
    return EXIT_OK


def cmd_token(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        token = services.tokens.mint(args.viewer, args.series, ttl_s=args.ttl)
    print(token)
    if args.episode:
        print(master_url(settings.public_url, args.series, args.episode, token))
    return EXIT_OK


def cmd_jobs(args, settings: Settings) -> int:
    jobs = JobStore.open(settings.db_path)
    try:
        listed = [jobs.get(args.job_id)] if args.job_id else jobs.list(state=args.state, limit=args.limit)
    finally:
        jobs.close()
    if args.json:
        shown = [job.as_public_dict() for job in listed]
        print(json.dumps(shown[0] if args.job_id else shown, indent=2))
    elif args.job_id:
        job = listed[0]
        print(f"{job.job_id}: {job.state} ({job.stage_fraction:.0%}), series {job.series_id} episode "
              f"{job.episode_id}, attempt {job.attempt}" + (f", published as v{job.version}" if job.version else ""))
        if job.error_code:
            print(f"  error {job.error_code}: {job.error_message}")
        for reason in (job.report or {}).get("reasons", []):
            print(f"  rejected: {reason['message']} [{reason['code']}]")
    else:
        for job in listed:
            print(f"{job.job_id}  {job.state:<11} {job.stage_fraction:>4.0%}  {job.series_id}/{job.episode_id}"
                  + (f"  {job.error_code}" if job.error_code else ""))
    return EXIT_OK


def cmd_store(args, settings: Settings) -> int:
    if settings.local_store is None:
        print("series: SERIES_S3_ENDPOINT is set, so the embedded store is not used", file=sys.stderr)
        return EXIT_FAILED
    local = LocalObjectStore(settings.local_store)
    if args.action == "start":
        local.start()
        print(f"local object store serves S3 at http://{local.endpoint} (PID {local.pid}); data in {settings.local_store.data_dir}")
    elif args.action == "stop":
        local.stop()
        print("local object store stopped")
    else:
        running = local.is_running()
        print(f"local object store: {'running at http://' + local.endpoint if running else 'stopped'}")
    return EXIT_OK


def cmd_serve(args, settings: Settings) -> int:
    with running_services(settings) as services:
        asyncio.run(_serve_until_signalled(settings, services, on_ready=lambda: log.info(
            "serving on %s (Ctrl+C stops)", settings.public_url)))
    return EXIT_OK


def cmd_demo(args, settings: Settings) -> int:
    settings = _with_segment_format(settings, args.segment_format)
    with running_services(settings) as services:
        if not args.sample.exists():
            log.info("generating a 40 s 720p sample episode at %s", args.sample)
            from pipeline.synthetic import generate_clip
            generate_clip(args.sample, duration_s=40, width=1280, height=720, fps=30)
        from packager.publish import EpisodeLocation, read_pointer
        cli_catalog.ensure_demo_series(services, DEMO_SERIES)
        location = EpisodeLocation(series_id=DEMO_SERIES, episode_id=DEMO_EPISODE)
        if args.reingest or read_pointer(services.store, location) is None:
            _ingest(services, args.sample, DEMO_SERIES, DEMO_EPISODE, show_bar=args.progress)
        services.entitlements.grant(DEMO_VIEWER, DEMO_SERIES, source="comp", reason="demo")
        urls = {
            "entitled_url": master_url(settings.public_url, DEMO_SERIES, DEMO_EPISODE,
                                       services.tokens.mint(DEMO_VIEWER, DEMO_SERIES)),
            "unentitled_url": master_url(settings.public_url, DEMO_SERIES, DEMO_EPISODE,
                                         services.tokens.mint(DEMO_GUEST, DEMO_SERIES)),
        }

        def announce() -> None:
            if args.json:
                print(json.dumps(urls), flush=True)
            else:
                print(f"Serving on {settings.public_url} — Ctrl+C stops everything this demo started.\n"
                      f"  {DEMO_VIEWER} (bought the series): {urls['entitled_url']}\n"
                      f"  {DEMO_GUEST} (did not buy, key refused): {urls['unentitled_url']}\n"
                      f"Try: ffmpeg -i \"{urls['entitled_url']}\" -f null -", flush=True)

        asyncio.run(_serve_until_signalled(settings, services, on_ready=announce))
    return EXIT_OK


# -- helpers ----------------------------------------------------------------------------------------

def _add_segment_format(command: argparse.ArgumentParser) -> None:
    command.add_argument("--segment-format", choices=[f.value for f in SegmentFormat], default=None,
                         help="HLS segment container: ts (MPEG-TS) or fmp4 (fragmented MP4, EXT-X-MAP); "
                              "default: SERIES_HLS_SEGMENT_FORMAT, else ts")


def _with_segment_format(settings: Settings, segment_format: str | None) -> Settings:
    """The flag wins over SERIES_HLS_SEGMENT_FORMAT for this command."""
    return settings if segment_format is None else replace(settings, hls_segment_format=SegmentFormat(segment_format))


def _ingest(services: Services, file: Path, series_id: str, episode_id: str, *,
            is_free_preview: bool | None = None, show_bar: bool | None = None, on_transcoded=None):
    with IngestProgress(show_bar=show_bar) as progress:
        return ingest_episode(file, series_id=series_id, episode_id=episode_id, settings=services.settings,
                              store=services.store, keystore=services.keystore, catalog=services.catalog,
                              is_free_preview=is_free_preview, progress=progress.stage,
                              transcode_progress=progress.transcode, on_transcoded=on_transcoded,
                              versions=EpisodeVersions(services.db))


@contextlib.contextmanager
def running_services(settings: Settings) -> Iterator[Services]:
    """Services with a reachable store: the embedded one is started if needed, and stopped again
    on exit only if this command started it."""
    local = LocalObjectStore(settings.local_store) if settings.local_store else None
    started_here = False
    if local is not None and not local.is_running():
        local.start()
        started_here = local.started_here
        if started_here:
            log.info("started the local object store at http://%s", local.endpoint)
    try:
        with Services.open(settings) as services:
            services.store.ensure_bucket()
            yield services
    finally:
        if started_here:
            local.stop()
            log.info("stopped the local object store")


async def _serve_until_signalled(settings: Settings, services: Services, on_ready) -> None:
    from server.app import create_app, start_runner

    configure_access_log(sys.stderr)      # JSON lines, tokens redacted, written off the event loop
    runner = await start_runner(create_app(settings, services))
    site = web.TCPSite(runner, settings.listen_host, settings.listen_port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        on_ready()
        await stop.wait()
    finally:
        await runner.cleanup()


def _print_rejection(exc: MediaRejected, args) -> None:
    if getattr(args, "json", False):
        print(json.dumps(exc.report.as_dict(), indent=2))
    name = getattr(args, "file", None) or getattr(args, "sample", "")
    for issue in exc.report.issues:
        print(f"{Path(str(name)).name}: rejected: {issue.message} [{issue.code}]", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
