"""server: the aiohttp service, its jobs and the `series` command line, in rooms named after what they do.

    config/      Settings.from_env(): the one reader of SERIES_* variables, and every room's settings section
    local/       the embedded set-up: SeaweedFS on loopback, locally generated secrets
    services.py  Services: the long-lived objects (database, object store, drm stores) built from settings
    edge/        what every request passes: middleware, problem+json, CORS and headers, rate limits,
                 request bodies, who is calling (auth), access log, metrics, /healthz
    access/      who may watch what: the rule, per-viewer and per-episode memory, the change feed
    keys/        GET /v1/keys/{id}: where a content key is released (release.py), and its fast path
    playback/    per-viewer master and media playlists, and the encrypted segments they list
    catalog/     the creator, viewer and operator APIs, and the payment webhook (verified there)
    publishing/  one file to a live episode version: validate → transcode → keys → encrypt → publish; gc
    jobs/        ingest jobs: the JobQueue and its two engines (the in-process runner on SQLite, Procrastinate on
                 PostgreSQL), the jobs table, the transcode child process, durable completion webhooks
    ingest/      the hand-off API and the upload spool; resumable (tus) uploads and their sweep; they queue jobs
    reference/   the OpenAPI 3.1 description (/openapi.json) and its readable reference page (/docs)
    web/         the viewer web app: storefront, paywall, test purchase, player (static files built with
                 esbuild, served under their own CSP); the local sign-in and test payments, each off by default
    cli/         `series …`: one module per group of commands (catalog/ and operations/ groups)
    app.py       create_app(): composes the rooms into the service

Rooms import downwards only (tests/test_layering.py): config → local; edge → config, services; access →
edge; keys and playback → access, edge; catalog → access, edge, playback, publishing; publishing → config;
jobs → publishing; ingest → edge, jobs, publishing; reference → edge; web → edge; cli and app → any room.
Nothing imports cli.
"""
