"""One rendition of a transcode: its scaler, its H.264 and AAC encoders and FFmpeg's segment muxer, on its own thread.

pipeline/encode/transcode.py decodes the source once and hands every rendition the same frames; each
RenditionOutput scales, encodes and muxes them on its Worker thread and, once closed, describes what it
wrote as an EncodedRendition.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from pipeline.encode import fmp4
from pipeline.encode.audio import AUDIO_RATE
from pipeline.encode.h264 import avc1_codec, find_sps
from pipeline.encode.ladder import LadderSettings, Rendition
from pipeline.encode.quality import QualityCheck, RenditionQuality
from pipeline.encode.worker import Worker
from pipeline.errors import TranscodeError


class EncoderThreads(NamedTuple):
    """How one rendition's encoder uses the machine (see pipeline/encode/transcode.py encoder_threads())."""

    count: int = 0          # x264 threads; 0 lets x264 choose (1.5 per core)
    niceness: int = 0       # how far below the decoding thread this rendition's threads run


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodedSegment:
    index: int
    path: Path
    start_s: Fraction
    duration_s: Fraction


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodedRendition:
    rendition: Rendition
    codecs: str                  # RFC 6381, read from the encoder's own SPS: "avc1.64001f,mp4a.40.2"
    frame_rate: Fraction
    segments: tuple[EncodedSegment, ...]
    quality: RenditionQuality | None = None   # sampled luma PSNR against the source scaled to this rung
    init_path: Path | None = None  # fMP4 only: the clear init segment (ftyp+moov) that EXT-X-MAP names


