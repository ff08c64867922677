"""What the `series` commands share: exit codes, the services with a reachable store, the ingest options."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from pipeline.encode.fmp4 import SegmentFormat
from server.cli.progress import IngestProgress
from server.config import Settings
from server.local.object_store import LocalObjectStore
from server.publishing.episode import ingest_episode
from server.publishing.versions import EpisodeVersions
from server.services import Services

log = logging.getLogger("series")

EXIT_OK = 0
EXIT_FAILED = 1          # the command could not do its job (store down, bad configuration, ...)
EXIT_USAGE = 2           # argparse's own code for bad arguments
EXIT_REJECTED = 3        # the media was judged and refused


def media_file(text: str) -> Path:
    """argparse type for a file the command reads: it must exist, be a regular file and be readable, so a
    mistyped name is one line naming it (exit 2), not a traceback from deep inside the command."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file; check the name and the directory you are in")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give the path of one file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be read (permission denied); check its permissions")
    return path


def ingest_options() -> argparse.ArgumentParser:
    """The options every command that ingests takes (argparse parent parser)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--progress", action="store_true", default=None,
                         help="show a progress bar (stage, percent, speed, ETA) even when stderr is not a terminal")
    options.add_argument("--segment-format", choices=[f.value for f in SegmentFormat], default=None,
                         help="HLS segment container: ts (MPEG-TS) or fmp4 (fragmented MP4, EXT-X-MAP); "
                              "default: SERIES_HLS_SEGMENT_FORMAT, else ts")
    return options


def with_segment_format(settings: Settings, segment_format: str | None) -> Settings:
    """The flag wins over SERIES_HLS_SEGMENT_FORMAT for this command."""
    return settings if segment_format is None else replace(settings, hls_segment_format=SegmentFormat(segment_format))


def ingest_with_progress(services: Services, file: Path, series_id: str, episode_id: str, *,
                         is_free_preview: bool | None = None, show_bar: bool | None = None, on_report=None,
                         poster_at_s: float | None = None):
    """ingest_episode() with the CLI's progress display."""
    with IngestProgress(show_bar=show_bar) as progress:
        return ingest_episode(file, series_id=series_id, episode_id=episode_id, settings=services.settings,
                              store=services.store, keystore=services.keystore, catalog=services.catalog,
                              is_free_preview=is_free_preview, progress=progress.stage,
                              transcode_progress=progress.transcode, on_report=on_report,
                              versions=EpisodeVersions(services.db), creators=services.creators,
                              poster_at_s=poster_at_s)


@contextlib.contextmanager
def running_store(settings: Settings) -> Iterator[None]:
    """The embedded object store running for the block when it is the store: started if needed, and
    stopped again on exit only if this command started it. Nothing to do with an external store."""
    local = LocalObjectStore(settings.local_store) if settings.local_store else None
    started_here = False
    if local is not None and not local.is_running():
        local.start()
        started_here = local.started_here
        if started_here:
            log.info("started the local object store at http://%s", local.endpoint)
    try:
        yield
    finally:
        if started_here:
            local.stop()
            log.info("stopped the local object store")


@contextlib.contextmanager
def running_services(settings: Settings) -> Iterator[Services]:
    """Services with a reachable store (see running_store) and its bucket."""
    with running_store(settings), Services.open(settings) as services:
        services.store.ensure_bucket()
        yield services
