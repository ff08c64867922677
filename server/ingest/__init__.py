"""Ingest hand-off: upload services hand an episode over (api.py: streamed to the upload spool, or a
reference to an object in the uploads bucket) and follow its job. jobs.py says what a job is and the
states it passes; job_store.py keeps jobs, attempts and leases in the database; runner.py runs them in
worker processes, renews leases, recovers jobs of dead runners and retries a job the store failed (with
backoff); worker.py is the process side that calls publishing; spool.py sweeps old uploads;
completion.py delivers signed completion webhooks; owners.py names runners.

May import: server.edge, server.publishing, server.config, server.services, and pipeline, packager, drm.
"""
