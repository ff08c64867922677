"""`series ingest` and `series validate`: one file judged, or judged and published as an episode."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.inspect.validate import validate
from server.cli.common import (
    EXIT_OK,
    EXIT_REJECTED,
    ingest_options,
    ingest_with_progress,
    media_file,
    running_services,
    with_segment_format,
)
from server.config import Settings


def add_commands(commands: argparse._SubParsersAction) -> None:
    ingest = commands.add_parser("ingest", parents=[ingest_options()],
                                 help="validate, transcode, encrypt and publish one episode")
    ingest.add_argument("file", type=media_file, help="the episode's video file (MP4, MOV, MKV, WebM, ...)")
    ingest.add_argument("--series", required=True, help="series id, e.g. my-series")
    ingest.add_argument("--episode", required=True, help="episode id, e.g. 1")
    ingest.add_argument("--json", action="store_true",
                        help="print the result as JSON: the ladder chosen and why each candidate rung was kept or dropped, "
                             "each rung's sampled PSNR/SSIM and quality warnings, the poster and storyboard made, the "
                             "caption tracks published and the subtitle streams skipped (and why)")
    ingest.add_argument("--poster-at", type=float, metavar="SECONDS",
                        help="take the poster at this time (seconds); default: the best-scored frame (not black, "
                             "not a fade, sharp)")
    ingest.add_argument("--free-preview", action=argparse.BooleanOptionalAction, default=None,
                        help="mark (or unmark) the episode as a free preview; default: unchanged")
    ingest.set_defaults(handler=cmd_ingest)

    check = commands.add_parser("validate", help="judge a file as an episode without publishing it")
    check.add_argument("file", type=media_file, help="the video file to judge")
    check.add_argument("--json", action="store_true", help="print the validation report as JSON")
    check.set_defaults(handler=cmd_validate)


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
    settings = with_segment_format(settings, args.segment_format)
    reports = []
    with running_services(settings) as services:
        published = ingest_with_progress(services, args.file, args.series, args.episode,
                                         is_free_preview=args.free_preview, show_bar=args.progress,
                                         on_report=reports.append, poster_at_s=args.poster_at)
    result = {"series": args.series, "episode": args.episode, "version": published.version,
              "renditions": list(published.renditions), "segments": published.segment_count,
              "duration_s": published.duration_s}
    if reports:
        result.update(reports[0])
    print(json.dumps(result) if args.json else
          f"published series {args.series} episode {args.episode} as v{published.version}: "
          f"{', '.join(published.renditions)}, {published.segment_count} segments, {published.duration_s:.1f} s")
    return EXIT_OK
