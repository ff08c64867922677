"""Caption tracks as HLS subtitle renditions: segmented WebVTT aligned to the video segments.

Each track gets a WebVTT media playlist with exactly the video's segment durations, and one WebVTT
file per video segment holding every cue shown during it (RFC 8216 §3.5: a cue that spans a
boundary is written in both segments, with its full times; players drop the duplicate). Cue times
are episode times, and every segment starts with
    X-TIMESTAMP-MAP=LOCAL:00:00:00.000,MPEGTS:<pts>
where <pts> is when the episode's first picture is shown in the video segments (90 kHz: the first
video PES's PTS for TS, 1.4 s plus the reorder delay with FFmpeg's muxer; tfdt plus composition
offset for fMP4), read from the segments themselves (segment_container.first_video_pts_90k).

Layout inside a version, apart from the renditions so the server can gate it on its own:
    v{n}/captions/{track_id}/index.m3u8, seg_00000.vtt, ...     (track_id: "fr", "fr_forced")
    v{n}/captions/{track_id}/captions.vtt                       the whole track, in episode time: for a
        creator to download, sidecar players, and carrying a track over to a re-ingested episode
Players cannot decrypt WebVTT, so caption segments are stored clear: the server serves them only
to viewers who may watch the episode (they are part of what is paid for).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from packager.errors import CaptionTracksConflict
from packager.hls.playlist import SubtitleRendition, render_subtitle_playlist
from packager.store import ObjectStore
from pipeline.captions.tracks import CaptionTrack, Cue
from pipeline.pictures.storyboard import vtt_timestamp

CAPTIONS_DIR = "captions"
WEBVTT_TYPE = "text/vtt; charset=utf-8"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
CAPTION_CACHE = "private, max-age=31536000, immutable"     # a version's objects never change; gated
SUBTITLE_PLAYLIST_NAME = "index.m3u8"
SEGMENT_PATTERN = "seg_{:05d}.vtt"
WHOLE_TRACK_NAME = "captions.vtt"


def track_prefix(track_id: str) -> str:
    """The track's directory inside a version: captions/{track_id}."""
    return f"{CAPTIONS_DIR}/{track_id}"


def segment_cues(cues: Sequence[Cue], segment_starts_s: Sequence[Fraction], end_s: Fraction) -> list[list[Cue]]:
    """The cues shown during each segment [start_k, start_k+1) (the last ends at `end_s`)."""
    bounds = [round(start * 1000) for start in segment_starts_s] + [round(end_s * 1000)]
    per_segment: list[list[Cue]] = [[] for _ in segment_starts_s]
    for cue in cues:
        for index in range(len(per_segment)):
            if cue.start_ms < bounds[index + 1] and cue.end_ms > bounds[index]:
                per_segment[index].append(cue)
    return per_segment


def render_webvtt_segment(cues: Sequence[Cue], timestamp_map_mpegts: int | None) -> str:
    """One WebVTT segment: the header with X-TIMESTAMP-MAP, then each cue with its full episode times.

    Without a map (None) it is a plain WebVTT file in episode time (the whole track)."""
    lines = ["WEBVTT"]
    if timestamp_map_mpegts is not None:
        lines.append(f"X-TIMESTAMP-MAP=LOCAL:00:00:00.000,MPEGTS:{timestamp_map_mpegts}")
    lines.append("")
    for cue in cues:
        timing = f"{vtt_timestamp(Fraction(cue.start_ms, 1000))} --> {vtt_timestamp(Fraction(cue.end_ms, 1000))}"
        lines += [f"{timing} {cue.settings}".rstrip(), cue.text, ""]
    return "\n".join(lines)


def upload_caption_track(store: ObjectStore, version_prefix: str, track: CaptionTrack, *,
                         segment_durations_s: Sequence[Fraction], timestamp_map_mpegts: int) -> SubtitleRendition:
    """Write `track`'s segments and playlist under version_prefix/captions/{track_id}/; its master entry.

    Raises StoreError.
    """
    starts, total = [], Fraction(0)
    for duration in segment_durations_s:
        starts.append(total)
        total += duration
    directory = f"{version_prefix}/{track_prefix(track.track_id)}"
    names = []
    for index, cues in enumerate(segment_cues(track.cues, starts, total)):
        name = SEGMENT_PATTERN.format(index)
        store.put_bytes(f"{directory}/{name}", render_webvtt_segment(cues, timestamp_map_mpegts).encode(),
                        content_type=WEBVTT_TYPE, cache_control=CAPTION_CACHE)
        names.append(name)
    store.put_bytes(f"{directory}/{WHOLE_TRACK_NAME}", render_webvtt_segment(track.cues, None).encode(),
                    content_type=WEBVTT_TYPE, cache_control=CAPTION_CACHE)
    playlist = render_subtitle_playlist(list(zip(names, segment_durations_s)))
    store.put_bytes(f"{directory}/{SUBTITLE_PLAYLIST_NAME}", playlist.encode(), content_type=PLAYLIST_TYPE,
                    cache_control=CAPTION_CACHE)
    return SubtitleRendition(uri=f"{track_prefix(track.track_id)}/{SUBTITLE_PLAYLIST_NAME}", language=track.language,
                             name=track.name, is_default=track.is_default, is_forced=track.is_forced)


def check_tracks(tracks: Sequence[CaptionTrack]) -> None:
    """Raise CaptionTracksConflict unless the tracks can share one group (distinct kinds and names, one default)."""
    ids = [track.track_id for track in tracks]
    names = [track.name for track in tracks]
    if len(set(ids)) != len(ids):
        raise CaptionTracksConflict(f"two caption tracks for the same language and kind: {sorted(ids)}")
    if len(set(names)) != len(names):
        raise CaptionTracksConflict(f"two caption tracks named alike: {sorted(names)}; players list tracks "
                                    "by name, so give each its own")
    if sum(track.is_default for track in tracks) > 1:
        raise CaptionTracksConflict("more than one caption track is marked default; mark one")
