"""The key server. GET /v1/keys/{key_id} releases a content key only for a valid playback token whose
viewer may watch the key's episode (server/access/ decides). endpoint.py: rate limits, the fast path
that answers plain key GETs ahead of the router, and the answer from memory when memory suffices;
release.py: release_key(), what memory could not decide (and the session's admission); tokens.py:
verified tokens, remembered; token_api.py: refreshing a playback token, ending its session, revoking an
account's tokens.

May import: server.access, server.edge, server.config, server.services, and drm.
"""
