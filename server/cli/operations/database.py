"""`series db migrate` and `series db status`: the database's schema, upgraded when an operator says so.

The embedded SQLite file upgrades itself when a command opens it; a shared PostgreSQL is upgraded only
here, once, before new code starts (services refuse a schema they do not know, older or newer).
"""

from __future__ import annotations

import argparse
import json

from drm.storage.engines import connect_database
from drm.storage.migrations import SCHEMA_VERSION, migrate, schema_version
from server.cli.common import EXIT_FAILED, EXIT_OK
from server.config import Settings


def add_commands(commands: argparse._SubParsersAction) -> None:
    db = commands.add_parser("db", help="the database's schema: migrate it, or show its version",
                             description="SERIES_DATABASE_URL's PostgreSQL (or the embedded SQLite file)")
    actions = db.add_subparsers(dest="db_action", required=True, metavar="ACTION")
    run = actions.add_parser("migrate", help="bring the schema up to this code's version (safe to run again, "
                                             "and from several hosts at once: the others wait and find it done)")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.set_defaults(handler=cmd_migrate)
    status = actions.add_parser("status", help="print the schema version; exit 1 unless it is this code's")
    status.add_argument("--json", action="store_true", help="print the result as JSON")
    status.set_defaults(handler=cmd_status)


def cmd_migrate(args, settings: Settings) -> int:
    where = settings.describe_database()
    with connect_database(settings.database_target, pool_max_size=2) as db:
        result = migrate(db)
    engine_created = False
    if settings.database_url is not None:
        # the job engine's tables, in the same database: one command for the operator, not two tools
        from server.jobs.engines.procrastinate_engine import apply_schema

        engine_created = apply_schema(settings.database_target)
    if args.json:
        print(json.dumps({"database": where, "from_version": result.from_version, "to_version": result.to_version,
                          "changed": result.changed, "job_engine_schema_created": engine_created}))
    elif result.changed:
        print(f"migrated {where} from schema version {result.from_version} to {result.to_version}")
    else:
        print(f"{where} is at schema version {result.to_version}, this code's; nothing to do")
    if engine_created and not args.json:
        print(f"created the job engine's tables (Procrastinate) in {where}")
    return EXIT_OK


def cmd_status(args, settings: Settings) -> int:
    where = settings.describe_database()
    with connect_database(settings.database_target, pool_max_size=2) as db:
        found = schema_version(db)
    if args.json:
        print(json.dumps({"database": where, "version": found, "code_version": SCHEMA_VERSION,
                          "is_current": found == SCHEMA_VERSION}))
    elif found == SCHEMA_VERSION:
        print(f"{where}: schema version {found}, this code's")
    elif found < SCHEMA_VERSION:
        also = "" if settings.database_url is not None else " (or any other command: the embedded file upgrades itself)"
        print(f"{where}: schema version {found}, this code needs {SCHEMA_VERSION}: run `series db migrate`{also}")
    else:
        print(f"{where}: schema version {found} is newer than this code's {SCHEMA_VERSION}: upgrade the service")
    return EXIT_OK if found == SCHEMA_VERSION else EXIT_FAILED
