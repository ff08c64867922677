"""Who may watch what. "May this viewer watch this episode?" for every room that releases something of
an episode: the key server today, captions, storyboards and thumbnails next.

    rule.py       the rule: a pure function of the episode's facts, the viewer's entitlement, the viewer
    gate.py       Access: the answer from memory when it is fresh (decide_from_memory, synchronous, for
                  the key path's fast path), else from the database (await require_may_watch(...))
    memory.py     bounded memory of answers (least recently used first, a maximum age)
    sessions.py   the concurrent-session limit: admissions (drm/access/sessions.py) remembered for half the idle time
    revocations.py  every current account revocation (drm/access/revocations.py), reloaded every second
    feed.py       following the change feed: a poll every second, LISTEN on PostgreSQL, the freshness bound
    lifecycle.py  install(app, settings): the app's Access at app[ACCESS], in its metrics

Use:
    access = request.app[ACCESS]
    await access.require_may_watch(viewer.viewer_id, series_id, episode_id)   # NotEntitled, AccessUnavailable

May import: server.edge, server.config, server.services, and drm.
"""

from server.access.gate import Access, AccessUnavailable
from server.access.lifecycle import ACCESS, install
from server.access.rule import EpisodeFacts, Verdict, may_watch

__all__ = ["ACCESS", "Access", "AccessUnavailable", "EpisodeFacts", "Verdict", "install", "may_watch"]
