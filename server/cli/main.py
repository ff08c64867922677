"""`series`: the operator's command line. main() reads the settings once, runs one command, and turns
the errors every command can meet into one line on stderr and a documented exit code."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from drm.errors import DrmError
from packager.errors import PackagerError
from pipeline.errors import MediaRejected, PipelineError
from server.cli import access, catalog, demo, episodes, operations, service
from server.cli.common import EXIT_FAILED, EXIT_REJECTED
from server.config import Settings, SettingsError
from server.ingest.jobs import JobError

COMMAND_GROUPS = (demo, episodes, service, access, operations, catalog)


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
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    return parser


def _print_rejection(exc: MediaRejected, args) -> None:
    if getattr(args, "json", False):
        print(json.dumps(exc.report.as_dict(), indent=2))
    name = getattr(args, "file", None) or getattr(args, "sample", "")
    for issue in exc.report.issues:
        print(f"{Path(str(name)).name}: rejected: {issue.message} [{issue.code}]", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
