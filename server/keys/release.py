"""release_key(): the paywall. A key leaves only for a valid token whose viewer bought the series,
or, for an episode the creator marked as a free preview, for any valid token for its series; never for a
deleted episode, and for an unpublished one only to the operator's test viewers (SERIES_TEST_VIEWER_IDS)."""

from __future__ import annotations

import logging

from drm.catalog import key_needs_entitlement
from drm.errors import WrongSeries
from server.services import Services

log = logging.getLogger(__name__)


def release_key(services: Services, token: str | None, key_id: str) -> bytes:
    """The 16 key bytes, or raise TokenInvalid (401), WrongSeries/NotEntitled/EpisodeUnpublished (403),
    UnknownKey (404), EpisodeDeleted (410).

    The token is checked before the key id so that key ids cannot be probed without one. The
    entitlement answer may be up to SERIES_ENTITLEMENT_CACHE_TTL_S (<= 5 s) old: that bounds how
    long a refunded viewer can still fetch keys.
    """
    viewer = services.tokens.verify(token)
    key = services.keystore.get(key_id)
    if viewer.series_id != key.series_id:
        raise WrongSeries(viewer.series_id, key.series_id)
    # one query of the episode's facts, then the catalog's pure rule (also applied from memory: memory.py)
    facts = services.catalog.episode_facts(key.series_id, key.episode_id)
    if not key_needs_entitlement(facts, key.series_id, key.episode_id, viewer.viewer_id,
                                 services.settings.catalog.test_viewer_ids):
        log.info("preview key %s released to viewer %s (session %s)", key_id, viewer.viewer_id, viewer.session_id)
        return key.key
    services.entitlement_cache.require(viewer.viewer_id, key.series_id)
    log.info("key %s released to viewer %s (session %s)", key_id, viewer.viewer_id, viewer.session_id)
    return key.key
