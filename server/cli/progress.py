"""The CLI's ingest progress: a tqdm bar on a terminal (stage, percent, and for transcoding its speed and
ETA), log lines otherwise.

Both read the same numbers ingest_episode hands to any caller (stage + fraction, TranscodeProgress),
so a job API reports exactly what the operator sees. While the bar is shown, log lines are written
above it (tqdm's logging redirect), never into it; a stage's details belong to that stage only, so
packaging and publishing show their own elapsed time, not the transcode's last speed and ETA.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from pipeline.encode.transcode import TranscodeProgress

log = logging.getLogger("series")
BAR_FORMAT = "{desc:<12} {percentage:3.0f}%|{bar:24}| {detail}"


class _StageBar(tqdm):
    """A tqdm bar with one free-text field, `detail`, after the bar (tqdm's own postfix prepends ', ')."""

    detail = ""

    @property
    def format_dict(self):
        return {**super().format_dict, "detail": self.detail}


class IngestProgress:
    """Callbacks for ingest_episode(progress=..., transcode_progress=...); use as a context manager."""

    def __init__(self, *, show_bar: bool | None = None) -> None:
        # None: a bar only when a person is watching stderr
        self.show_bar = sys.stderr.isatty() if show_bar is None else show_bar
        self.bar: _StageBar | None = None
        self.last_logged = -1
        self.stage_name: str | None = None
        self.stage_started = time.monotonic()
        self._redirect = contextlib.ExitStack()

    def __enter__(self) -> IngestProgress:
        if self.show_bar:
            # log records go through tqdm.write, above the bar, while it is shown
            self._redirect.enter_context(logging_redirect_tqdm())
            self.bar = _StageBar(total=100, file=sys.stderr, desc="validating", leave=True, bar_format=BAR_FORMAT,
                                 dynamic_ncols=False, mininterval=0.2)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.close()
        self._redirect.close()

    def stage(self, stage: str, fraction: float) -> None:
        """ingest_episode's `progress` callback: (stage, fraction done)."""
        if stage != self.stage_name:
            self.stage_name, self.stage_started = stage, time.monotonic()
        if self.bar is not None:
            self.bar.set_description_str(stage, refresh=False)
            if stage != "transcoding":          # the transcode's speed and ETA end with the transcode
                self.bar.detail = f"{time.monotonic() - self.stage_started:.0f} s"
            self._move_to(fraction)
        elif stage != "transcoding":
            log.info("%s %3.0f%%", stage, fraction * 100)

    def transcode(self, progress: TranscodeProgress) -> None:
        """ingest_episode's `transcode_progress` callback: speed and ETA while encoding."""
        details = describe(progress)
        self.stage_name = "transcoding"
        if self.bar is not None:
            self.bar.set_description_str("transcoding", refresh=False)
            self.bar.detail = details
            self._move_to(progress.fraction)
        elif int(progress.fraction * 10) != self.last_logged:
            self.last_logged = int(progress.fraction * 10)
            log.info("transcoding %3.0f%% (%s)", progress.fraction * 100, details)

    def _move_to(self, fraction: float) -> None:
        self.bar.n = round(min(max(fraction, 0.0), 1.0) * 100)
        self.bar.refresh()


def describe(progress: TranscodeProgress) -> str:
    """'1.80x realtime, ETA 0:42' (ETA unknown until there is a speed and a known duration)."""
    eta = progress.eta_s
    eta_text = "?" if eta is None else f"{int(eta) // 60}:{int(eta) % 60:02d}"
    return f"{progress.speed_x:.2f}x realtime, ETA {eta_text}"
