"""The key server. release.py's release_key() is where a content key is released: only for a valid
playback token whose viewer bought the series (or for a free-preview episode). endpoint.py serves
GET /v1/keys/{key_id}: rate limits, the fast path that answers plain key GETs ahead of the router, and
an answer from memory when memory suffices (memory.py: the entitlement snapshot and verified tokens).

May import: server.edge, server.config, server.services, and drm.
"""
