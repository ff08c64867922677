"""Forensics: naming the playback session behind a leaked copy of a watermarked episode. trace.py loads the
episode version's watermark reference (stored privately beside its segments), reads the leak
(pipeline/watermark), recomputes every recorded session's A/B sequence (drm/access/watermark_sessions.py, the
service's watermark secret) and decides, never accusing below the false-accusation bound. Used by
`series trace`. Blocking: minutes of decoding for a long leak.

May import: server.config, server.services, and pipeline, packager, drm.
"""
