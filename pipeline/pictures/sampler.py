"""An episode's pictures from the transcode's own decode: the poster and the trick-play storyboard.

PictureSampler is the frame observer transcode() calls for every frame it emits on the output grid
(after rotation). It looks at few of them and shrinks those at once:

- poster candidates every `candidate_every_s` (~100 per episode, at least 1 s apart): the picture and,
  FADE_PROBE_S later, a second one, each as a SCORE_WIDTH_PX-wide luma plane, scored by
  pipeline/pictures/frame_score.py. Only the best candidate's decoded frame is kept (a reference, no copy), so
  memory does not grow with the episode. With a poster time given, the frame at that time is kept.
- storyboard tiles every storyboard_interval_s(), shrunk to TILE_LONG_SIDE_PX at once and packed into
  sheets by pipeline/pictures/storyboard.py.

Cost per sampled frame is one or two swscale passes to a few hundred pixels and a few numpy
reductions on them: about a millisecond on the decoding thread per second of video (bench/ measures
it against the transcode without the sampler).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import av
from av.video.reformatter import VideoReformatter

from pipeline.errors import PictureError, PictureTimeOutOfRange
from pipeline.pictures.frame_score import FrameScore, score_frame
from pipeline.pictures.still_image import encode_jpeg, encode_webp, fitted_size, scaled_size, to_rgb
from pipeline.pictures.storyboard import TILE_LONG_SIDE_PX, Storyboard, StoryboardBuilder, storyboard_interval_s

log = logging.getLogger(__name__)

POSTER_WIDTHS = (320, 640, 1280)
SCORE_WIDTH_PX = 256
FADE_PROBE_S = 0.2
MAX_CANDIDATES = 100
# the first and last tenth of an episode (titles, credits, fades in and out) rank below the middle
EDGE_FRACTION = 0.1
EDGE_WEIGHT = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class PosterImage:
    width: int
    height: int
    format: str                   # "jpeg" or "webp"
    data: bytes = field(repr=False)

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Poster:
    time_s: Fraction              # where in the episode the picture is from
    is_chosen: bool               # True: the creator named the time; False: picked by score
    images: tuple[PosterImage, ...]
    score: FrameScore | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodePictures:
    poster: Poster
    storyboard: Storyboard


def render_poster(frame: av.VideoFrame, *, time_s: Fraction, is_chosen: bool, widths: Sequence[int] = POSTER_WIDTHS,
                  score: FrameScore | None = None) -> Poster:
    """Encode `frame` as JPEG and WebP at each width (never upscaled: widths above the frame's collapse
    into the frame's own width). Portrait frames keep their shape. Raises PictureError."""
    sizes = sorted({scaled_size(frame.width, frame.height, width) for width in widths})
    reformatter = VideoReformatter()
    images = []
    for size in sizes:
        rgb = to_rgb(frame, size, reformatter)
        images.append(PosterImage(width=size.width, height=size.height, format="jpeg", data=encode_jpeg(rgb)))
        images.append(PosterImage(width=size.width, height=size.height, format="webp", data=encode_webp(rgb)))
    return Poster(time_s=time_s, is_chosen=is_chosen, images=tuple(images), score=score)


class PictureSampler:
    """The frame observer (see the module docstring). Pass it to transcode(), then call finish()."""

    def __init__(self, *, expected_duration_s: float | None, poster_time_s: float | None = None) -> None:
        duration = expected_duration_s or 0.0
        if poster_time_s is not None and (poster_time_s < 0 or (duration and poster_time_s > duration)):
            raise PictureTimeOutOfRange(poster_time_s, duration)
        self.poster_time_s = poster_time_s
        self.expected_duration_s = duration
        self.interval_s = storyboard_interval_s(duration)
        self.candidate_every_s = max(1.0, duration / MAX_CANDIDATES)
        self.scaler = VideoReformatter()
        self.fps: Fraction | None = None
        self.storyboard: StoryboardBuilder | None = None
        self.next_tile = 0                     # frame index of the next storyboard tile
        self.next_candidate = 0                # frame index of the next poster candidate
        self.fade_probe_frames = 1
        self.score_size = None                 # set from the first frame: SCORE_WIDTH_PX wide, its aspect
        self.poster_index = 0                  # frame index of poster_time_s on the output grid
        self.waiting: tuple[int, av.VideoFrame, object] | None = None   # candidate awaiting its later picture
        self.best: tuple[float, int, av.VideoFrame, FrameScore] | None = None
        self.fallback: tuple[float, int, av.VideoFrame, FrameScore] | None = None   # best of the blank/fading
        self.chosen: tuple[int, av.VideoFrame] | None = None
        self.failure: BaseException | None = None

    def observe(self, frame: av.VideoFrame, index: int, fps: Fraction) -> None:
        """Called by transcode() with each output frame, in order. Never raises: a failure here must not
        cost the episode, so it is kept and reported by finish()."""
        if self.failure is not None:
            return
        try:
            if self.fps is None:
                self._start(frame, fps)
            self._observe(frame, index)
        except Exception as exc:  # noqa: BLE001 - kept for finish(); the transcode goes on
            log.warning("picture sampling stopped at frame %d: %s", index, exc)
            self.failure = exc

    def _start(self, frame: av.VideoFrame, fps: Fraction) -> None:
        self.fps = fps
        self.fade_probe_frames = max(1, round(FADE_PROBE_S * fps))
        self.storyboard = StoryboardBuilder(fitted_size(frame.width, frame.height, TILE_LONG_SIDE_PX),
                                            self.interval_s)
        self.score_size = scaled_size(frame.width, frame.height, SCORE_WIDTH_PX)
        if self.poster_time_s is not None:
            self.poster_index = round(Fraction(self.poster_time_s).limit_denominator(1_000_000) * fps)

    def _observe(self, frame: av.VideoFrame, index: int) -> None:
        fps = self.fps
        if index >= self.next_tile:
            self.storyboard.add(to_rgb(frame, self.storyboard.tile_size, self.scaler))
            self.next_tile = math.ceil((self.storyboard.tile_count * self.interval_s) * fps)
        if self.poster_time_s is not None:
            if index <= self.poster_index:      # the named frame, or the last one should the time be the end
                self.chosen = (index, frame)
            return
        if self.waiting is not None and index >= self.waiting[0] + self.fade_probe_frames:
            candidate_index, candidate, luma = self.waiting
            self.waiting = None
            self._rank(candidate_index, candidate, score_frame(luma, self._luma(frame)))
        if index >= self.next_candidate and self.waiting is None:
            self.waiting = (index, frame, self._luma(frame))
            self.next_candidate = index + max(1, round(self.candidate_every_s * fps))

    def _luma(self, frame: av.VideoFrame):
        size = self.score_size
        return self.scaler.reformat(frame, size.width, size.height, "gray", interpolation="AREA",
                                    threads=1).to_ndarray()

    def _rank(self, index: int, frame: av.VideoFrame, score: FrameScore) -> None:
        position = index / (self.expected_duration_s * self.fps) if self.expected_duration_s else 0.5
        weight = 1.0 if EDGE_FRACTION <= position <= 1 - EDGE_FRACTION else EDGE_WEIGHT
        value = score.value * weight
        if value > 0 and (self.best is None or value > self.best[0]):
            self.best = (value, index, frame, score)
        # should every candidate be blank or fading, the least bad: most contrast, then detail
        fallback_value = score.contrast * (1.0 + score.entropy_bits) * weight
        if self.fallback is None or fallback_value > self.fallback[0]:
            self.fallback = (fallback_value, index, frame, score)

    def finish(self, duration_s: Fraction, widths: Sequence[int] = POSTER_WIDTHS) -> EpisodePictures:
        """The poster and storyboard of the episode transcode() measured as `duration_s`.

        Raises PictureError when sampling failed or saw no frame, PictureTimeOutOfRange when the poster
        time given is past the decoded end.
        """
        if self.failure is not None:
            raise PictureError(f"sampling pictures failed: {self.failure}") from self.failure
        if self.fps is None or self.storyboard is None:
            raise PictureError("no frame was decoded, so there is no picture to take")
        if self.poster_time_s is not None:
            if self.poster_time_s > duration_s or self.chosen is None:
                raise PictureTimeOutOfRange(self.poster_time_s, float(duration_s))
            index, frame = self.chosen
            poster = render_poster(frame, time_s=Fraction(index) / self.fps, is_chosen=True, widths=widths)
        else:
            if self.waiting is not None:          # the episode ended before its fade probe
                candidate_index, candidate, luma = self.waiting
                self._rank(candidate_index, candidate, score_frame(luma))
            _, index, frame, score = self.best or self.fallback
            poster = render_poster(frame, time_s=Fraction(index) / self.fps, is_chosen=False, widths=widths,
                                   score=score)
        storyboard = self.storyboard.finish(duration_s)
        self.best = self.fallback = self.chosen = self.waiting = None     # drop the frames held
        return EpisodePictures(poster=poster, storyboard=storyboard)
