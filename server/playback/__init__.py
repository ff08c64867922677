"""Playback: per-viewer master and media playlists with the viewer's token written into every URI
(playlists.py), the routes that serve them and the encrypted segments (routes.py), and segments
streamed from the store by Range (segments.py). Only the live version and the one before it are served
(and, for segments, the media versions they play). Captions, storyboards and thumbnails, gated by the
access room, and the public posters are pictures.py's; thumbnails are drawn by thumbnails.py.

May import: server.access, server.edge, server.config, server.services, and packager, drm.
"""
