"""`series trace LEAKED_FILE`: name the playback session (viewer, payment) a leaked copy of a watermarked
episode came from, or say why it cannot (server/forensics/trace.py)."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.errors import PipelineError
from pipeline.inspect.probe import probe
from pipeline.watermark import DEFAULT_FALSE_ACCUSATION, LeakNotVideo
from server.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, media_file, running_services
from server.config import Settings
from server.forensics.trace import Trace, trace_leak


def add_commands(commands: argparse._SubParsersAction) -> None:
    trace = commands.add_parser(
        "trace", help="name the playback session a leaked copy of a watermarked episode came from",
        description="Read the A/B watermark of a leaked copy (re-encoded, rescaled, cropped a little, another frame "
                    "rate, a screen recording) and compare it with every recorded session of the episode. Exit 0: "
                    "identified; 1: undecided (never accuses on weak evidence); 2: the file is missing or is not "
                    "video.")
    trace.add_argument("file", type=media_file, metavar="LEAKED_FILE", help="the leaked video file")
    trace.add_argument("--series", help="the series the leak is of (with --episode; default: try every "
                                        "watermarked episode and keep the one the leak matches)")
    trace.add_argument("--episode", help="the episode the leak is of (with --series)")
    trace.add_argument("--false-accusation", type=_probability, default=DEFAULT_FALSE_ACCUSATION, metavar="P",
                       help=f"the chance of naming an innocent session the verdict may take, default "
                            f"{DEFAULT_FALSE_ACCUSATION:g}")
    trace.add_argument("--json", action="store_true",
                       help='print one JSON object: {"verdict": "identified"|"undecided", "candidates": [...], ...}')
    trace.set_defaults(handler=cmd_trace)


def cmd_trace(args, settings: Settings) -> int:
    if (args.series is None) != (args.episode is None):
        print("series: trace: give --series and --episode together, or neither", file=sys.stderr)
        return EXIT_USAGE
    try:        # before anything else: a file that is no video is the operator's mistake, not "undecided"
        if probe(args.file).video is None:
            raise LeakNotVideo(args.file.name, "it has no video stream")
    except PipelineError as exc:
        print(f"series: {exc.code}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with running_services(settings) as services:
        try:
            trace = trace_leak(args.file, services, series_id=args.series, episode_id=args.episode,
                               false_accusation=args.false_accusation)
        except LeakNotVideo as exc:
            print(f"series: {exc.code}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if args.json:
        print(json.dumps(trace.as_json(), indent=2))
    else:
        print(describe(trace))
    return EXIT_OK if trace.is_identified else EXIT_FAILED


def describe(trace: Trace) -> str:
    """The verdict for a person: who, by which session and payment, with what confidence; or why not."""
    lines = []
    if trace.is_identified:
        lines += [f"identified: viewer {c.viewer_id}, session {c.session_id}, {_paid(c)}, confidence "
                  f"{c.confidence:.9f} (p-value {c.p_value:.2g}; {c.segments_agreeing} of {c.segments_read} "
                  "segments agree)" for c in trace.candidates if c.is_accused]
    else:
        lines.append(f"undecided: {trace.reason}")
    if trace.version is not None:
        lines.append(f"  compared with series {trace.series_id} episode {trace.episode_id} v{trace.version}: "
                     f"{trace.session_count} recorded sessions, {trace.segments_read} segments read, the leak "
                     f"starting at {trace.offset_s:.1f} s (match {trace.match:.2f})")
        lines += [f"  candidate viewer {c.viewer_id} session {c.session_id}: p-value {c.p_value:.2g}"
                  for c in trace.candidates[:5] if not c.is_accused]
    return "\n".join(lines)


def _paid(candidate) -> str:
    if candidate.payment_id:
        return f"payment {candidate.payment_id}"
    return {"comp": "a comp (no payment)", "gift": "a gift (no payment)",
            "free_preview": "a free preview (no payment)"}.get(candidate.source, candidate.source or "no payment")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability between 0 and 1, e.g. 1e-6")
    return value
