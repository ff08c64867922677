"""Configuration, read once: Settings.from_env() is the one reader of the SERIES_* environment, and
everything else receives the Settings it builds. Each room's section is defined here too (http.py for
the edge, jobs.py for ingest, access.py for the access room and the shared database), so that config imports no room; the embedded set-up's store settings and
generated secrets come from server/local/.

May import: pipeline, packager, drm (their settings types) and server.local.
"""

from server.config.access import AccessSettings, DatabaseUrl
from server.config.environment import PREFIX, Secret, SettingsError
from server.config.http import HttpSettings, RateLimitSettings
from server.config.jobs import JobSettings
from server.config.settings import Settings
from server.config.uploads import UploadSettings

__all__ = ["PREFIX", "AccessSettings", "DatabaseUrl", "HttpSettings", "JobSettings", "RateLimitSettings", "Secret",
           "Settings", "SettingsError", "UploadSettings"]
