"""Settings of posters, thumbnails, storyboards and captions (server/publishing/pictures.py, the gated
picture and caption routes in server/playback/, the creator's pictures API in server/catalog/);
pictures_settings() reads them from the environment for Settings.from_env()."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.captions.tracks import CaptionRules
from pipeline.pictures.thumbnail import MAX_WIDTH_PX, MIN_WIDTH_PX
from server.config.environment import PREFIX, Environment, SettingsError

DEFAULT_THUMBNAIL_WIDTHS = (160, 320, 480, 640, 960, 1280)


@dataclass(frozen=True, slots=True, kw_only=True)
class PictureSettings:
    # a thumbnail asked at any width is drawn at the smallest of these at or above it (the largest if none
    # is): the object-store cache holds at most frames x len(widths) pictures per media version
    thumbnail_widths: tuple[int, ...] = DEFAULT_THUMBNAIL_WIDTHS
    # thumbnails decoded at once per process (each decrypts and decodes up to one segment, ~0.1 s of CPU):
    # a scrubbing player or a scraper cannot take every core from the key server; past it, 503 + Retry-After
    thumbnail_decodes: int = 2
    # how long browsers and CDNs may keep a public poster (its URL names no version: a new poster must show)
    poster_max_age_s: int = 300
    caption_rules: CaptionRules = field(default_factory=CaptionRules)


def pictures_settings(env: Environment) -> PictureSettings:
    """SERIES_THUMBNAIL_WIDTHS, SERIES_THUMBNAIL_DECODES, SERIES_POSTER_MAX_AGE_S, and the caption limits
    SERIES_CAPTION_MAX_BYTES, SERIES_CAPTION_MAX_LINE_CHARS, SERIES_CAPTION_MAX_CUE_S."""
    raw = env.str("THUMBNAIL_WIDTHS", ",".join(map(str, DEFAULT_THUMBNAIL_WIDTHS)))
    try:
        widths = tuple(sorted({int(part) for part in raw.split(",") if part.strip()}))
    except ValueError:
        raise SettingsError(f"{PREFIX}THUMBNAIL_WIDTHS has value {raw[:60]!r}; expected widths in pixels such as "
                            "160,320,640") from None
    if not widths or not all(MIN_WIDTH_PX <= width <= MAX_WIDTH_PX for width in widths):
        raise SettingsError(f"{PREFIX}THUMBNAIL_WIDTHS has value {raw[:60]!r}; expected one or more widths "
                            f"from {MIN_WIDTH_PX} to {MAX_WIDTH_PX} px")
    defaults = CaptionRules()
    rules = CaptionRules(
        max_size_bytes=env.int("CAPTION_MAX_BYTES", defaults.max_size_bytes),
        max_line_chars=env.int("CAPTION_MAX_LINE_CHARS", defaults.max_line_chars),
        max_cue_s=env.float("CAPTION_MAX_CUE_S", defaults.max_cue_s, minimum=1.0))
    if rules.max_size_bytes < 1024 or rules.max_line_chars < 20:
        raise SettingsError(f"{PREFIX}CAPTION_MAX_BYTES must be at least 1024 and {PREFIX}CAPTION_MAX_LINE_CHARS "
                            "at least 20 (a caption line of 32-42 characters is the broadcast norm)")
    return PictureSettings(thumbnail_widths=widths, thumbnail_decodes=env.positive_int("THUMBNAIL_DECODES", 2),
                           poster_max_age_s=env.int("POSTER_MAX_AGE_S", 300), caption_rules=rules)
