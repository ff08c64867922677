"""`series grant`, `series revoke`, `series refund` (of a test purchase), `series token` and `series tokens
revoke`: who may watch a series, a token to try it with, and signing an account out everywhere."""

from __future__ import annotations

import argparse
import sys

from drm.errors import UnknownSeries
from server.cli.common import EXIT_FAILED, EXIT_OK
from server.config import Settings
from server.keys.token_api import revoke_tokens
from server.playback.playlists import master_url
from server.services import Services
from server.web.payment_simulator import NotATestPurchase, refund_test_purchase


def add_commands(commands: argparse._SubParsersAction) -> None:
    for name, handler, text in (("grant", cmd_grant, "give a viewer access to a series"),
                                ("revoke", cmd_revoke, "take a viewer's access to a series away")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--viewer", required=True, help="the viewer's id")
        sub.add_argument("--series", required=True, help="the series' id")
        sub.add_argument("--reason", default="", help="why, for the audit trail")
        if name == "grant":
            sub.add_argument("--source", choices=("comp", "gift"), default="comp", help="default: comp")
        sub.set_defaults(handler=handler)

    refund = commands.add_parser(
        "refund", help="refund a viewer's test-mode purchase of a series, as the payment system's refund webhook "
                       "would (a real payment is refunded in the payment system)")
    refund.add_argument("--viewer", required=True, help="the viewer who bought the series with a test purchase")
    refund.add_argument("--series", required=True, help="the series' id")
    refund.set_defaults(handler=cmd_refund)

    token = commands.add_parser("token", help="mint a playback token and print the episode's URL for it")
    token.add_argument("--viewer", required=True, help="the viewer the token names")
    token.add_argument("--series", required=True, help="the series the token opens")
    token.add_argument("--episode", help="also print this episode's master playlist URL")
    token.add_argument("--ttl", type=int, help="lifetime in seconds (default SERIES_TOKEN_TTL_S)")
    token.set_defaults(handler=cmd_token)

    tokens = commands.add_parser("tokens", help="account tokens: revoke every token of an account")
    actions = tokens.add_subparsers(dest="tokens_action", required=True, metavar="ACTION")
    revoke = actions.add_parser(
        "revoke", help="refuse every account and playback token of an account issued up to now, on every instance "
                       "within about a second, and end its playback sessions (signing in again works)")
    revoke.add_argument("--account", required=True, help="the viewer's or creator's id (the tokens' subject)")
    revoke.set_defaults(handler=cmd_tokens_revoke)


def cmd_grant(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        services.entitlements.grant(args.viewer, args.series, source=args.source,
                                    reason=args.reason or "granted by operator", actor="cli")
    print(f"viewer {args.viewer} may watch series {args.series}")
    return EXIT_OK


def cmd_revoke(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        revoked = services.entitlements.revoke(args.viewer, args.series, reason=args.reason or "revoked by operator",
                                               actor="cli")
    print(f"viewer {args.viewer} " + ("can no longer watch" if revoked else "had no access to") + f" series {args.series}")
    return EXIT_OK


def cmd_refund(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        try:
            outcome = refund_test_purchase(services, args.viewer, args.series)
        except NotATestPurchase as exc:
            print(f"series: {exc.code}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    print(f"{outcome.result}: {outcome.detail}; viewer {args.viewer}'s player is refused its next key")
    return EXIT_OK


def cmd_token(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        token = services.tokens.mint(args.viewer, args.series, ttl_s=args.ttl)
        hint = _access_hint(services, args.viewer, args.series, args.episode)
    print(token)
    if args.episode:
        print(master_url(settings.public_url, args.series, args.episode, token))
    if hint:
        print(f"series: note: {hint}", file=sys.stderr)
    return EXIT_OK


def _access_hint(services: Services, viewer_id: str, series_id: str, episode_id: str | None) -> str | None:
    """Why the key server will refuse this token, and the command that fixes it; None when it will not."""
    try:
        services.catalog.get_series(series_id)
    except UnknownSeries:
        return f"series {series_id} does not exist yet; create it with: series series create {series_id} ..."
    if services.entitlements.is_entitled(viewer_id, series_id):
        return None
    if episode_id is not None and services.catalog.is_free_preview(series_id, episode_id):
        return None
    return (f"viewer {viewer_id} has not bought series {series_id}, so its keys will be refused (403 not_entitled); "
            f"give access with: series grant --viewer {viewer_id} --series {series_id}")


def cmd_tokens_revoke(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        not_before, ended = revoke_tokens(services, args.account, "cli")
    print(f"account {args.account}: every token issued up to {not_before} (unix s) is refused from now on "
          f"(every instance within about a second); {ended} playback session(s) ended")
    return EXIT_OK
