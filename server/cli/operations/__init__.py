"""Running and keeping the service: `series serve` and `series store` (service, serving, processes), the
database's schema (database), jobs, workers and webhook deliveries (jobs), resumable uploads (uploads) and
garbage collection (gc).
"""
