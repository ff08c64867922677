"""Who runs the queued jobs: the in-process runner on the embedded SQLite default (runner), Procrastinate
workers on PostgreSQL (procrastinate_engine), and the one that SERIES_JOB_ENGINE names (configured).
"""
