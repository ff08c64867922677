"""Publishing one episode: episode.py's ingest_episode() takes an uploaded file through validate →
transcode → content keys → encrypt and publish, as one new version switched live atomically;
versions.py allocates version numbers; garbage.py deletes superseded and orphaned versions and their keys.
Used by the CLI directly and by ingest jobs in worker processes.

May import: server.config, and pipeline, packager, drm. No HTTP.
"""
