"""read_captions(): judge a creator's caption file (WebVTT or SRT) for an episode, like validate() judges video.

Parsing is webvtt-py's (one well-kept library for both formats, no dependencies of its own; pysrt
reads only SRT and has not been released since 2020, pycaption pulls in beautifulsoup4, lxml and
cssutils for formats we do not take). What it cannot tell us (a cue block it skipped, text it
accepted in an encoding it guessed) is checked here, and every refusal is an Issue with a stable
code and a how-to-fix, collected in a CaptionReport; the caller decides to stop.

Encoding: captions are UTF-8 (WebVTT requires it). A UTF-8 byte-order mark is dropped, and so is a
UTF-16 one after decoding (Windows Notepad's "Unicode" saves; the mark makes it unambiguous). Any
other non-UTF-8 file is refused, except an SRT whose track language is written in Windows-1252
(Western European languages, LEGACY_CP1252_LANGUAGES) and whose every byte is defined there: old
subtitle editors save those as cp1252, and for those languages the reading is unambiguous. The
same bytes in Polish or Russian would be cp1250 or cp1251, so they are refused with a reason.

Reason codes (stable):
    caption_empty          no bytes, or nothing but whitespace
    caption_too_large      over CaptionRules.max_size_bytes
    caption_binary         not text: NUL or other control bytes, or a known binary file signature
    caption_not_utf8       not UTF-8 and not convertible as described above
    caption_unknown_format neither WebVTT (a WEBVTT first line) nor SRT (a numbered cue with -->)
    caption_malformed_cue  a cue whose timing line does not parse (line numbers in the message)
    caption_no_cues        parsed, but there are no cues
    caption_end_before_start a cue that ends at or before its start
    caption_out_of_order   a cue that starts before the one above it
    caption_past_end       a cue that starts at or after the episode's end
    caption_cue_too_long   a cue displayed longer than the episode, or than max_cue_s
    caption_too_many_on_screen more than max_on_screen cues shown at once
    caption_line_too_long  a line over max_line_chars characters (tags not counted)
    caption_too_many_lines a cue over max_lines_per_cue lines
    caption_too_many_cues  over max_cues cues
    caption_language       not a well-formed BCP 47 language tag
    caption_name           a track name that is empty, too long, or holds quotes or line breaks
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from pipeline.inspect.validate import Issue

LEGACY_CP1252_LANGUAGES = frozenset({
    "af", "ca", "da", "de", "en", "es", "eu", "fi", "fo", "fr", "ga", "gl", "id", "is", "it", "ms", "nb",
    "nl", "nn", "no", "pt", "sq", "sv", "sw"})
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")
_BINARY_SIGNATURES = (b"\x00\x00\x00", b"\x1aE\xdf\xa3", b"PK\x03\x04", b"%PDF", b"\x89PNG", b"\xff\xd8\xff",
                      b"GIF8", b"RIFF", b"ID3", b"\x1f\x8b", b"OggS")
# BCP 47 (RFC 5646 §2.1) language-[script]-[region]-*variant, and the private-use x-… tail; no grandfathered tags
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[a-z]{4})?(-([a-z]{2}|\d{3}))?(-([a-z\d]{5,8}|\d[a-z\d]{3}))*"
                           r"(-x(-[a-z\d]{1,8})+)?", re.IGNORECASE)
_SRT_TAG = re.compile(r"</?(font|span)\b[^>]*>|\{\\[^}]*\}", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_TIMING = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)")
MAX_LISTED = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptionRules:
    max_size_bytes: int = 4 * 1024 * 1024
    max_cues: int = 20_000
    max_line_chars: int = 80          # a broadcast line is 32-42; beyond 80 it is a paragraph, not a caption
    max_lines_per_cue: int = 4
    max_on_screen: int = 4
    max_cue_s: float = 5 * 60.0
    # a cue may run this far past the end of the episode: it is cut at the end (rounding of exported files)
    past_end_tolerance_s: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str                         # a WebVTT cue payload: lines joined by "\n", cue tags allowed
    settings: str = ""                # WebVTT cue settings ("line:0 align:start"), "" for none


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptionTrack:
    language: str                     # BCP 47, canonical case: "fr", "pt-BR", "zh-Hant"
    name: str                         # what players list
    cues: tuple[Cue, ...] = field(repr=False)
    is_default: bool = False
    is_forced: bool = False           # only the text a viewer needs when hearing the audio (signs, foreign dialogue)
    source: str = "upload"            # "upload" or "embedded"

    @property
    def track_id(self) -> str:
        """Directory-safe and unique per (language, forced): "fr", "fr_forced" ('_' never occurs in BCP 47)."""
        return f"{self.language}_forced" if self.is_forced else self.language


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptionReport:
    track: CaptionTrack | None        # None when refused
    issues: tuple[Issue, ...] = ()
    notes: tuple[str, ...] = ()       # what was changed on the way in (encoding converted, cues cut at the end)
    format: str | None = None         # "webvtt" or "srt"

    @property
    def is_acceptable(self) -> bool:
        return not self.issues

    def as_dict(self) -> dict:
        return {
            "verdict": "accepted" if self.is_acceptable else "rejected",
            "format": self.format,
            "language": self.track.language if self.track else None,
            "name": self.track.name if self.track else None,
            "cues": len(self.track.cues) if self.track else 0,
            "notes": list(self.notes),
            "issues": [{"code": i.code, "message": i.message, "how_to_fix": i.how_to_fix} for i in self.issues],
        }


def canonical_language(tag: str) -> str | None:
    """The tag in BCP 47's conventional case ("pt-br" -> "pt-BR"), or None if it is not well-formed."""
    if not _LANGUAGE_TAG.fullmatch(tag or ""):
        return None
    parts, out, is_private = tag.split("-"), [], False
    for index, part in enumerate(parts):
        is_private = is_private or part.lower() == "x"
        if index == 0 or is_private or len(part) not in (2, 4) or part.isdigit():
            out.append(part.lower())
        else:
            out.append(part.title() if len(part) == 4 else part.upper())
    return "-".join(out)


