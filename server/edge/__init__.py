"""The HTTP edge every request passes: one middleware (middleware.py) that times and counts requests
(metrics.py), answers CORS preflights and puts security headers on every response (security.py), and
turns every error into application/problem+json (problems.py); plus what handlers of every room use —
request bodies read with bounds (bodies.py), who is calling (auth.py: bearer secrets, account tokens,
the playback token), key-request rate limits (ratelimit.py), the JSON access log (accesslog.py) and
/healthz (health.py).

May import: server.config, server.services, and pipeline, packager, drm (their errors). Never the rooms
that serve features (keys, playback, catalog, ingest, publishing): their errors carry their own HTTP
status (`http_status`), so problems.py needs none of their imports.
"""
