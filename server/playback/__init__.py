"""Playback: per-viewer master and media playlists with the viewer's token written into every URI
(playlists.py), the routes that serve them and the encrypted segments (routes.py), and segments
streamed from the store by Range (segments.py). Only the live version and the one before it are served.

May import: server.edge, server.services, and packager, drm.
"""
