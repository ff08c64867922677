"""`series creator …`, `series series …`, `series sales` and `series account-token`: the operator's catalog commands."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json

from drm.access.tokens import ROLES
from drm.catalog.eligibility import PENDING, CreatorProfile
from drm.errors import InvalidField, SeriesExists
from drm.payments.sales import sales_report
from server.catalog.api import create_series
from server.cli.common import EXIT_FAILED, EXIT_OK, media_file
from server.config import Settings
from server.services import Services

DEMO_CREATOR = "demo-creator"


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the catalog commands to the `series` parser."""
    creator = commands.add_parser("creator", help="record a creator's eligibility facts; approve or reject applications")
    actions = creator.add_subparsers(dest="creator_action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="judge and record a creator's profile facts (JSON)")
    check.add_argument("creator_id", help="the creator's id, e.g. creator-1")
    check.add_argument("--facts", required=True, help="a JSON object, or @FILE to read one (see README)")
    check.set_defaults(handler=cmd_creator_check)
    for name, text in (("approve", "approve a pending application"), ("reject", "reject a pending application")):
        decide = actions.add_parser(name, help=text)
        decide.add_argument("creator_id", help="the creator whose application is decided")
        decide.add_argument("--reason", default="", help="why, for the creator and the audit trail")
        decide.set_defaults(handler=cmd_creator_decide, approve=name == "approve")
    pending = actions.add_parser("pending", help="list applications waiting for approval")
    pending.set_defaults(handler=cmd_creator_pending)

    series = commands.add_parser("series", help="create or list series")
    actions = series.add_subparsers(dest="series_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a series for an eligible (or approved) creator")
    create.add_argument("series_id", help="the new series' id, e.g. my-series")
    create.add_argument("--creator", required=True, help="the eligible (or approved) creator who owns it")
    create.add_argument("--title", required=True, help="the title viewers see")
    create.add_argument("--price-cents", type=int, required=True, help="price in integer cents, 100..19000")
    create.add_argument("--currency", default="USD", help="USD, EUR, GBP, CAD, AUD, NZD, CHF, SEK, NOK or DKK")
    create.set_defaults(handler=cmd_series_create)
    listing = actions.add_parser("list", help="list series and their episodes")
    listing.set_defaults(handler=cmd_series_list)

    sales = commands.add_parser("sales", help="a series' sales, refunds and buyers, from the payment records")
    sales.add_argument("series_id", help="the series' id")
    sales.add_argument("--json", action="store_true", help="print the report as GET /v1/series/{S}/sales answers it")
    sales.set_defaults(handler=cmd_sales)

    account = commands.add_parser("account-token", help="mint an account token for the catalog API")
    account.add_argument("--subject", required=True, help="the creator or viewer id")
    account.add_argument("--role", required=True, choices=ROLES, help="what the account may do: creator or viewer")
    account.add_argument("--ttl", type=int, help="lifetime in seconds, at most 30 days (default 6 hours)")
    account.set_defaults(handler=cmd_account_token)


def cmd_creator_check(args, settings: Settings) -> int:
    if args.facts.startswith("@"):
        facts_file = media_file(args.facts[1:])          # one line naming a missing file or a directory
        try:
            raw = facts_file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InvalidField("facts", f"{facts_file} is not a UTF-8 text file holding a JSON object") from None
    else:
        raw = args.facts
    try:
        facts = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidField("facts", f"not valid JSON: {exc}") from None
    with Services.open(settings) as services:
        verdict, status = services.creators.record(CreatorProfile.from_json(args.creator_id, facts))
    print(f"creator {args.creator_id}: {status.status}")
    for rule in verdict.unmet:
        print(f"  unmet: {rule.message} [{rule.code}]")
    return EXIT_OK if status.may_publish else EXIT_FAILED


def cmd_creator_decide(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        status = services.creators.decide(args.creator_id, approve=args.approve, operator="cli", reason=args.reason)
    print(f"creator {args.creator_id}: {status.status}")
    return EXIT_OK


def cmd_creator_pending(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        for status in services.creators.list(PENDING):
            print(f"{status.creator_id}\t{status.premium_content_url}")
    return EXIT_OK


def cmd_series_create(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        series = create_series(services, creator_id=args.creator, series_id=args.series_id, title=args.title,
                               price_cents=args.price_cents, currency=args.currency)
    print(f"series {series.series_id} by {series.creator_id}: {series.title!r}, "
          f"{series.price_cents / 100:.2f} {series.currency}")
    return EXIT_OK


def cmd_series_list(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        for series in services.catalog.list_series():
            episodes = services.catalog.list_episodes(series.series_id)
            previews = sum(episode.is_free_preview for episode in episodes)
            print(f"{series.series_id}\t{series.creator_id}\t{series.price_cents / 100:.2f} {series.currency}\t"
                  f"{len(episodes)} episodes ({previews} free)\t{series.title}")
    return EXIT_OK


def cmd_sales(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        services.catalog.get_series(args.series_id)          # UnknownSeries: a clear error, not an empty report
        report = sales_report(services.db, args.series_id)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
        return EXIT_OK
    print(f"series {report.series_id}: {report.buyers} buyers now, {report.comps} comps, "
          f"{report.refused_payments} refused payments")
    for money in report.totals:
        print(f"  {money.currency}: {money.sales} sales {money.gross_cents / 100:.2f}, {money.refunds} refunds "
              f"{money.refunded_cents / 100:.2f}, {money.charge_backs} charge-backs "
              f"{money.charged_back_cents / 100:.2f}, net {money.net_cents / 100:.2f}")
    for event in report.recent:
        stamp = dt.datetime.fromtimestamp(event.at, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        print(f"  {stamp}\t{event.kind}\t{event.amount_cents / 100:.2f} {event.currency}\t{event.payment_id}")
    return EXIT_OK


def cmd_account_token(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        print(services.tokens.mint_account(args.subject, args.role, ttl_s=args.ttl))
    return EXIT_OK


def ensure_demo_series(services: Services, series_id: str) -> None:
    """The demo's creator (eligible on every rule) and its series, created once."""
    today = dt.datetime.now(dt.timezone.utc).date()
    if services.creators.get(DEMO_CREATOR) is None:
        services.creators.record(CreatorProfile(
            creator_id=DEMO_CREATOR, birth_date=dt.date(today.year - 30, 1, 1), country="US",
            account_created_on=today - dt.timedelta(days=365), account_type="personal", is_private=False,
            public_posts_last_30_days=12, followers=25_000, views_last_30_days=90_000,
            has_original_content=True, is_in_good_standing=True))
    with contextlib.suppress(SeriesExists):
        create_series(services, creator_id=DEMO_CREATOR, series_id=series_id, title="Demo series",
                      price_cents=499, currency="USD")
