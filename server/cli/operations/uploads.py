"""`series uploads list|show|abort`: resumable (tus) uploads, for operators. `series gc` sweeps them too."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import replace

from packager.store import ObjectStore
from server.cli.common import EXIT_FAILED, EXIT_OK, running_services
from server.config import Settings
from server.ingest.resumable import STATES, TERMINATED, Upload, UploadLocked, creator_owner
from server.ingest.upload_endings import UploadContext, abandon
from server.ingest.upload_store import UploadStore
from server.jobs.job_store import JobStore

ABORT_WAIT_S = 10.0         # an upload a PATCH is writing is aborted once that request lets go


def add_commands(commands: argparse._SubParsersAction) -> None:
    uploads = commands.add_parser("uploads", help="resumable (tus) uploads: list them, show one, abort one",
                                  description="Resumable uploads arriving through /v1/uploads (tus 1.0).")
    actions = uploads.add_subparsers(dest="uploads_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list uploads, newest first")
    listing.add_argument("--state", choices=STATES, help="only uploads in this state")
    listing.add_argument("--creator", metavar="C", help="only uploads creator C started in the studio")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)
    show = actions.add_parser("show", help="show one upload in full")
    show.add_argument("upload_id", help="the upload's id (up_…, the last part of its URL)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=cmd_show)
    abort = actions.add_parser("abort", help="terminate an unfinished upload: its parts and objects leave the store, "
                                             "and the episode it created is withdrawn if it never got media")
    abort.add_argument("upload_id", help="the upload's id (up_…)")
    abort.set_defaults(handler=cmd_abort)


@contextlib.contextmanager
def upload_context(settings: Settings) -> Iterator[UploadContext]:
    """An UploadContext on the database and the uploads bucket (the embedded store started if needed)."""
    with running_services(settings) as services:
        jobs = JobStore.open(settings.db_path)
        store = ObjectStore(replace(settings.store, bucket=settings.jobs.uploads_bucket))
        try:
            yield UploadContext(settings=settings, uploads=UploadStore(jobs.db), store=store, jobs=jobs,
                                catalog=services.catalog)
        finally:
            store.close()
            jobs.close()


def cmd_list(args, settings: Settings) -> int:
    jobs = JobStore.open(settings.db_path)
    try:
        uploads = UploadStore(jobs.db)
        listed = uploads.list(owner=creator_owner(args.creator) if args.creator else None,
                              states=(args.state,) if args.state else (), limit=args.limit)
    finally:
        jobs.close()
    now = time.time()
    if args.json:
        print(json.dumps([upload.as_public_dict(now) for upload in listed], indent=2))
        return EXIT_OK
    for upload in listed:
        shown = upload.as_public_dict(now)
        print(f"{upload.upload_id}  {shown['state']:<10} {shown['percent']:>5.1f}%  {upload.series_id}/"
              f"{upload.episode_id}  {upload.offset_bytes}/{upload.length_bytes} bytes  {shown['created_by']}"
              + (f"  {upload.job_id}" if upload.job_id else ""))
    return EXIT_OK


def cmd_show(args, settings: Settings) -> int:
    jobs = JobStore.open(settings.db_path)
    try:
        upload = UploadStore(jobs.db).get(args.upload_id)
    finally:
        jobs.close()
    shown = upload.as_public_dict(time.time())
    if args.json:
        print(json.dumps(shown, indent=2))
        return EXIT_OK
    print(f"{upload.upload_id}: {shown['state']}, {upload.offset_bytes} of {upload.length_bytes} bytes "
          f"({shown['percent']:.1f}%), series {upload.series_id} episode {upload.episode_id}, file {upload.filename}, "
          f"by {shown['created_by']}")
    print(f"  {len(upload.parts)} parts stored, {upload.tail_bytes} bytes in its tail"
          + (f"; expires {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(upload.expires_at))}"
             if shown["expires_at"] else ""))
    if upload.job_id:
        print(f"  job {upload.job_id} (series jobs {upload.job_id})")
    if upload.error:
        print(f"  refused: {upload.error.get('message')} [{upload.error.get('code')}]")
    return EXIT_OK


def cmd_abort(args, settings: Settings) -> int:
    holder = "cli:abort"
    with upload_context(settings) as context:
        upload = _claim(context, args.upload_id, holder)
        abandon(context, upload, holder, TERMINATED)
        cleared = context.uploads.get(upload.upload_id).cleared_at is not None
    print(f"upload {upload.upload_id} aborted at {upload.offset_bytes} of {upload.length_bytes} bytes"
          + ("; its parts and objects are gone" if cleared else "; its objects go at the next `series gc`"))
    return EXIT_OK if cleared else EXIT_FAILED


def _claim(context: UploadContext, upload_id: str, holder: str) -> Upload:
    deadline = time.monotonic() + ABORT_WAIT_S
    while True:
        try:
            return context.uploads.claim(upload_id, holder, context.settings.uploads.lease_s, include_expired=True)
        except UploadLocked:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
