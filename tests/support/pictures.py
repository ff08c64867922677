"""One published episode with pictures and an embedded subtitle stream, for the picture and caption
tests: series `pics`, episode `1`, 12 s of 320x180 at 10 fps whose first second is black, an English
mov_text stream; the buyer `alice`, the stranger `bob`, the creator `creator-1`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from pipeline.pictures.still_image import decode_image
from server.config import Settings
from server.publishing.episode import ingest_episode
from server.services import Services
from tests.conftest import settings_env
from tests.support.catalog import add_series
from tests.support.media import clip

SERIES, EPISODE = "pics", "1"
BUYER, STRANGER, CREATOR = "alice", "bob", "creator-1"
FPS, DURATION_S = 10, 12.0
SUBTITLES = ((1.0, 3.0, "Hello there"), (4.0, 6.5, "Tie the bowline"), (8.0, 10.0, "Pull it tight"))
MATCH_SIZE = (64, 36)
EPISODE_PATH = f"/v1/series/{SERIES}/episodes/{EPISODE}"


@dataclass
class PictureWorld:
    env: dict[str, str]
    source: Path
    report: dict


def publish_world(directory: Path, s3_store, media_dir: Path, **overrides: str) -> PictureWorld:
    env = settings_env(directory, s3_store, SERIES_MIN_DURATION_S="5", SERIES_LADDER_MAX_RENDITIONS="2", **overrides)
    source = clip(media_dir, "pictures-captioned.mp4", duration_s=DURATION_S, width=320, height=180, fps=FPS,
                  black_until_s=1.0, subtitles=SUBTITLES)
    reports = []
    with Services.open(Settings.from_env(env)) as services:
        services.store.ensure_bucket()
        add_series(services, SERIES, creator_id=CREATOR)
        ingest_episode(source, series_id=SERIES, episode_id=EPISODE, settings=services.settings,
                       store=services.store, keystore=services.keystore, catalog=services.catalog,
                       on_report=reports.append)
        services.entitlements.grant(BUYER, SERIES)
    return PictureWorld(env=env, source=source, report=reports[0])


def source_frames(source: Path) -> list[np.ndarray]:
    """Every source frame, shrunk, as float arrays: what a thumbnail is matched against."""
    with av.open(str(source)) as container:
        return [frame.reformat(*MATCH_SIZE, "rgb24").to_ndarray().astype(np.float32)
                for frame in container.decode(video=0)]


def shown_index(data: bytes, frames: list[np.ndarray]) -> int:
    """The source frame an image shows: the nearest by mean absolute difference."""
    picture = av.VideoFrame.from_ndarray(decode_image(data), format="rgb24").reformat(*MATCH_SIZE, "rgb24")
    shrunk = picture.to_ndarray().astype(np.float32)
    return int(np.argmin([np.abs(shrunk - frame).mean() for frame in frames]))