class RenditionOutput:
    """One rendition: its scaler, its H.264 and AAC encoders, and FFmpeg's segment muxer (mp4 for fMP4)."""

    def __init__(self, rendition: Rendition, directory: Path, fps: Fraction, settings: LadderSettings,
                 segment_frames: str, quality_check: QualityCheck,
                 fmp4_options: dict[str, str] | None = None, threads: EncoderThreads = EncoderThreads()) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.rendition = rendition
        self.directory = directory
        self.fps = fps
        self.list_path = directory / "segments.csv"
        # fMP4: one fragmented file, cut into init + segments once closed (see pipeline/encode/fmp4.py)
        self.fmp4_options = fmp4_options
        self.init_path: Path | None = None
        self.fmp4_segments: list[Path] = []
        self.container = av.open(str(directory / fmp4.FRAGMENTED_NAME), "w", format="mp4",
                                 options=fmp4_options) if fmp4_options is not None else av.open(
            str(directory / "seg_%05d.ts"),
            "w",
            format="segment",
            options={
                "segment_format": "mpegts",
                # cut by frame number, not time: the muxer's time test misses the first cut at
                # 30 fps with B-frames (8.07 s instead of 6.07 s); a closed GOP's IDR has the same
                # index in decode and display order, so the frame count is exact
                "segment_frames": segment_frames,
                "segment_list": str(self.list_path),
                "segment_list_type": "csv",
                # let the TS muxer gather up to 0.7 s of AAC frames per PES packet, as the ffmpeg CLI
                # does (-muxdelay 0.7): one ~100-byte AAC frame per 188-byte TS packet nearly doubles
                # the lowest rung's audio cost. PAT/PMT only where a player needs them, at the start of
                # each segment (RFC 8216 3.2; each segment gets a fresh TS muxer, which opens with
                # them) and before each IDR, as the ffmpeg CLI 5.1 writes them:
                # FFmpeg's muxer since 6.0 repeats them every 0.1 s (and the SDT every 0.5 s) for
                # broadcast tune-in, ~30 kbit/s, a sixth of the lowest rung's whole budget.
                "segment_format_options": "max_delay=700000:pat_period=3600:sdt_period=3600",
            },
        )
        gop = math.ceil(Fraction(settings.gop_s) * fps)
        self.video = self.container.add_stream("libx264", rate=fps)
        self.video.width, self.video.height = rendition.width, rendition.height
        self.video.pix_fmt = "yuv420p"
        # PyAV defaults encoders to slice threading, which makes libx264 cut every picture into slices
        # (sliced-threads=1): frame threading, as the ffmpeg CLI uses, when count > 1. With one,
        # x264 starts no threads of its own and encodes on this rendition's worker thread.
        self.video.codec_context.thread_type = "AUTO"
        self.video.codec_context.thread_count = threads.count
        self.video.time_base = 1 / fps
        self.video.codec_context.time_base = 1 / fps
        # average bit rate (the fixed ladder), or constant quality under the same kind of VBV cap (per-title)
        rate_control = {"crf": f"{rendition.crf:g}"} if rendition.is_constant_quality else {}
        if not rendition.is_constant_quality:
            self.video.bit_rate = rendition.video_bitrate_bps
        self.video.options = {
            "preset": settings.preset,
            "profile": "high",
            "forced-idr": "1",
            **rate_control,
            # GOPs are closed and only where we force them: no scene-cut IDRs, no open GOP
            "x264-params": (
                f"keyint={gop + 1}:min-keyint={gop + 1}:scenecut=0:open-gop=0:"
                f"vbv-maxrate={rendition.maxrate_bps // 1000}:vbv-bufsize={rendition.bufsize_bits // 1000}"
            ),
        }
        # the muxer needs the AAC stream's parameters; its packets come from the shared AudioTrack encoder
        self.audio = self.container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        self.audio.bit_rate = rendition.audio_bitrate_bps
        self.pending_audio: list = []
        self.sps: bytes | None = None
        self.idr_indexes: list[int] = []
        self.scaler = VideoReformatter()
        self.quality_check = quality_check
        self.listed_bytes = 0            # size of segments.csv when last read: it grows as segments close
        self.quality: RenditionQuality | None = None
        self.worker = Worker(f"encode-{rendition.name}", niceness=threads.niceness)

    def submit(self, work, *args) -> None:
        """Queue scaling/encoding for this rendition's thread; raises if that thread has failed."""
        self.worker.submit(work, *args)

    def take_audio(self) -> list:
        """Hand the AAC packets queued since the last call to this rendition's thread (main thread)."""
        packets, self.pending_audio = self.pending_audio, []
        return packets

    def mux_audio(self, packets: list) -> None:
        for packet in packets:
            packet.stream = self.audio
        self.container.mux(packets)

    def encode_video(self, frame, index: int, is_idr: bool, audio_packets: list) -> None:
        self.mux_audio(audio_packets)
        # its own scaler: frame.reformat() caches one SwsContext on the shared source frame,
        # and the rendition threads would all be using it at once. One swscale thread each: the
        # renditions already scale in parallel, and sliced scaling on top only adds hand-offs.
        # Bilinear is also what the benchmark asks of the ffmpeg CLI's scale filter.
        out = self.scaler.reformat(frame, self.rendition.width, self.rendition.height, "yuv420p",
                                   interpolation="BILINEAR", threads=1)
        self.quality_check.keep(index, out)
        out.pts = index
        out.time_base = self.video.codec_context.time_base
        # decoded frames carry their source picture type; only our grid decides where IDRs go
        out.pict_type = PictureType.I if is_idr else PictureType.NONE
        if is_idr:
            self.idr_indexes.append(index)
        self._mux(self.video.encode(out))
        if self.quality_check.is_waiting and self.fmp4_options is None:
            self._check_closed_segments()

    def _check_closed_segments(self) -> None:
        # The segment muxer lists a segment when it closes it, inside the mux() call that just returned
        # on this thread, so every listed file is complete. A stat per frame while a sample waits.
        try:
            size = self.list_path.stat().st_size
        except FileNotFoundError:
            return
        if size != self.listed_bytes:
            self.listed_bytes = size
            self.quality_check.segments_closed([self.directory / name for name in self._segment_files()])

    def _mux(self, packets) -> None:
        if self.sps is None:
            for packet in packets:
                if packet.stream.type == "video" and packet.is_keyframe:
                    # the muxers ask for global headers, so the SPS lives in the (small) extradata; the
                    # keyframe is scanned only without one, since find_sps() walks every byte of a ~0.5 MB
                    # 1080p IDR in Python, ~0.1 s holding the GIL that the feeding main thread needs
                    self.sps = find_sps(self.video.codec_context.extradata or b"") or find_sps(bytes(packet))
                    break
        self.container.mux(packets)

    def queued_work(self) -> int:
        """How many calls wait in this rendition's queue."""
        return self.worker.queue.qsize()

    def start_finish(self) -> None:
        """Queue the encoder flush and the muxer close behind the work already queued."""
        self.worker.submit(self._flush)
        self.worker.submit(None)

    def wait_finished(self) -> None:
        """Wait until start_finish()'s work is done; re-raise this rendition's failure."""
        self.worker.join()

    def _flush(self) -> None:
        self._mux(self.video.encode(None))
        self.container.close()
        if self.fmp4_options is not None:
            self.init_path, self.fmp4_segments = fmp4.split(self.directory)
        # what is left (TS: the last segment; fMP4: all, cut only now) is checked on this rendition's
        # thread, so the renditions finish their checks in parallel
        self.quality = self.quality_check.finish([self.directory / name for name in self._segment_files()],
                                                 init_path=self.init_path)

    def _segment_files(self) -> list[str]:
        if self.fmp4_options is not None:
            return [path.name for path in self.fmp4_segments]
        with self.list_path.open(newline="") as handle:
            return [row[0] for row in csv.reader(handle) if row]

    def abort(self) -> None:
        self.worker.cancel()
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - already failing; the directory is discarded
            pass

    def collect(self, segment_bounds: list[int]) -> EncodedRendition:
        files = self._segment_files()
        if len(files) != len(segment_bounds) - 1:
            raise TranscodeError(
                f"{self.rendition.name}: muxer cut {len(files)} segments where the frame grid has "
                f"{len(segment_bounds) - 1}; keyframes are not where they were forced"
            )
        segments = tuple(
            EncodedSegment(
                index=i,
                path=self.directory / name,
                start_s=Fraction(segment_bounds[i]) / self.fps,
                duration_s=Fraction(segment_bounds[i + 1] - segment_bounds[i]) / self.fps,
            )
            for i, name in enumerate(files)
        )
        if self.sps is None:
            raise TranscodeError(f"{self.rendition.name}: the encoder produced no keyframe")
        return EncodedRendition(
            rendition=self.rendition,
            codecs=f"{self._video_codec()},mp4a.40.2",
            frame_rate=self.fps,
            segments=segments,
            quality=self.quality,
            init_path=self.init_path,
        )

    def _video_codec(self) -> str:
        # the mp4 muxer copies profile, constraints and level from this SPS into the init's avcC
        return avc1_codec(self.sps)
