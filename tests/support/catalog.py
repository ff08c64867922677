"""Catalog set-up for tests: an eligible creator's facts and a series ready to take episodes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from drm.catalog.catalog import Series
from drm.catalog.eligibility import CreatorProfile
from server.catalog.api import create_series
from server.config import Settings
from server.services import Services

TODAY = dt.datetime.now(dt.timezone.utc).date()


def eligible_facts(**overrides: Any) -> dict[str, Any]:
    """Profile facts (JSON shape) meeting every rule with room to spare; override one to break it."""
    facts = {
        "birth_date": "1990-05-17",
        "country": "US",
        "account_created_on": (TODAY - dt.timedelta(days=400)).isoformat(),
        "account_type": "personal",
        "is_private": False,
        "public_posts_last_30_days": 9,
        "followers": 52_000,
        "views_last_30_days": 120_000,
        "has_original_content": True,
        "is_in_good_standing": True,
    }
    facts.update(overrides)
    return facts


def add_series(services: Services, series_id: str, *, creator_id: str = "creator-1", price_cents: int = 499) -> Series:
    """Record an eligible creator (if new) and create the series."""
    if services.creators.get(creator_id) is None:
        services.creators.record(CreatorProfile.from_json(creator_id, eligible_facts()))
    return create_series(services, creator_id=creator_id, series_id=series_id, title=f"Series {series_id}",
                         price_cents=price_cents, currency="USD")


def add_series_for(settings: Settings, series_id: str, **kwargs: Any) -> Series:
    """add_series through a Services of its own (for tests that then run the CLI on the same files)."""
    services = Services.open(settings)
    try:
        return add_series(services, series_id, **kwargs)
    finally:
        services.close()
