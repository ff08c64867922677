"""The catalog: series (owner, title, price) and their episodes (duration, free-preview flag).

Product rules live here so every entry point (HTTP, CLI, ingest) enforces the same ones: a price
of $1..$190 in integer cents, at most 80 episodes per series, each 30 s to 20 min. Entitlements are
per series, so a purchase covers episodes added later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .database import Database, Row
from .errors import (
    EpisodeLimitReached,
    InvalidField,
    SeriesExists,
    UnknownEpisode,
    UnknownSeries,
)
from .ids import check_id, field_id

log = logging.getLogger(__name__)

MIN_PRICE_CENTS, MAX_PRICE_CENTS = 100, 19_000
MAX_EPISODES = 80
MIN_EPISODE_S, MAX_EPISODE_S = 30.0, 20 * 60.0   # the product's bounds; deployments may configure others
DURATION_SLACK_S = 0.001
MAX_TITLE_CHARS = 200
# Currencies with two minor units only: "cents" means 1/100 of the unit (not so for JPY or KRW).
CURRENCIES = frozenset({"USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK"})

_SERIES_COLUMNS = "series_id, creator_id, title, price_cents, currency, created_at, updated_at"
_EPISODE_COLUMNS = (
    "series_id, episode_id, duration_s, is_free_preview, published_version, created_at, updated_at"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    series_id: str
    creator_id: str
    title: str
    price_cents: int  # 100..19000
    currency: str  # ISO 4217, one of CURRENCIES
    created_at: float  # unix seconds
    updated_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Episode:
    series_id: str
    episode_id: str
    duration_s: float
    is_free_preview: bool  # keys released to any viewer holding a token for the series
    published_version: int | None  # None while its first ingest is still running
    created_at: float
    updated_at: float

    @property
    def is_published(self) -> bool:
        return self.published_version is not None


class Catalog(Protocol):
    """What the service needs from a catalog; SqlCatalog keeps it in the drm database (either engine)."""

    def create_series(
        self, *, series_id: str, creator_id: str, title: str, price_cents: int, currency: str
    ) -> Series: ...
    def update_series(
        self, series_id: str, *, title: str | None = None, price_cents: int | None = None,
        currency: str | None = None,
    ) -> Series: ...
    def get_series(self, series_id: str) -> Series: ...
    def list_series(self, creator_id: str | None = None) -> list[Series]: ...
    def reserve_episode(
        self, series_id: str, episode_id: str, *, duration_s: float, is_free_preview: bool | None = None
    ) -> bool: ...
    def mark_published(
        self, series_id: str, episode_id: str, *, version: int, duration_s: float,
        is_free_preview: bool | None = None,
    ) -> Episode: ...
    def release_episode(self, series_id: str, episode_id: str) -> None: ...
    def set_free_preview(self, series_id: str, episode_id: str, is_free_preview: bool) -> Episode: ...
    def get_episode(self, series_id: str, episode_id: str) -> Episode: ...
    def list_episodes(self, series_id: str, *, published_only: bool = True) -> list[Episode]: ...
    def is_free_preview(self, series_id: str, episode_id: str) -> bool: ...

    def free_preview_episodes(self) -> frozenset[tuple[str, str]]: ...


def check_title(title: object) -> str:
    """The title stripped, or InvalidField: a non-empty string of at most 200 printable characters."""
    if not isinstance(title, str):
        raise InvalidField("title", f"expected a string, got {type(title).__name__}")
    stripped = title.strip()
    if not stripped or len(stripped) > MAX_TITLE_CHARS:
        raise InvalidField("title", f"must be 1 to {MAX_TITLE_CHARS} characters")
    if not stripped.isprintable():
        raise InvalidField("title", "must not contain control characters")
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


def check_duration(duration_s: object, bounds_s: tuple[float, float] = (MIN_EPISODE_S, MAX_EPISODE_S)) -> float:
    """The episode duration in seconds, or InvalidField unless within `bounds_s` (30 s..20 min by default).

    Inclusive, with the validator's millisecond of slack for time-base rounding, so an episode the
    validator accepted is never refused here.
    """
    low, high = bounds_s
    if type(duration_s) not in (int, float) or not low - DURATION_SLACK_S <= duration_s <= high + DURATION_SLACK_S:
        raise InvalidField("duration_s", f"{duration_s!r} s is outside {low:g}..{high:g} s")
    return float(duration_s)


class SqlCatalog:
    """The catalog in the drm database, SQLite or PostgreSQL. Thread-safe; synchronous."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time, *,
                 episode_bounds_s: tuple[float, float] = (MIN_EPISODE_S, MAX_EPISODE_S)) -> None:
        self._db = db
        self._clock = clock
        self._episode_bounds_s = episode_bounds_s

    def create_series(
        self, *, series_id: str, creator_id: str, title: str, price_cents: int, currency: str
    ) -> Series:
        """Create a series; raises InvalidField for a bad field, SeriesExists if the id is taken."""
        field_id("series_id", series_id)
        field_id("creator_id", creator_id)
        values = (check_title(title), check_price(price_cents), check_currency(currency))
        now = self._clock()
        with self._db.transaction() as tx:
            inserted = tx.execute(
                f"INSERT INTO series ({_SERIES_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (series_id) DO NOTHING",
                (series_id, creator_id, *values, now, now),
            ).rowcount
        if not inserted:
            raise SeriesExists(series_id)
        log.info("series %s created by %s", series_id, creator_id)
        return self.get_series(series_id)

    def update_series(
        self, series_id: str, *, title: str | None = None, price_cents: int | None = None,
        currency: str | None = None,
    ) -> Series:
        """Change the given fields (None keeps one); all are checked before anything is written."""
        changes = {}
        if title is not None:
            changes["title"] = check_title(title)
        if price_cents is not None:
            changes["price_cents"] = check_price(price_cents)
        if currency is not None:
            changes["currency"] = check_currency(currency)
        self.get_series(series_id)
        if changes:
            assignments = ", ".join(f"{column} = ?" for column in changes)
            with self._db.transaction() as tx:
                tx.execute(
                    f"UPDATE series SET {assignments}, updated_at = ? WHERE series_id = ?",
                    (*changes.values(), self._clock(), series_id),
                )
        return self.get_series(series_id)

    def get_series(self, series_id: str) -> Series:
        """The series, or UnknownSeries (also for a malformed id)."""
        rows = self._db.query(f"SELECT {_SERIES_COLUMNS} FROM series WHERE series_id = ?", (series_id,))
        if not rows:
            raise UnknownSeries(series_id)
        return Series(**dict(rows[0]))

    def list_series(self, creator_id: str | None = None) -> list[Series]:
        """Every series, or one creator's, by series_id."""
        if creator_id is None:
            rows = self._db.query(f"SELECT {_SERIES_COLUMNS} FROM series ORDER BY series_id")
        else:
            rows = self._db.query(
                f"SELECT {_SERIES_COLUMNS} FROM series WHERE creator_id = ? ORDER BY series_id",
                (creator_id,),
            )
        return [Series(**dict(row)) for row in rows]

    def reserve_episode(
        self, series_id: str, episode_id: str, *, duration_s: float, is_free_preview: bool | None = None
    ) -> bool:
        """Hold a slot for an episode about to be ingested; True if the episode is new.

        Called before the transcode so that an unknown series (UnknownSeries), an 81st episode
        (EpisodeLimitReached) or a bad duration (InvalidField) publishes nothing. Re-ingesting an
        existing episode is a new version, not a new episode: it takes no new slot, and
        ``is_free_preview`` applies to a new episode only (mark_published sets it for a new version). The count
        and the insert share one write transaction holding the series row, so two uploads cannot both
        take the 80th slot.
        """
        check_id("episode_id", episode_id)
        check_duration(duration_s, self._episode_bounds_s)
        with self._db.transaction() as tx:
            if tx.fetch_one(f"SELECT 1 FROM series WHERE series_id = ?{tx.dialect.for_update}", (series_id,)) is None:
                raise UnknownSeries(series_id)
            if tx.fetch_one("SELECT 1 FROM episodes WHERE series_id = ? AND episode_id = ?", (series_id, episode_id)):
                return False  # a new version; its flag changes in mark_published, once it is live
            (count,) = tx.fetch_one("SELECT COUNT(*) FROM episodes WHERE series_id = ?", (series_id,))
            if count >= MAX_EPISODES:
                raise EpisodeLimitReached(series_id, MAX_EPISODES)
            now = self._clock()
            tx.execute(
                f"INSERT INTO episodes ({_EPISODE_COLUMNS}) VALUES (?, ?, ?, ?, NULL, ?, ?)",
                (series_id, episode_id, float(duration_s), int(bool(is_free_preview)), now, now),
            )
        return True

    def mark_published(
        self, series_id: str, episode_id: str, *, version: int, duration_s: float,
        is_free_preview: bool | None = None,
    ) -> Episode:
        """Record that ``version`` of a reserved episode is live, with its decoded duration.

        ``is_free_preview`` (None keeps it) changes the flag only now, so a failed re-ingest changes nothing.
        """
        check_duration(duration_s, self._episode_bounds_s)
        with self._db.transaction() as tx:
            changed = tx.execute(
                "UPDATE episodes SET published_version = ?, duration_s = ?, updated_at = ?,"
                " is_free_preview = COALESCE(?, is_free_preview) WHERE series_id = ? AND episode_id = ?",
                (version, float(duration_s), self._clock(),
                 None if is_free_preview is None else int(is_free_preview), series_id, episode_id),
            ).rowcount
        if not changed:
            raise UnknownEpisode(series_id, episode_id)
        log.info("catalog: %s/%s is live as v%d", series_id, episode_id, version)
        return self.get_episode(series_id, episode_id)

    def release_episode(self, series_id: str, episode_id: str) -> None:
        """Give back the slot of a reservation whose first ingest failed; published episodes stay."""
        with self._db.transaction() as tx:
            tx.execute(
                "DELETE FROM episodes WHERE series_id = ? AND episode_id = ? AND published_version IS NULL",
                (series_id, episode_id),
            )

    def set_free_preview(self, series_id: str, episode_id: str, is_free_preview: bool) -> Episode:
        """Mark or unmark an episode as a free preview; raises UnknownEpisode, InvalidField."""
        if type(is_free_preview) is not bool:
            raise InvalidField("is_free_preview", f"expected true or false, got {is_free_preview!r}")
        with self._db.transaction() as tx:
            changed = tx.execute(
                "UPDATE episodes SET is_free_preview = ?, updated_at = ? WHERE series_id = ? AND episode_id = ?",
                (int(is_free_preview), self._clock(), series_id, episode_id),
            ).rowcount
        if not changed:
            raise UnknownEpisode(series_id, episode_id)
        return self.get_episode(series_id, episode_id)

    def get_episode(self, series_id: str, episode_id: str) -> Episode:
        """The episode (published or reserved), or UnknownEpisode."""
        rows = self._db.query(
            f"SELECT {_EPISODE_COLUMNS} FROM episodes WHERE series_id = ? AND episode_id = ?",
            (series_id, episode_id),
        )
        if not rows:
            raise UnknownEpisode(series_id, episode_id)
        return _episode(rows[0])

    def list_episodes(self, series_id: str, *, published_only: bool = True) -> list[Episode]:
        """A series' episodes in the order they were added; raises UnknownSeries."""
        self.get_series(series_id)
        where = " AND published_version IS NOT NULL" if published_only else ""
        rows = self._db.query(
            f"SELECT {_EPISODE_COLUMNS} FROM episodes WHERE series_id = ?{where} ORDER BY created_at, episode_id",
            (series_id,),
        )
        return [_episode(row) for row in rows]

    def is_free_preview(self, series_id: str, episode_id: str) -> bool:
        """Whether the episode is a free preview; False for an episode the catalog does not know."""
        rows = self._db.query(
            "SELECT is_free_preview FROM episodes WHERE series_id = ? AND episode_id = ?",
            (series_id, episode_id),
        )
        return bool(rows and rows[0]["is_free_preview"])

    def free_preview_episodes(self) -> frozenset[tuple[str, str]]:
        """Every (series_id, episode_id) marked as a free preview: the key server keeps them in memory."""
        rows = self._db.query("SELECT series_id, episode_id FROM episodes WHERE is_free_preview = 1")
        return frozenset((row["series_id"], row["episode_id"]) for row in rows)


def _episode(row: Row) -> Episode:
    values = dict(row)
    values["is_free_preview"] = bool(values["is_free_preview"])
    return Episode(**values)


SqliteCatalog = SqlCatalog   # its name from when only SQLite held it; server/ still uses it
