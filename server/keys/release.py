"""release_key(): the paywall. A content key leaves only for a valid playback token for the key's series
whose viewer may watch the key's episode (server/access/: bought the series, or a free preview)."""

from __future__ import annotations

import logging

from drm.access.tokens import PlaybackToken
from drm.errors import WrongSeries
from drm.keystore import KeyStore
from server.access import Access

log = logging.getLogger(__name__)


async def release_key(access: Access, keystore: KeyStore, viewer: PlaybackToken, key_id: str) -> bytes:
    """The 16 key bytes for `viewer` (a verified token), or raise WrongSeries/NotEntitled/SessionLimitReached
    (403), UnknownKey (404), AccessUnavailable (503, the database is needed and unreachable).

    The token is checked (by the caller) before the key id, so that key ids cannot be probed without
    one. A key not in memory and an answer memory cannot give are read in the access room's threads.
    """
    key = keystore.cached(key_id)
    if key is None:
        key = await access.in_lookup_thread("key", keystore.get, key_id)
    if viewer.series_id != key.series_id:
        raise WrongSeries(viewer.series_id, key.series_id)
    await access.require_may_watch(viewer.viewer_id, key.series_id, key.episode_id)
    # counted only once the viewer may watch: a refused viewer takes no place among the sessions
    await access.admit_session(viewer)
    log.debug("key %s released to viewer %s (session %s)", key_id, viewer.viewer_id, viewer.session_id)
    return key.key
