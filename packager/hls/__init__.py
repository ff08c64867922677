"""HLS text: rendering media, master, I-frame, subtitle and image playlists, and the conformance checks
(RFC 8216 and Apple's authoring rules) every published playlist passes. Imports packager.errors only.
"""
