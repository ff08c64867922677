"""extract_subtitles(): the text subtitle streams embedded in an upload, as caption tracks.

mov_text (MP4/MOV), subrip and webvtt (Matroska/WebM), ass/ssa and plain text streams are decoded with
PyAV; FFmpeg's decoders hand every one of them over as ASS dialogue, which is turned into a WebVTT
cue payload (italic/bold/underline overrides kept, other overrides dropped, the rest escaped).
Picture-based subtitles (DVD, PGS, DVB) would need OCR and are skipped with a reason, like tracks
whose cues break the caption rules (pipeline/captions/tracks.py check_cues): an upload is never refused for
its subtitles, the job report says what was published and what was not.

Times are episode times: 0 is the first decoded video picture, as in the transcode.
Only the subtitle streams are demuxed; video and audio packets are discarded by the demuxer.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction

import av

from pipeline.captions.tracks import (
    CaptionRules,
    CaptionTrack,
    Cue,
    canonical_language,
    check_cues,
    default_name,
    escape_cue_text,
)
from pipeline.errors import UnreadableMedia

TEXT_SUBTITLE_CODECS = frozenset({"mov_text", "subrip", "srt", "webvtt", "ass", "ssa", "text"})
# ISO 639-2/B and /T codes containers store -> the ISO 639-1 code BCP 47 prefers (RFC 5646 §2.2.1)
_ISO639_2 = {"ara": "ar", "chi": "zh", "zho": "zh", "cze": "cs", "ces": "cs", "dan": "da", "dut": "nl", "nld": "nl",
             "eng": "en", "fin": "fi", "fre": "fr", "fra": "fr", "ger": "de", "deu": "de", "gre": "el", "ell": "el",
             "heb": "he", "hin": "hi", "hun": "hu", "ind": "id", "ita": "it", "jpn": "ja", "kor": "ko", "nor": "no",
             "nob": "nb", "pol": "pl", "por": "pt", "rum": "ro", "ron": "ro", "rus": "ru", "spa": "es", "swe": "sv",
             "tha": "th", "tur": "tr", "ukr": "uk", "vie": "vi", "cat": "ca", "baq": "eu", "eus": "eu", "glg": "gl"}
_ASS_OVERRIDE = re.compile(r"(?<!\\)\{([^}]*)\}")
_ASS_STYLE = re.compile(r"\\([biu])([01])")


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedSubtitle:
    stream_index: int
    codec: str
    language: str | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddedSubtitles:
    tracks: tuple[CaptionTrack, ...]
    skipped: tuple[SkippedSubtitle, ...]

    def as_dict(self) -> dict:
        return {
            "tracks": [{"language": t.language, "name": t.name, "cues": len(t.cues), "forced": t.is_forced,
                        "default": t.is_default} for t in self.tracks],
            "skipped": [{"stream": s.stream_index, "codec": s.codec, "language": s.language, "reason": s.reason}
                        for s in self.skipped],
        }


def extract_subtitles(path: str | os.PathLike, *, duration_s: float,
                      rules: CaptionRules = CaptionRules()) -> EmbeddedSubtitles:
    """Every text subtitle stream of `path` that passes the caption rules, for an episode of `duration_s`.

    One track per (language, forced); a second stream of the same kind is skipped. Raises UnreadableMedia.
    """
    try:
        with av.open(os.fspath(path), metadata_errors="ignore") as container:
            streams = [_describe(stream) for stream in container.streams.subtitles]
            if not streams:
                return EmbeddedSubtitles(tracks=(), skipped=())
            video_start = _video_start_s(container)
            cues_by_stream = _decode_streams(container, list(container.streams.subtitles), video_start)
    except av.FFmpegError as exc:
        raise UnreadableMedia(f"{os.fspath(path)}: reading subtitle streams failed: {exc}") from exc
    tracks, skipped, seen = [], [], set()
    for stream in streams:
        def skip(reason: str) -> None:
            skipped.append(SkippedSubtitle(stream_index=stream.index, codec=stream.codec, language=stream.language,
                                           reason=reason))

        if stream.codec not in TEXT_SUBTITLE_CODECS:
            skip(f"{stream.codec} subtitles are pictures, not text; attach the captions as a .vtt or .srt file")
            continue
        if (stream.language, stream.is_forced) in seen:
            skip(f"another {stream.language} {'forced ' if stream.is_forced else ''}subtitle stream came first")
            continue
        cues, issues = check_cues(cues_by_stream.get(stream.index, []), duration_s=duration_s, rules=rules)
        if issues:
            skip("; ".join(f"{issue.message} [{issue.code}]" for issue in issues))
            continue
        seen.add((stream.language, stream.is_forced))
        tracks.append(CaptionTrack(language=stream.language, name=stream.title or default_name(stream.language),
                                   cues=tuple(cues), is_forced=stream.is_forced,
                                   is_default=stream.is_default and not any(t.is_default for t in tracks),
                                   source="embedded"))
    return EmbeddedSubtitles(tracks=tuple(tracks), skipped=tuple(skipped))


@dataclass(frozen=True, slots=True, kw_only=True)
class _StreamFacts:
    index: int
    codec: str
    language: str
    title: str | None
    is_forced: bool
    is_default: bool


def _describe(stream) -> _StreamFacts:
    raw_language = (stream.metadata.get("language") or "und").lower()
    title = stream.metadata.get("title") or stream.metadata.get("handler_name")
    return _StreamFacts(
        index=stream.index,
        codec=stream.codec_context.name if stream.codec_context is not None else "none",
        language=canonical_language(_ISO639_2.get(raw_language, raw_language)) or "und",
        title=title if title and title != "SubtitleHandler" else None,   # the mp4 muxer's default handler name
        is_forced=bool(stream.disposition & av.stream.Disposition.forced),
        is_default=bool(stream.disposition & av.stream.Disposition.default),
    )


def _video_start_s(container) -> Fraction:
    """Time of the first decoded video picture (the episode's 0), 0 without a decodable one."""
    if not container.streams.video:
        return Fraction(0)
    stream = container.streams.video[0]
    try:
        for frame in container.decode(stream):
            if frame.pts is not None:
                return frame.pts * stream.time_base
    except av.FFmpegError:
        pass
    finally:
        container.seek(0)
    return Fraction(0)


def _decode_streams(container, streams, video_start: Fraction) -> dict[int, list[Cue]]:
    for stream in container.streams:
        if stream.type != "subtitle":
            stream.discard = type(stream.discard).all     # the demuxer skips their data instead of handing it to us
    cues: dict[int, list[Cue]] = {}
    for packet in container.demux(*streams):
        if packet.pts is None or not packet.size or packet.stream.codec_context is None:
            continue
        try:
            subtitle_set = packet.stream.codec_context.decode2(packet)
        except av.FFmpegError:
            continue
        if subtitle_set is None:
            continue
        start = packet.pts * packet.time_base + Fraction(subtitle_set.start_display_time, 1000)
        if packet.duration:
            end = packet.pts * packet.time_base + packet.duration * packet.time_base
        elif 0 < subtitle_set.end_display_time < 0xFFFFFFFF:
            end = packet.pts * packet.time_base + Fraction(subtitle_set.end_display_time, 1000)
        else:
            end = None
        text = "\n".join(_ass_to_vtt(rect.dialogue.decode("utf-8", "replace"))
                         for rect in subtitle_set.rects if getattr(rect, "dialogue", None))
        if not text.strip():
            continue
        start_ms = max(0, round((start - video_start) * 1000))
        end_ms = round((end - video_start) * 1000) if end is not None else None
        cues.setdefault(packet.stream.index, []).append(Cue(start_ms=start_ms, end_ms=end_ms if end_ms else -1,
                                                            text=text))
    return {index: _close_open_ends(found) for index, found in cues.items()}


def _close_open_ends(cues: list[Cue]) -> list[Cue]:
    """A cue without a duration lasts until the next one (as mov_text players show it), 5 s at most."""
    cues.sort(key=lambda cue: cue.start_ms)
    closed = []
    for index, cue in enumerate(cues):
        if cue.end_ms < 0:
            following = cues[index + 1].start_ms if index + 1 < len(cues) else cue.start_ms + 5000
            cue = Cue(start_ms=cue.start_ms, end_ms=min(following, cue.start_ms + 5000), text=cue.text)
        closed.append(cue)
    return closed


def _ass_to_vtt(dialogue: str) -> str:
    """An ASS dialogue text as a WebVTT payload: \\N breaks lines, {\\i1}…{\\i0} become <i>…</i>.

    FFmpeg's text decoders escape literal braces and backslashes (a backslash, then U+2060 WORD JOINER
    where the next letter would read as an ASS escape); those come back as the plain characters.
    """
    dialogue = dialogue.replace("\u2060", "")
    out, position = [], 0
    for match in _ASS_OVERRIDE.finditer(dialogue):
        out.append(escape_cue_text(dialogue[position:match.start()]))
        for tag, on in _ASS_STYLE.findall(match.group(1)):
            out.append(f"<{tag}>" if on == "1" else f"</{tag}>")
        position = match.end()
    out.append(escape_cue_text(dialogue[position:]))
    text = "".join(out).replace("\\N", "\n").replace("\\n", "\n").replace("\\h", "\u00a0")
    text = text.replace("\\{", "{").replace("\\}", "}").replace("\\\\", "\\")
    return "\n".join(line.strip() for line in text.split("\n") if line.strip())
