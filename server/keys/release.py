"""release_key(): the paywall. A key leaves only for a valid token whose viewer bought the series,
or, for an episode the creator marked as a free preview, for any valid token for its series."""

from __future__ import annotations

import logging

from drm.errors import WrongSeries
from server.services import Services

log = logging.getLogger(__name__)


def release_key(services: Services, token: str | None, key_id: str) -> bytes:
    """The 16 key bytes, or raise TokenInvalid (401), WrongSeries/NotEntitled (403), UnknownKey (404).

    The token is checked before the key id so that key ids cannot be probed without one. The
    entitlement answer may be up to SERIES_ENTITLEMENT_CACHE_TTL_S (<= 5 s) old: that bounds how
    long a refunded viewer can still fetch keys.
    """
    viewer = services.tokens.verify(token)
    key = services.keystore.get(key_id)
    if viewer.series_id != key.series_id:
        raise WrongSeries(viewer.series_id, key.series_id)
    if services.catalog.is_free_preview(key.series_id, key.episode_id):
        log.info("preview key %s released to viewer %s (session %s)", key_id, viewer.viewer_id, viewer.session_id)
        return key.key
    services.entitlement_cache.require(viewer.viewer_id, key.series_id)
    log.info("key %s released to viewer %s (session %s)", key_id, viewer.viewer_id, viewer.session_id)
    return key.key
