"""The CLI's ingest progress: a tqdm bar on a terminal (stage, percent, speed, ETA), log lines otherwise.

Both read the same numbers ingest_episode hands to any caller (stage + fraction, TranscodeProgress),
so a job API reports exactly what the operator sees.
"""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

from pipeline.transcode import TranscodeProgress

log = logging.getLogger("series")


class IngestProgress:
    """Callbacks for ingest_episode(progress=..., transcode_progress=...); use as a context manager."""

    def __init__(self, *, show_bar: bool | None = None) -> None:
        # None: a bar only when a person is watching stderr
        self.show_bar = sys.stderr.isatty() if show_bar is None else show_bar
        self.bar: tqdm | None = None
        self.last_logged = -1

    def __enter__(self) -> IngestProgress:
        if self.show_bar:
            self.bar = tqdm(total=100, file=sys.stderr, desc="validating", leave=True,
                            bar_format="{desc:<12} {percentage:3.0f}%|{bar}| {postfix}")
        return self

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.close()

    def stage(self, stage: str, fraction: float) -> None:
        """ingest_episode's `progress` callback: (stage, fraction done)."""
        if self.bar is not None:
            self.bar.set_description_str(stage, refresh=False)
            self._move_to(fraction)
        elif stage != "transcoding":
            log.info("%s %3.0f%%", stage, fraction * 100)

    def transcode(self, progress: TranscodeProgress) -> None:
        """ingest_episode's `transcode_progress` callback: speed and ETA while encoding."""
        details = describe(progress)
        if self.bar is not None:
            self.bar.set_description_str("transcoding", refresh=False)
            self.bar.set_postfix_str(details, refresh=False)
            self._move_to(progress.fraction)
        elif int(progress.fraction * 10) != self.last_logged:
            self.last_logged = int(progress.fraction * 10)
            log.info("transcoding %3.0f%% (%s)", progress.fraction * 100, details)

    def _move_to(self, fraction: float) -> None:
        self.bar.n = round(fraction * 100)
        self.bar.refresh()


def describe(progress: TranscodeProgress) -> str:
    """'1.8x realtime, ETA 0:42' (ETA unknown until there is a speed and a known duration)."""
    eta = progress.eta_s
    eta_text = "?" if eta is None else f"{int(eta) // 60}:{int(eta) % 60:02d}"
    return f"{progress.speed_x:.2f}x realtime, ETA {eta_text}"
