"""`series gc`: removing what no live version needs (`series jobs` is server/cli/operations/jobs.py)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from packager.store import ObjectStore
from server.cli.common import EXIT_OK, running_services
from server.config import Settings
from server.ingest.spool import sweep_spool
from server.ingest.upload_endings import UploadContext
from server.ingest.upload_store import UploadStore
from server.ingest.upload_sweep import sweep_uploads
from server.jobs.job_store import JobStore
from server.publishing.garbage import collect_deleted, collect_garbage


def add_commands(commands: argparse._SubParsersAction) -> None:
    gc_help = ("delete superseded and orphaned episode versions and their keys (the live version, and the "
               "previous one for SERIES_GC_GRACE_S, stay), everything of episodes and series deleted more than "
               "SERIES_GC_GRACE_S ago, spooled uploads of jobs that failed more than "
               "SERIES_FAILED_UPLOAD_RETENTION_S ago or that no job names (never a queued or running job's), and "
               "resumable uploads' leftovers: expired uploads (their multipart parts aborted, their objects "
               "deleted), completed uploads' files once their job is done, and parts or objects no upload owns")
    gc = commands.add_parser("gc", help=gc_help, description=gc_help)
    gc.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    gc.add_argument("--json", action="store_true", help="print the result as JSON")
    gc.set_defaults(handler=cmd_gc)


def cmd_gc(args, settings: Settings) -> int:
    with running_services(settings) as services:
        collected = collect_garbage(services.store, services.keystore, grace_s=settings.gc_grace_s,
                                    dry_run=args.dry_run)
        removed, removed_series = collect_deleted(services.store, services.keystore, services.catalog,
                                                  grace_s=settings.gc_grace_s, dry_run=args.dry_run)
        jobs = JobStore(services.db)
        uploads = sweep_spool(jobs, settings.jobs.spool_dir,
                              retention_s=settings.jobs.failed_upload_retention_s, dry_run=args.dry_run)
        with ObjectStore(replace(settings.store, bucket=settings.jobs.uploads_bucket)) as bucket:
            bucket.ensure_bucket()
            context = UploadContext(settings=settings, uploads=UploadStore(services.db), store=bucket, jobs=jobs,
                                    catalog=services.catalog)
            resumable, queued = sweep_uploads(context, scan_store=True, dry_run=args.dry_run)
    rows = [{"series": c.plan.location.series_id, "episode": c.plan.location.episode_id,
             "live": c.plan.live_version, "keep": list(c.plan.keep), "delete": list(c.plan.delete),
             "objects_deleted": c.objects_deleted, "keys_deleted": c.keys_deleted} for c in collected]
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "episodes": rows,
                          "deleted_episodes": [{"series": r.location.series_id, "episode": r.location.episode_id,
                                                "objects_deleted": r.objects_deleted, "keys_deleted": r.keys_deleted}
                                               for r in removed],
                          "deleted_series": removed_series,
                          "uploads": [upload.as_dict() for upload in uploads],
                          "resumable_uploads": [swept.as_dict() for swept in resumable]}))
        return EXIT_OK
    verb = "would delete" if args.dry_run else "deleted"
    for swept in resumable:
        print(f"resumable upload {swept.upload_id or '(none)'}: {swept.action} ({swept.detail})"
              + (" [dry run]" if args.dry_run else ""))
    for job in queued:
        print(f"job {job.job_id} queued for a completed upload; `series serve` runs it")
    for upload in uploads:
        print(f"spooled upload {upload.path} ({upload.reason.replace('_', ' ')}"
              f"{' ' + upload.job_id if upload.job_id else ''}, {upload.size_bytes} bytes): {verb}")
    for episode in removed:
        done = "" if args.dry_run else f" ({episode.objects_deleted} objects, {episode.keys_deleted} keys)"
        print(f"series {episode.location.series_id} episode {episode.location.episode_id}: deleted by its creator, "
              f"{verb} everything{done}")
    for series_id in removed_series:
        print(f"series {series_id}: deleted by its creator, forgotten")
    for row in rows:
        versions = ", ".join(f"v{v}" for v in row["delete"]) or "nothing"
        done = "" if args.dry_run or not row["delete"] else \
            f" ({row['objects_deleted']} objects, {row['keys_deleted']} keys)"
        live = f"v{row['live']}" if row["live"] is not None else "none"
        print(f"series {row['series']} episode {row['episode']}: live {live}, "
              f"{verb} {versions}{done}")
    return EXIT_OK