def read_captions(data: bytes, *, language: str, duration_s: float, name: str | None = None,
                  is_default: bool = False, is_forced: bool = False,
                  rules: CaptionRules = CaptionRules()) -> CaptionReport:
    """Judge `data` (a WebVTT or SRT file) as the `language` captions of an episode lasting `duration_s`."""
    issues, notes = [], []
    canonical = canonical_language(language)
    if canonical is None:
        issues.append(Issue(code="caption_language", message=f"{language!r} is not a BCP 47 language tag",
                            how_to_fix="use a tag such as en, fr, pt-BR or zh-Hant"))
    track_name = name if name is not None else default_name(canonical or language)
    if not track_name.strip() or len(track_name) > 64 or any(c in track_name for c in '"\r\n'):
        issues.append(Issue(code="caption_name", message=f"track name {track_name!r} cannot be listed by players",
                            how_to_fix="give a name of 1-64 characters without quotes or line breaks"))
    text, format_issue = _decode(data, canonical or "", rules, notes)
    if format_issue is not None:
        return CaptionReport(track=None, issues=(*issues, format_issue), notes=tuple(notes))
    caption_format, cues, parse_issues = _parse(text)
    issues += parse_issues
    if caption_format is not None and not parse_issues:
        cues, cue_issues = check_cues(cues, duration_s=duration_s, rules=rules, notes=notes)
        issues += cue_issues
    if issues:
        return CaptionReport(track=None, issues=tuple(issues), notes=tuple(notes), format=caption_format)
    track = CaptionTrack(language=canonical, name=track_name, cues=tuple(cues), is_default=is_default,
                         is_forced=is_forced)
    return CaptionReport(track=track, notes=tuple(notes), format=caption_format)


def check_cues(cues: Sequence[Cue], *, duration_s: float, rules: CaptionRules = CaptionRules(),
               notes: list[str] | None = None) -> tuple[list[Cue], list[Issue]]:
    """The cues as they will be published (cut at the episode's end) and every rule they break.

    Also used for subtitle streams embedded in an upload (pipeline/captions/subtitles.py).
    """
    notes = [] if notes is None else notes
    end_ms = round(duration_s * 1000)
    found: dict[str, list[str]] = {}

    def problem(code: str, where: str) -> None:
        found.setdefault(code, []).append(where)

    if not cues:
        return [], [Issue(code="caption_no_cues", message="the file has no cues",
                          how_to_fix="export the captions again with their cues")]
    if len(cues) > rules.max_cues:
        problem("caption_too_many_cues", f"{len(cues)} cues")
    kept, cut, previous_start = [], 0, -1
    for number, cue in enumerate(cues, start=1):
        where = f"cue {number} ({_clock(cue.start_ms)})"
        if cue.end_ms <= cue.start_ms:
            problem("caption_end_before_start", where)
        if cue.start_ms < previous_start:
            problem("caption_out_of_order", where)
        previous_start = cue.start_ms
        if cue.start_ms >= end_ms:
            problem("caption_past_end", where)
        elif cue.end_ms - cue.start_ms > min(end_ms, rules.max_cue_s * 1000):
            problem("caption_cue_too_long", f"{where}: {(cue.end_ms - cue.start_ms) / 1000:g} s")
        elif cue.end_ms > end_ms + rules.past_end_tolerance_s * 1000:
            problem("caption_past_end", f"{where} ends at {_clock(cue.end_ms)}")
        elif cue.end_ms > end_ms:
            cut += 1
            cue = Cue(start_ms=cue.start_ms, end_ms=end_ms, text=cue.text, settings=cue.settings)
        lines = cue.text.split("\n")
        if len(lines) > rules.max_lines_per_cue:
            problem("caption_too_many_lines", f"{where}: {len(lines)} lines")
        longest = max(len(_TAG.sub("", line)) for line in lines)
        if longest > rules.max_line_chars:
            problem("caption_line_too_long", f"{where}: {longest} characters")
        kept.append(cue)
    crowded = _most_on_screen(kept)
    if crowded[0] > rules.max_on_screen:
        problem("caption_too_many_on_screen", f"{crowded[0]} cues at {_clock(crowded[1])}")
    if cut:
        notes.append(f"{cut} cue(s) ending less than {rules.past_end_tolerance_s:g} s after the episode were cut "
                     "at its end")
    return kept, [_issue(code, places, duration_s, rules) for code, places in found.items()]


