"""The catalog's records and rules: what a series and an episode are, the checks every field passes on
every path (HTTP, CLI, ingest), the statuses they go through, and the rule that decides whether an
episode's keys may be released (a pure function, so the key path can apply it from memory too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from drm.errors import EpisodeDeleted, EpisodeUnpublished, InvalidField
from drm.storage.database import Row

MIN_PRICE_CENTS, MAX_PRICE_CENTS = 100, 19_000
MAX_EPISODES = 80
MIN_EPISODE_S, MAX_EPISODE_S = 30.0, 20 * 60.0   # the product's bounds; deployments may configure others
DURATION_SLACK_S = 0.001
MAX_TITLE_CHARS = 200
MAX_DESCRIPTION_CHARS = 5000
# Currencies with two minor units only: "cents" means 1/100 of the unit (not so for JPY or KRW).
CURRENCIES = frozenset({"USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK"})

# Series statuses. Only a published series is sold and listed to everyone; buyers keep access in all but
# deleted (a series with buyers is archived, never deleted).
DRAFT, PUBLISHED, UNPUBLISHED, ARCHIVED, DELETED = "draft", "published", "unpublished", "archived", "deleted"
SERIES_STATUSES = (DRAFT, PUBLISHED, UNPUBLISHED, ARCHIVED, DELETED)

# Episode statuses, as the API shows them (like a hosted video service's asset).
UPLOADING, PROCESSING, READY, ERRORED = "uploading", "processing", "ready", "errored"
EPISODE_STATUSES = (UPLOADING, PROCESSING, READY, ERRORED, UNPUBLISHED)
# Stages of the work in flight on an episode (`stage`): the ingest job's, "uploading" before one exists,
# "failed" after one failed.
QUEUED, FAILED = "queued", "failed"
RUNNING_STAGES = ("validating", "transcoding", "packaging", "publishing")
STAGES = (UPLOADING, QUEUED, *RUNNING_STAGES, FAILED)

_SERIES_COLUMNS = ("series_id, creator_id, title, description, price_cents, currency, status, cover_episode_id,"
                   " created_at, updated_at, published_at, deleted_at, order_version")
_EPISODE_COLUMNS = ("series_id, episode_id, position, title, description, duration_s, is_free_preview,"
                    " published_version, renditions, created_at, updated_at, ready_at, unpublished_at, deleted_at,"
                    " job_id, stage, stage_percent, error")


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    series_id: str
    creator_id: str
    title: str
    price_cents: int  # 100..19000
    currency: str  # ISO 4217, one of CURRENCIES
    created_at: float  # unix seconds
    updated_at: float
    description: str = ""
    status: str = PUBLISHED  # one of SERIES_STATUSES
    cover_episode_id: str | None = None  # the episode whose poster is the series' cover
    published_at: float | None = None  # when it was last published
    deleted_at: float | None = None
    order_version: int = 0  # moves whenever existing episodes change places (page cursors check it)

    @property
    def is_for_sale(self) -> bool:
        return self.status == PUBLISHED


@dataclass(frozen=True, slots=True, kw_only=True)
class Episode:
    series_id: str
    episode_id: str
    duration_s: float  # of the live version; 0 until one is live
    is_free_preview: bool  # keys released to any viewer holding a token for the series
    published_version: int | None  # None until its first ingest is live
    created_at: float
    updated_at: float
    position: int | None = None  # 1..80 in the series' order; None once deleted
    title: str = ""
    description: str = ""
    renditions: tuple[str, ...] = ()  # of the live version, e.g. ("720p", "360p")
    ready_at: float | None = None  # when the live version went live
    unpublished_at: float | None = None
    deleted_at: float | None = None
    job_id: str | None = None  # the latest ingest job submitted for it
    stage: str | None = None  # work in flight (STAGES), None when there is none
    stage_percent: float = 0.0
    error: dict[str, Any] | None = None  # the last failed ingest: code, message, reasons

    @property
    def is_published(self) -> bool:
        """Whether a version is live (it may still be unpublished by its creator)."""
        return self.published_version is not None

    @property
    def status(self) -> str:
        """uploading | processing | ready | errored | unpublished (EPISODE_STATUSES)."""
        if self.unpublished_at is not None:
            return UNPUBLISHED
        if self.published_version is not None:
            return READY
        if self.stage == FAILED:
            return ERRORED
        if self.stage in (QUEUED, *RUNNING_STAGES):
            return PROCESSING
        return UPLOADING

    @property
    def is_watchable(self) -> bool:
        """Live and not unpublished or deleted: what viewers see and may play."""
        return self.published_version is not None and self.unpublished_at is None and self.deleted_at is None


@dataclass(frozen=True, slots=True)
class EpisodeFacts:
    """What the key path needs to know of an episode, read in one query (or held in memory)."""

    is_free_preview: bool = False
    is_unpublished: bool = False
    is_deleted: bool = False


ORDINARY = EpisodeFacts()    # an episode with no special rule (also one the catalog does not know)


def key_needs_entitlement(facts: EpisodeFacts, series_id: str, episode_id: str, viewer_id: str,
                          test_viewer_ids: frozenset[str]) -> bool:
    """Whether releasing a key of this episode to `viewer_id` still needs an entitlement to the series.

    False for a free preview. Raises EpisodeDeleted for a deleted episode (no one gets its keys) and
    EpisodeUnpublished for an unpublished one unless the viewer is one of the operator's test viewers
    (SERIES_TEST_VIEWER_IDS), who still need what anyone needs (an entitlement or a free preview).
    """
    if facts.is_deleted:
        raise EpisodeDeleted(series_id, episode_id)
    if facts.is_unpublished and viewer_id not in test_viewer_ids:
        raise EpisodeUnpublished(series_id, episode_id)
    return not facts.is_free_preview


def check_title(title: object, field: str = "title") -> str:
    """The title stripped, or InvalidField: a non-empty string of at most 200 printable characters."""
    if not isinstance(title, str):
        raise InvalidField(field, f"expected a string, got {type(title).__name__}")
    stripped = title.strip()
    if not stripped or len(stripped) > MAX_TITLE_CHARS:
        raise InvalidField(field, f"must be 1 to {MAX_TITLE_CHARS} characters")
    if not stripped.isprintable():
        raise InvalidField(field, "must not contain control characters")
    return stripped


def check_description(description: object, field: str = "description") -> str:
    """Plain text of at most 5000 characters (line breaks and tabs allowed, other control characters not)."""
    if not isinstance(description, str):
        raise InvalidField(field, f"expected a string, got {type(description).__name__}")
    stripped = description.strip()
    if len(stripped) > MAX_DESCRIPTION_CHARS:
        raise InvalidField(field, f"must be at most {MAX_DESCRIPTION_CHARS} characters")
    if not stripped.replace("\n", "").replace("\t", "").isprintable():
        raise InvalidField(field, "must not contain control characters other than line breaks and tabs")
    return stripped


def check_price(price_cents: object) -> int:
    """The price in cents, or InvalidField unless an integer in 100..19000 ($1 to $190)."""
    if type(price_cents) is not int:
        raise InvalidField("price_cents", f"expected an integer number of cents, got {price_cents!r}")
    if not MIN_PRICE_CENTS <= price_cents <= MAX_PRICE_CENTS:
        raise InvalidField(
            "price_cents",
            f"{price_cents} is outside {MIN_PRICE_CENTS}..{MAX_PRICE_CENTS} (1.00 to 190.00)",
        )
    return price_cents


def check_currency(currency: object) -> str:
    """The ISO 4217 code, or InvalidField unless it is one of CURRENCIES."""
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise InvalidField("currency", f"{currency!r} is not one of {', '.join(sorted(CURRENCIES))}")
    return currency


def check_position(position: object, count: int) -> int:
    """A position 1..count (the places a series of `count` episodes has), or InvalidField."""
    if type(position) is not int or not 1 <= position <= count:
        raise InvalidField("position", f"expected an integer from 1 to {count}, got {position!r}")
    return position


def check_duration(duration_s: object, bounds_s: tuple[float, float] = (MIN_EPISODE_S, MAX_EPISODE_S)) -> float:
    """The episode duration in seconds, or InvalidField unless within `bounds_s` (30 s..20 min by default).

    Inclusive, with the validator's millisecond of slack for time-base rounding, so an episode the
    validator accepted is never refused here.
    """
    low, high = bounds_s
    if type(duration_s) not in (int, float) or not low - DURATION_SLACK_S <= duration_s <= high + DURATION_SLACK_S:
        raise InvalidField("duration_s", f"{duration_s!r} s is outside {low:g}..{high:g} s")
    return float(duration_s)


def series_from_row(row: Row) -> Series:
    return Series(**dict(row))


def episode_from_row(row: Row) -> Episode:
    values = dict(row)
    values["is_free_preview"] = bool(values["is_free_preview"])
    values["renditions"] = tuple(json.loads(values["renditions"] or "[]"))
    values["error"] = json.loads(values["error"]) if values["error"] else None
    return Episode(**values)
