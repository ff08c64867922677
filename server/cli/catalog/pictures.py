"""`series poster` and `series captions add|remove|list`: a published episode's poster and caption tracks
changed without re-transcoding, each change a new version published atomically (server/publishing/edits.py)."""

from __future__ import annotations

import argparse
import json
import sys

from server.cli.common import EXIT_FAILED, EXIT_OK, EXIT_REJECTED, media_file, running_services
from server.config import Settings
from server.publishing.edits import CaptionsRejected, EditResult, EpisodeEditor, UnknownCaptionTrack
from server.publishing.pictures import manifest_json
from server.publishing.versions import EpisodeVersions


def add_commands(commands: argparse._SubParsersAction) -> None:
    poster = commands.add_parser("poster", help="take a published episode's poster at a time (no re-transcoding)",
                                 description="Publish the episode again with its poster (JPEG and WebP at "
                                             "320/640/1280 px) taken from the frame at --at; the video is not "
                                             "transcoded again and viewers mid-playback play on.")
    _episode_options(poster)
    poster.add_argument("--at", type=float, required=True, metavar="SECONDS",
                        help="the time of the picture, in seconds from the start (e.g. 12.5)")
    poster.set_defaults(handler=cmd_poster)

    captions = commands.add_parser("captions", help="add, remove or list a published episode's caption tracks")
    actions = captions.add_subparsers(dest="captions_action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a caption track (WebVTT or SRT), or replace the one of that language",
                             description="Judge the file against the episode (UTF-8, parseable, cues in order and "
                                         "inside the episode, sane lines) and publish the episode again with it as "
                                         "an HLS subtitle rendition; the video is not transcoded again. A refused "
                                         "file prints every reason with its code (exit 3) and changes nothing.")
    _episode_options(add)
    add.add_argument("--lang", required=True, metavar="TAG", help="the track's language, BCP 47: en, fr, pt-BR, zh-Hant")
    add.add_argument("--file", required=True, type=media_file, help="the caption file (.vtt or .srt)")
    add.add_argument("--name", help="what players list (default: the language's own name, e.g. Français)")
    add.add_argument("--default", action="store_true", help="players show this track unless the viewer picks another")
    add.add_argument("--forced", action="store_true",
                     help="forced subtitles: only what a viewer hearing the audio needs (signs, foreign dialogue)")
    add.set_defaults(handler=cmd_captions_add)

    remove = actions.add_parser("remove", help="remove a caption track")
    _episode_options(remove)
    remove.add_argument("--lang", required=True, metavar="TAG", help="the track's language, as listed")
    remove.add_argument("--forced", action="store_true", help="the forced track of that language")
    remove.set_defaults(handler=cmd_captions_remove)

    listing = actions.add_parser("list", help="the live version's caption tracks, poster and storyboard")
    _episode_options(listing)
    listing.set_defaults(handler=cmd_captions_list)


def _episode_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--series", required=True, help="series id, e.g. my-series")
    parser.add_argument("--episode", required=True, help="episode id, e.g. 1")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _editor(services) -> EpisodeEditor:
    return EpisodeEditor(settings=services.settings, store=services.store, keystore=services.keystore,
                         catalog=services.catalog, versions=EpisodeVersions(services.db))


def _print(args, shown: dict, summary: str, notes=()) -> int:
    if args.json:
        print(json.dumps({"series": args.series, "episode": args.episode, **shown, "notes": list(notes)}))
    else:
        print(summary)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


def _tracks(shown: dict) -> str:
    return ", ".join(f"{t['track_id']}{' (default)' if t['default'] else ''}" for t in shown["captions"]) or "none"


def _published(args, result: EditResult, what: str) -> int:
    shown = manifest_json(result.manifest)
    return _print(args, shown, f"published series {args.series} episode {args.episode} as v{shown['version']} "
                               f"({what}; segments of v{shown['media_version']}); captions: {_tracks(shown)}",
                  result.notes)


def cmd_poster(args, settings: Settings) -> int:
    with running_services(settings) as services:
        result = _editor(services).set_poster(args.series, args.episode, args.at)
    return _published(args, result, f"poster at {result.manifest.poster.time_s:.3f} s")


def cmd_captions_add(args, settings: Settings) -> int:
    data = args.file.read_bytes()
    try:
        with running_services(settings) as services:
            result = _editor(services).add_captions(args.series, args.episode, data, language=args.lang,
                                                    name=args.name, is_default=args.default, is_forced=args.forced)
    except CaptionsRejected as exc:
        if args.json:
            print(json.dumps(exc.report.as_dict()))
        for issue in exc.report.issues:
            print(f"{args.file.name}: rejected: {issue.message} [{issue.code}]; {issue.how_to_fix}", file=sys.stderr)
        return EXIT_REJECTED
    return _published(args, result, f"{args.lang} captions added")


def cmd_captions_remove(args, settings: Settings) -> int:
    track_id = f"{args.lang}_forced" if args.forced else args.lang
    try:
        with running_services(settings) as services:
            result = _editor(services).remove_captions(args.series, args.episode, track_id)
    except UnknownCaptionTrack as exc:
        print(f"series: {exc.code}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return _published(args, result, f"{track_id} captions removed")


def cmd_captions_list(args, settings: Settings) -> int:
    with running_services(settings) as services:
        shown = manifest_json(_editor(services).live_manifest(args.series, args.episode))
    if args.json:
        return _print(args, shown, "")
    print(f"series {args.series} episode {args.episode} v{shown['version']} (segments of v{shown['media_version']})")
    for track in shown["captions"]:
        flags = [flag for flag in ("default", "forced") if track[flag]]
        print(f"  {track['track_id']:<12} {track['name']:<20} {track['cues']:>5} cues  {track['source']}"
              f"{'  ' + ', '.join(flags) if flags else ''}")
    poster = shown["poster"]
    print(f"  poster at {poster['time_s']:.3f} s ({poster['chosen_by']})" if poster else "  no poster")
    return EXIT_OK
