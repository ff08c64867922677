"""`series episodes …`: the operator's view of a series' episodes, as the catalog API gives creators —
list with status, move one, set the whole order, edit, unpublish, publish again, delete."""

from __future__ import annotations

import argparse
import json

from drm.catalog.catalog import Episode
from server.cli.common import EXIT_OK
from server.config import Settings
from server.services import Services


def add_commands(commands: argparse._SubParsersAction) -> None:
    episodes = commands.add_parser("episodes", help="list, reorder, edit, unpublish or delete a series' episodes")
    actions = episodes.add_subparsers(dest="episodes_action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="every episode of a series in order, with its status")
    listing.add_argument("series_id", help="the series' id")
    listing.add_argument("--json", action="store_true", help="print the episodes as JSON, as the API shows them")
    listing.set_defaults(handler=cmd_list)

    move = actions.add_parser("move", help="move one episode to a position; the others close up around it")
    move.add_argument("series_id", help="the series' id")
    move.add_argument("episode_id", help="the episode to move")
    move.add_argument("--to", type=int, required=True, metavar="POSITION",
                      help="its new position, 1 to the number of episodes")
    move.set_defaults(handler=cmd_move)

    order = actions.add_parser("order", help="put every episode of a series in this order at once")
    order.add_argument("series_id", help="the series' id")
    order.add_argument("episode_ids", nargs="+", metavar="EPISODE",
                       help="every episode of the series exactly once, first to last")
    order.set_defaults(handler=cmd_order)

    edit = actions.add_parser("edit", help="change an episode's title, description or free-preview flag")
    edit.add_argument("series_id", help="the series' id")
    edit.add_argument("episode_id", help="the episode to change")
    edit.add_argument("--title", help="the title viewers see (1 to 200 characters)")
    edit.add_argument("--description", help="the description viewers see (at most 5000 characters)")
    edit.add_argument("--free-preview", action=argparse.BooleanOptionalAction, default=None,
                      help="make (or stop making) its keys free to any viewer with a token for the series")
    edit.set_defaults(handler=cmd_edit)

    for name, text in (("unpublish", "hide an episode from viewers; its keys go only to SERIES_TEST_VIEWER_IDS"),
                       ("publish", "publish an unpublished episode again"),
                       ("delete", "delete an episode: hidden and refused at once, files and keys removed by "
                                  "`series gc` after SERIES_GC_GRACE_S")):
        action = actions.add_parser(name, help=text)
        action.add_argument("series_id", help="the series' id")
        action.add_argument("episode_id", help="the episode")
        action.set_defaults(handler=cmd_change, change=name)


def cmd_list(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        episodes = services.catalog.list_episodes(args.series_id, published_only=False)
    if args.json:
        from server.catalog.views import episode_json

        print(json.dumps([episode_json(episode, full=True) for episode in episodes], indent=2))
        return EXIT_OK
    for episode in episodes:
        print(_line(episode))
    return EXIT_OK


def cmd_move(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        episodes = services.catalog.move_episode(args.series_id, args.episode_id, args.to)
    _print_order(episodes)
    return EXIT_OK


def cmd_order(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        episodes = services.catalog.set_order(args.series_id, args.episode_ids)
    _print_order(episodes)
    return EXIT_OK


def cmd_edit(args, settings: Settings) -> int:
    if args.title is None and args.description is None and args.free_preview is None:
        raise argparse.ArgumentTypeError("nothing to change: give --title, --description or --[no-]free-preview")
    with Services.open(settings) as services:
        episode = services.catalog.update_episode(args.series_id, args.episode_id, title=args.title,
                                                  description=args.description, is_free_preview=args.free_preview)
    print(_line(episode))
    return EXIT_OK


def cmd_change(args, settings: Settings) -> int:
    with Services.open(settings) as services:
        if args.change == "delete":
            episode = services.catalog.delete_episode(args.series_id, args.episode_id)
            print(f"series {args.series_id} episode {args.episode_id}: deleted; `series gc` removes its files and "
                  f"keys after {settings.gc_grace_s:g} s")
            return EXIT_OK
        episode = services.catalog.set_episode_published(args.series_id, args.episode_id, args.change == "publish")
    print(_line(episode))
    return EXIT_OK


def _line(episode: Episode) -> str:
    duration = f"{episode.duration_s:.1f} s" if episode.is_published else "-"
    stage = f" ({episode.stage} {episode.stage_percent:.0f}%)" if episode.status == "processing" else ""
    error = f" [{episode.error['code']}]" if episode.error else ""
    preview = " free preview" if episode.is_free_preview else ""
    return (f"{episode.position:>2}. {episode.episode_id}\t{episode.status}{stage}{error}\t{duration}{preview}\t"
            f"{episode.title}")


def _print_order(episodes: list[Episode]) -> None:
    for episode in episodes:
        print(_line(episode))
