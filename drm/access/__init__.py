"""Who may watch what, right now: entitlements and their change feed, playback tokens, playback sessions
and their limit, account-token revocations. Imports storage/, drm.keystore's settings, drm.ids and
drm.errors; never catalog/ or payments/.
"""
