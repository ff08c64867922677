"""check_admission(): whether a series may take an episode now, by every series rule.

Called at the ingest API's boundary, before a job is queued (so an uploader hears 409 at once rather
than from a failed job minutes later), and again by ingest_episode() itself before transcoding: the
series may have filled up, or its creator lost eligibility, while the job waited. The count is only
read here; reserve_episode() takes the slot atomically when the job runs.
"""

from __future__ import annotations

from drm.catalog.catalog import ARCHIVED, MAX_EPISODES, Catalog, Series, check_currency, check_price
from drm.catalog.eligibility import CreatorRegistry
from drm.errors import EpisodeDeleted, EpisodeLimitReached, InvalidField, SeriesStateConflict, UnknownEpisode
from server.config.watermark import WatermarkUnavailable


class SeriesNotSellable(Exception):
    """The series' price no longer meets the catalog's rules (they changed since it was created)."""

    code = "series_price_invalid"
    http_status = 409

    def __init__(self, series_id: str, detail: str) -> None:
        super().__init__(f"series {series_id} cannot take episodes: its {detail}; the creator must set a valid "
                         "price first (PATCH /v1/series/{series_id})")
        self.series_id, self.detail = series_id, detail

    def __reduce__(self):
        return type(self), (self.series_id, self.detail)


def check_admission(catalog: Catalog, creators: CreatorRegistry | None, series_id: str, episode_id: str, *,
                    can_watermark: bool) -> Series:
    """The series, if it may take episode `episode_id` now. Raises UnknownSeries (404), CreatorNotEligible
    (403: its creator is no longer eligible or approved), SeriesNotSellable (409), WatermarkUnavailable
    (503: a watermarked series, and `can_watermark` is false: the service has no watermark secret, so an
    upload taken now could only fail in its job), EpisodeLimitReached
    (409: a new episode beyond the 80th; a new version of an existing episode takes no slot),
    SeriesStateConflict (409: an archived series takes no new episodes) and EpisodeDeleted (410: the id
    of a deleted episode, until gc has removed it)."""
    series = catalog.get_series(series_id)
    if creators is not None:
        creators.require_may_publish(series.creator_id)
    try:
        check_price(series.price_cents)
        check_currency(series.currency)
    except InvalidField as exc:
        raise SeriesNotSellable(series_id, str(exc)) from None
    if series.watermark and not can_watermark:
        raise WatermarkUnavailable(series_id)
    try:
        episode = catalog.get_episode(series_id, episode_id, include_deleted=True)
    except UnknownEpisode:
        pass
    else:
        if episode.deleted_at is not None:
            raise EpisodeDeleted(series_id, episode_id)
        return series                   # a new version of an existing episode
    if series.status == ARCHIVED:
        raise SeriesStateConflict("series_archived", f"series {series_id} is archived and takes no new episodes; "
                                  "its buyers keep the ones it has")
    if len(catalog.list_episodes(series_id, published_only=False)) >= MAX_EPISODES:
        raise EpisodeLimitReached(series_id, MAX_EPISODES)
    return series
