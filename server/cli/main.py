"""`series`: the operator's command line. main() reads the settings once, runs one command, and turns
the errors every command can meet into one line on stderr and a documented exit code."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import sqlite3
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from drm.errors import DrmError
from packager.errors import PackagerError
from pipeline.errors import MediaRejected, PipelineError
from server.cli import demo
from server.cli.catalog import access, episodes, ingest, pictures, series
from server.cli.common import EXIT_FAILED, EXIT_REJECTED, EXIT_USAGE
from server.cli.operations import database, gc, jobs, service, uploads
from server.config import Settings, SettingsError
from server.ingest.resumable import UploadError
from server.jobs.jobs import JobError
from server.publishing.admission import SeriesNotSellable

COMMAND_GROUPS = (demo, ingest, pictures, episodes, service, access, jobs, gc, uploads, series, database)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every error it can meet is one line on stderr (its traceback only with --verbose)
    and an exit code: 0 done, 1 failed, 2 bad arguments (argparse), 3 media rejected, 130 interrupted."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not os.environ.get("SERIES_FFMPEG_LOG"):
        logging.getLogger("libav").setLevel(logging.ERROR)
    try:
        settings = Settings.from_env()
        return args.handler(args, settings)
    except SettingsError as exc:
        return _fail(args, exc, f"configuration error: {exc}; fix the variable and run the command again")
    except MediaRejected as exc:
        _print_rejection(exc, args)
        return EXIT_REJECTED
    except (PipelineError, PackagerError, DrmError, JobError, SeriesNotSellable, UploadError) as exc:
        return _fail(args, exc, f"{exc.code}: {exc}")
    except sqlite3.Error as exc:
        return _fail(args, exc, f"database error: {exc}; check SERIES_DB_PATH (and that the disk is not full)")
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(args, exc, f"{exc.strerror or exc}{where}; check the path and its permissions")
    except argparse.ArgumentTypeError as exc:      # a file named inside an option's value (--facts @FILE)
        print(f"series: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for the person, the traceback with --verbose
        return _fail(args, exc, f"unexpected error: {type(exc).__name__}: {exc}; run with --verbose for the traceback "
                                "and report it")


def _fail(args, exc: BaseException, line: str) -> int:
    print(f"series: {line}", file=sys.stderr)
    if getattr(args, "verbose", False):
        traceback.print_exception(exc, file=sys.stderr)
    return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="series",
        description="Premium video series: ingest episodes into encrypted HLS and serve keys to buyers. "
                    "Configured by SERIES_* environment variables (see README); with none set it uses "
                    "the embedded local object store under ./var.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and tracebacks of errors")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    return parser


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (naming it and where the help is) instead of
    the usage block; sub-commands inherit it. Exit code 2, as argparse's."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`\n")


def _version() -> str:
    try:
        return importlib.metadata.version("premium-series")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def _print_rejection(exc: MediaRejected, args) -> None:
    if getattr(args, "json", False):
        print(json.dumps(exc.report.as_dict(), indent=2))
    name = getattr(args, "file", None) or getattr(args, "sample", "")
    for issue in exc.report.issues:
        print(f"{Path(str(name)).name}: rejected: {issue.message} [{issue.code}]", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