def _issue(code: str, places: list[str], duration_s: float, rules: CaptionRules) -> Issue:
    more = len(places) - MAX_LISTED
    listed = "; ".join(places[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")
    text = {
        "caption_too_many_cues": (f"too many cues ({listed}; at most {rules.max_cues})",
                                  "split the captions or check the file is the right one"),
        "caption_end_before_start": (f"cues that end at or before they start: {listed}",
                                     "fix these cues' end times"),
        "caption_out_of_order": (f"cues that start before the cue above them: {listed}",
                                 "sort the cues by start time (most subtitle editors have a 'sort' command)"),
        "caption_past_end": (f"cues after the end of the episode ({_clock(round(duration_s * 1000))}): {listed}",
                             "check the captions belong to this episode and its cut, or remove those cues"),
        "caption_cue_too_long": (f"cues shown longer than the episode or {rules.max_cue_s:g} s: {listed}",
                                 "fix these cues' end times"),
        "caption_too_many_lines": (f"cues with more than {rules.max_lines_per_cue} lines: {listed}",
                                   "split these cues"),
        "caption_line_too_long": (f"lines over {rules.max_line_chars} characters: {listed}",
                                  "break these lines (42 characters is the usual maximum)"),
        "caption_too_many_on_screen": (f"more than {rules.max_on_screen} cues on screen at once: {listed}",
                                       "check for overlapping or duplicated cues"),
    }[code]
    return Issue(code=code, message=text[0], how_to_fix=text[1])


def _most_on_screen(cues: Sequence[Cue]) -> tuple[int, int]:
    events = sorted([(c.start_ms, 1) for c in cues] + [(c.end_ms, -1) for c in cues])  # ends sort first at ties
    most, at, showing = 0, 0, 0
    for time_ms, change in events:
        showing += change
        if showing > most:
            most, at = showing, time_ms
    return most, at


def _decode(data: bytes, language: str, rules: CaptionRules, notes: list[str]) -> tuple[str, Issue | None]:
    if len(data) > rules.max_size_bytes:
        return "", Issue(code="caption_too_large", message=f"the file is {len(data)} bytes, over "
                         f"{rules.max_size_bytes}", how_to_fix="check the file is a caption file, not a video")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
            notes.append("converted from UTF-16 (byte-order mark) to UTF-8")
            data = text.encode()
        except UnicodeDecodeError:
            pass
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
        notes.append("UTF-8 byte-order mark removed")
    if not data.strip():
        return "", Issue(code="caption_empty", message="the caption file is empty",
                         how_to_fix="upload the .vtt or .srt file with the captions")
    if data.startswith(_BINARY_SIGNATURES) or any(byte in data for byte in (0, 0x7F)) or sum(
            byte < 0x20 and byte not in b"\t\n\r\f" for byte in data[:4096]) > 0:
        return "", Issue(code="caption_binary", message="the file is not text (it holds binary data)",
                         how_to_fix="upload the WebVTT (.vtt) or SubRip (.srt) file, not a video or a document")
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        where = exc.start
    is_srt = not data.lstrip().startswith(b"WEBVTT")
    primary = language.split("-")[0]
    if is_srt and primary in LEGACY_CP1252_LANGUAGES and not _CP1252_UNDEFINED & set(data):
        notes.append("converted from Windows-1252 to UTF-8")
        return data.decode("cp1252"), None
    reason = ("WebVTT files must be UTF-8" if not is_srt else
              f"an SRT file in this language ({language or 'unknown'}) cannot be read unambiguously from another "
              "encoding" if primary not in LEGACY_CP1252_LANGUAGES else "it is not Windows-1252 either")
    return "", Issue(code="caption_not_utf8", message=f"the file is not UTF-8 (byte {where}): {reason}",
                     how_to_fix="save the file as UTF-8 in your subtitle editor and upload it again")


def _parse(text: str) -> tuple[str | None, list[Cue], list[Issue]]:
    stripped = text.lstrip()
    is_vtt = stripped.startswith("WEBVTT")
    try:
        if is_vtt:
            parsed = webvtt.from_string(stripped, strict=True)
        else:
            parsed = webvtt.from_buffer(io.StringIO(stripped), format="srt")
    except (MalformedFileError, MalformedCaptionError) as exc:
        if not is_vtt and not _looks_like_srt(stripped):
            return None, [], [Issue(code="caption_unknown_format",
                                    message="the file is neither WebVTT (first line WEBVTT) nor SRT "
                                            "(numbered cues with 'start --> end' lines)",
                                    how_to_fix="export the captions as .vtt or .srt")]
        return ("webvtt" if is_vtt else "srt"), [], [Issue(
            code="caption_malformed_cue", message=f"a cue cannot be read: {exc}",
            how_to_fix="fix the cue's timing line: 00:01:02.500 --> 00:01:04.000")]
    captions = list(parsed.captions)
    # webvtt-py skips SRT cue blocks whose timing line does not parse: find them rather than lose them
    timing_lines = [number for number, line in enumerate(stripped.splitlines(), start=1) if _TIMING.match(line)]
    if len(timing_lines) != len(captions) and not is_vtt:
        bad = [n for n in timing_lines if not _timing_parses(stripped.splitlines()[n - 1])]
        return "srt", [], [Issue(code="caption_malformed_cue",
                                 message="cues whose timing line cannot be read, at line(s) "
                                         + ", ".join(map(str, bad[:MAX_LISTED])),
                                 how_to_fix="fix those lines to read 00:01:02,500 --> 00:01:04,000")]
    cues = [_cue(caption, is_vtt) for caption in captions]
    return ("webvtt" if is_vtt else "srt"), [c for c in cues if c.text.strip()], []


def _cue(caption, is_vtt: bool) -> Cue:
    lines = [line.rstrip() for line in caption.lines]
    if is_vtt:
        text, settings = "\n".join(lines), str(caption.settings or "")
    else:
        # SRT: <b>/<i>/<u> are WebVTT tags too; <font>, ASS {\an8}-style overrides and anything else go
        text, settings = "\n".join(escape_cue_text(_SRT_TAG.sub("", line), keep_basic_tags=True) for line in lines), ""
    return Cue(start_ms=caption.start_time.in_milliseconds(), end_ms=caption.end_time.in_milliseconds(),
               text=text, settings=settings)


_BASIC_TAG = re.compile(r"</?[biu]>", re.IGNORECASE)


def escape_cue_text(text: str, *, keep_basic_tags: bool = False) -> str:
    """Plain text as a WebVTT cue payload: &, < and > escaped; with `keep_basic_tags`, <b>, <i>, <u> kept."""
    pieces, position = [], 0
    for match in (_BASIC_TAG.finditer(text) if keep_basic_tags else ()):
        pieces.append(_escape(text[position:match.start()]))
        pieces.append(match.group(0).lower())
        position = match.end()
    pieces.append(_escape(text[position:]))
    return "".join(pieces).replace("-->", "--&gt;")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _looks_like_srt(text: str) -> bool:
    return any(_TIMING.match(line) for line in text.splitlines()[:20])


def _timing_parses(line: str) -> bool:
    match = _TIMING.match(line)
    if not match:
        return False
    try:
        for value in match.groups():
            webvtt.models.Timestamp.from_string(value.replace(",", "."))
    except MalformedCaptionError:
        return False
    return True


def _clock(milliseconds: int) -> str:
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


_ENDONYMS = {"ar": "العربية", "da": "Dansk", "de": "Deutsch", "el": "Ελληνικά", "en": "English", "es": "Español",
             "fi": "Suomi", "fr": "Français", "he": "עברית", "hi": "हिन्दी", "id": "Bahasa Indonesia",
             "it": "Italiano", "ja": "日本語", "ko": "한국어", "nl": "Nederlands", "no": "Norsk", "nb": "Norsk bokmål",
             "pl": "Polski", "pt": "Português", "ru": "Русский", "sv": "Svenska", "th": "ไทย", "tr": "Türkçe",
             "uk": "Українська", "vi": "Tiếng Việt", "zh": "中文"}


def default_name(language: str) -> str:
    """What players list for a track without a name: the language's own name, else the tag."""
    return _ENDONYMS.get(language.split("-")[0].lower(), language)
