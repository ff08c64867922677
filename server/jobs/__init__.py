"""Ingest jobs: what a job is and the states it passes (jobs.py), the ingest_jobs table with its attempts,
leases and fences (job_store.py), and the queue that runs them.

queue.py is the JobQueue the hand-off API and the CLI use (submit, cancel, the engine's view), with two
engines in engines/: the in-process runner (runner.py: worker processes, leases, recovery, retries; the
embedded default on SQLite) and Procrastinate on PostgreSQL (procrastinate_engine.py: `series worker`
processes on any host, heartbeats and a stalled-job sweep); configured.py opens the one the settings name.
Either way the transcode runs in a child process that dies with its parent (child.py starts it, worker.py
is its side, calling server/publishing). owners.py names runners. Completion webhooks, in webhooks/:
completion.py signs and makes one delivery attempt; deliveries.py records every delivery and its attempts
in the database and retries them for hours; addresses.py keeps them off private networks.

May import: server.publishing, server.config, server.services, and pipeline, packager, drm.
"""
