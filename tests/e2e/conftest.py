"""What the browser tests of the web app share: one published series for the whole session.

Series `web` (creator `creator-1`, $4.99): episode 1 is a 60 s landscape episode (640x360, two renditions,
360p and 234p) whose keys rotate every 2 segments (12 s), so a refund or a seek meets a key request the
player has not made yet; episode 2 is a 12 s portrait free preview (360x640). Published once; each test
module opens its own Services and server on the same database and bucket, and uses viewers of its own.
"""

from __future__ import annotations

import pytest

from server.config import Settings
from server.publishing.episode import ingest_episode
from server.services import Services
from tests.conftest import settings_env
from tests.server.catalog_support import OPERATOR_TOKEN, WEBHOOK_SECRET
from tests.support.catalog import add_series
from tests.support.media import clip

WEB_SERIES, LANDSCAPE, PORTRAIT = "web", "1", "2"
KEY_PERIOD_S = 12.0          # SERIES_SEGMENTS_PER_KEY=2 of 6 s segments
LANDSCAPE_DURATION_S = 60.0


@pytest.fixture(scope="session")
def web_env(tmp_path_factory, s3_store, media_dir) -> dict[str, str]:
    """The environment of a service with the series published (for the app, and for `series` commands)."""
    env = settings_env(tmp_path_factory.mktemp("web"), s3_store, SERIES_SEGMENTS_PER_KEY="2",
                       SERIES_MIN_DURATION_S="10", SERIES_LOCAL_SIGN_IN="true", SERIES_TEST_PAYMENTS="true",
                       SERIES_OPERATOR_TOKEN=OPERATOR_TOKEN, SERIES_WEBHOOK_SECRET=WEBHOOK_SECRET,
                       SERIES_ENTITLEMENT_CACHE_TTL_S="1")
    settings = Settings.from_env(env)
    landscape = clip(media_dir, "web-landscape.mp4", duration_s=LANDSCAPE_DURATION_S, width=640, height=360, fps=10)
    portrait = clip(media_dir, "web-portrait.mp4", duration_s=12, width=360, height=640, fps=10)
    with Services.open(settings) as services:
        services.store.ensure_bucket()
        add_series(services, WEB_SERIES)
        services.catalog.update_series(WEB_SERIES, title="Knots at sea",
                                       description="Knots every sailor should tie without looking, one short episode each.")
        for episode_id, source, title in ((LANDSCAPE, landscape, "The bowline"), (PORTRAIT, portrait, "Reef knot")):
            ingest_episode(source, series_id=WEB_SERIES, episode_id=episode_id, settings=settings,
                           store=services.store, keystore=services.keystore, catalog=services.catalog,
                           is_free_preview=episode_id == PORTRAIT)
            services.catalog.update_episode(WEB_SERIES, episode_id, title=title)
    return env
