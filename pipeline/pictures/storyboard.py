"""Trick-play storyboards: small tiles every few seconds, packed into JPEG sprite sheets, and the WebVTT
file whose cues point at `sheet.jpg#xywh=x,y,w,h` (the format players' thumbnail plug-ins read:
video.js vtt-thumbnails, Plyr previewThumbnails, JW Player, hls.js-based UIs).

Tiles are taken from the transcode's own decode (pipeline/pictures/sampler.py feeds them) at fixed times
k * interval_s on the output frame grid, so tile k shows the picture at the start of its cue. A sheet
holds at most SHEET_COLUMNS x SHEET_ROWS tiles and is encoded as soon as it is full, so memory holds
one sheet's tiles however long the episode is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from pipeline.pictures.still_image import STORYBOARD_JPEG_QUALITY_SCALE, Size, encode_jpeg

TILE_LONG_SIDE_PX = 160          # 160x90 for 16:9, 90x160 for 9:16
SHEET_COLUMNS = 10
SHEET_ROWS = 10                  # at most 1600x900 px per sheet (~100-250 KB)
MIN_INTERVAL_S = 2
MAX_INTERVAL_S = 5
TARGET_TILES = 240               # a 20-minute episode at the longest interval


def storyboard_interval_s(duration_s: float) -> int:
    """Seconds between tiles: 2 s up to 8 min, then longer (up to 5 s) so an episode has ~240 tiles."""
    return min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, math.ceil(duration_s / TARGET_TILES)))


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryboardCue:
    start_s: Fraction
    end_s: Fraction
    sheet: int                   # index into Storyboard.sheets
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Storyboard:
    sheets: tuple[bytes, ...] = field(repr=False)   # JPEG files
    sheet_size: Size
    tile_size: Size
    columns: int                 # tiles per sheet row
    rows: int                    # tile rows per sheet
    interval_s: int
    duration_s: Fraction
    tile_count: int

    @property
    def tiles_per_sheet(self) -> int:
        return self.columns * self.rows

    def cues(self) -> list[StoryboardCue]:
        """One cue per tile; together they cover [0, duration_s) without gaps."""
        cues = []
        for index in range(self.tile_count):
            sheet, position = divmod(index, self.tiles_per_sheet)
            row, column = divmod(position, self.columns)
            start = Fraction(index * self.interval_s)
            end = min(self.duration_s, Fraction((index + 1) * self.interval_s))
            if index == self.tile_count - 1:
                end = self.duration_s
            cues.append(StoryboardCue(start_s=start, end_s=end, sheet=sheet, x=column * self.tile_size.width,
                                      y=row * self.tile_size.height, width=self.tile_size.width,
                                      height=self.tile_size.height))
        return cues

    def sheet_durations_s(self) -> list[Fraction]:
        """How much of the episode each sheet covers (its tiles' cues), for an HLS image playlist's EXTINF."""
        covered = [Fraction(0)] * len(self.sheets)
        for cue in self.cues():
            covered[cue.sheet] += cue.end_s - cue.start_s
        return covered


def render_storyboard_vtt(storyboard: Storyboard, sheet_uri: Callable[[int], str]) -> str:
    """The WebVTT thumbnails track: each cue's payload is `<sheet_uri(n)>#xywh=x,y,w,h`."""
    lines = ["WEBVTT", ""]
    for cue in storyboard.cues():
        lines += [f"{vtt_timestamp(cue.start_s)} --> {vtt_timestamp(cue.end_s)}",
                  f"{sheet_uri(cue.sheet)}#xywh={cue.x},{cue.y},{cue.width},{cue.height}", ""]
    return "\n".join(lines)


def vtt_timestamp(seconds: Fraction | float) -> str:
    """hh:mm:ss.mmm, rounded to the millisecond."""
    milliseconds = round(Fraction(seconds) * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


class StoryboardBuilder:
    """Collects tiles in order and encodes each sheet as it fills (see the module docstring)."""

    def __init__(self, tile_size: Size, interval_s: int) -> None:
        self.tile_size = tile_size
        self.interval_s = interval_s
        self.sheets: list[bytes] = []
        self.pending: list[np.ndarray] = []
        self.tile_count = 0

    def add(self, tile: np.ndarray) -> None:
        """Add the next tile (RGB, tile_size); tile k covers [k * interval_s, (k + 1) * interval_s)."""
        self.pending.append(tile)
        self.tile_count += 1
        if len(self.pending) == SHEET_COLUMNS * SHEET_ROWS:
            self.sheets.append(self._sheet(self.pending, SHEET_ROWS))
            self.pending = []

    def finish(self, duration_s: Fraction) -> Storyboard:
        """The storyboard of an episode lasting `duration_s`. Raises PictureError if encoding fails."""
        is_single_sheet = not self.sheets
        # one sheet: only the rows it uses; several: every sheet the full grid, so a client that
        # derives tile size from the sheet size and LAYOUT (some HLS image-playlist readers do) is right
        rows = max(1, math.ceil(len(self.pending) / SHEET_COLUMNS)) if is_single_sheet else SHEET_ROWS
        columns = min(SHEET_COLUMNS, max(1, self.tile_count)) if is_single_sheet else SHEET_COLUMNS
        if self.pending:
            self.sheets.append(self._sheet(self.pending, rows, columns))
            self.pending = []
        return Storyboard(sheets=tuple(self.sheets),
                          sheet_size=Size(columns * self.tile_size.width, rows * self.tile_size.height),
                          tile_size=self.tile_size, columns=columns, rows=rows, interval_s=self.interval_s,
                          duration_s=duration_s, tile_count=self.tile_count)

    def _sheet(self, tiles: list[np.ndarray], rows: int, columns: int = SHEET_COLUMNS) -> bytes:
        width, height = self.tile_size
        sheet = np.zeros((rows * height, columns * width, 3), dtype=np.uint8)
        for index, tile in enumerate(tiles):
            row, column = divmod(index, columns)
            sheet[row * height:(row + 1) * height, column * width:(column + 1) * width] = tile
        return encode_jpeg(sheet, STORYBOARD_JPEG_QUALITY_SCALE)
