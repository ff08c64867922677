"""The JSON shapes of the catalog API (described in server/reference/openapi/): series, episodes, pages,
and the paywall. Times are unix seconds; prices integer cents with an ISO 4217 currency; durations seconds.

`poster_url` (public) and `storyboard_url` (a playback token needed: ?token= or Authorization) are paths
on this service, set once the episode has a live version (server/playback/pictures.py serves them); the
series cover's `poster_url` is its cover episode's. A version published before posters existed has none:
the poster path answers 404 until the episode is re-ingested or given a poster (`series poster`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from drm.catalog.catalog import Episode, Series
from drm.catalog.cursors import Page
from drm.catalog.library import Progress

PURCHASE_PATH = "/buy/{series_id}"
EPISODE_PATH = "/v1/series/{series_id}/episodes/{episode_id}"


def episode_urls(series_id: str, episode_id: str) -> dict[str, str]:
    """The public poster's and the gated storyboard's paths (server/playback/pictures.py serves them)."""
    episode = EPISODE_PATH.format(series_id=quote(series_id, safe=""), episode_id=quote(episode_id, safe=""))
    return {"poster_url": f"{episode}/poster.jpg", "storyboard_url": f"{episode}/storyboard.vtt"}


def series_json(series: Series, *, episode_count: int, total_duration_s: float, public_url: str) -> dict[str, Any]:
    return {
        "series_id": series.series_id,
        "creator_id": series.creator_id,
        "title": series.title,
        "description": series.description,
        "status": series.status,
        "is_for_sale": series.is_for_sale,
        "price_cents": series.price_cents,
        "currency": series.currency,
        "cover": {"episode_id": series.cover_episode_id,
                  "poster_url": episode_urls(series.series_id, series.cover_episode_id)["poster_url"]}
        if series.cover_episode_id else None,
        "episode_count": episode_count,
        "total_duration_s": round(total_duration_s, 3),
        "purchase_url": purchase_url(public_url, series.series_id),
        "created_at": series.created_at,
        "updated_at": series.updated_at,
        "published_at": series.published_at,
    }


def episode_json(episode: Episode, *, full: bool, progress: Progress | None = None) -> dict[str, Any]:
    """An episode; `full` for its creator and the operator (processing detail and errors), else as viewers
    see it (the same fields, those null)."""
    live = episode.published_version is not None
    shown: dict[str, Any] = {
        "series_id": episode.series_id,
        "episode_id": episode.episode_id,
        "position": episode.position,
        "title": episode.title,
        "description": episode.description,
        "status": episode.status,
        "is_free_preview": episode.is_free_preview,
        "duration_s": episode.duration_s if live else None,
        "renditions": list(episode.renditions),
        "poster_url": None,
        "storyboard_url": None,
        "version": episode.published_version,
        "processing": None,
        "error": None,
        "created_at": episode.created_at,
        "updated_at": episode.updated_at,
        "ready_at": episode.ready_at,
        "unpublished_at": episode.unpublished_at,
    }
    if live:
        shown.update(episode_urls(episode.series_id, episode.episode_id))
    if full and episode.stage not in (None, "failed"):
        shown["processing"] = {"stage": episode.stage, "percent": episode.stage_percent, "job_id": episode.job_id}
    if full and episode.error:
        shown["error"] = episode.error
    if progress is not None:
        shown["progress"] = progress_json(progress)
    return shown


def progress_json(progress: Progress) -> dict[str, Any]:
    return {"position_s": progress.position_s, "is_completed": progress.is_completed,
            "updated_at": progress.updated_at}


def page_json(name: str, page: Page, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {name: items, "next_cursor": page.next_cursor}


def purchase_url(public_url: str, series_id: str, ref: str | None = None) -> str:
    """The deep link to a series' paywall, for a creator's videos and profile (PURCHASE_PATH)."""
    url = public_url + PURCHASE_PATH.format(series_id=series_id)
    return f"{url}?ref={quote(ref, safe='')}" if ref else url


def totals(episodes: list[Episode]) -> tuple[int, float]:
    """(how many, total seconds) of the episodes viewers may watch."""
    watchable = [episode for episode in episodes if episode.is_watchable]
    return len(watchable), sum(episode.duration_s for episode in watchable)
