"""Ingest hand-off: upload services hand an episode over (api.py: streamed to the upload spool, or a
reference to an object in the uploads bucket) and follow its job. jobs.py says what a job is and the
states it passes; job_store.py keeps jobs, attempts and leases in the database; runner.py runs them in
worker processes, renews leases, recovers jobs of dead runners and retries a job the store failed (with
backoff); worker.py is the process side that calls publishing; spool.py sweeps old uploads;
completion.py delivers signed completion webhooks; owners.py names runners.

Resumable uploads (tus 1.0) arrive at /v1/uploads (uploads_api.py) from upload services and from the
creator studio: resumable.py says what an upload is; upload_chunks.py writes a chunk into S3 parts and a
tail object; upload_store.py keeps offsets, parts and leases in the database so any instance takes the
next chunk; upload_endings.py completes an upload (its job queued once) or abandons it; upload_sweep.py
expires abandoned ones and clears what they leave in the store.

May import: server.edge, server.publishing, server.config, server.services, and pipeline, packager, drm.
"""
