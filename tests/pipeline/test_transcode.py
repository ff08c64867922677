"""The transcoder's promises, checked by decoding its output with PyAV."""

from __future__ import annotations

import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import pytest

from pipeline.encode.ladder import LadderSettings, plan_ladder
from pipeline.encode.transcode import SMALLER_RUNG_NICENESS, encoder_threads, output_frame_rate, transcode
from tests.support.media import clip

FAST = LadderSettings(preset="superfast")


def first_video_packet(path):
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.video[0]):
            if packet.size:
                return packet


def stream_contents(segments) -> tuple[int, int]:
    """(video frames, audio samples) in a rendition's segments, counted from packets as a player demuxes them."""
    pictures = samples = 0
    for segment in segments:
        with av.open(str(segment.path)) as container:
            for packet in container.demux():
                if packet.size and packet.stream.type == "video":
                    pictures += 1
                elif packet.size:
                    samples += 1024     # one AAC-LC frame per packet
    return pictures, samples


@pytest.fixture(scope="module")
def portrait_no_audio(media_dir):
    return clip(media_dir, "portrait-silent.mp4", duration_s=13, width=270, height=480, fps=Fraction(30000, 1001),
                has_audio=False)


@pytest.fixture(scope="module")
def landscape_30fps(media_dir):
    return clip(media_dir, "landscape-30.mp4", duration_s=19, width=640, height=360, fps=30)


@pytest.mark.parametrize("source, frames, segments", [
    ("landscape_clip", 32 * 25, 6),      # 25 fps: cuts at 6, 12, 18, 24, 30 s
    ("landscape_30fps", 19 * 30, 4),     # 30 fps with B-frames: FFmpeg's time-based cut missed 6 s here
])
def test_renditions_share_idr_cuts_and_exact_durations(request, tmp_path, source, frames, segments):
    result = transcode(request.getfixturevalue(source), plan_ladder(640, 360), tmp_path, FAST)
    assert result.frame_count == frames
    assert all(len(r.segments) == segments for r in result.renditions)
    starts = []
    for rendition in result.renditions:
        durations = [s.duration_s for s in rendition.segments]
        assert sum(durations) == result.duration_s          # exact, not rounded
        assert max(durations) <= 6.5                         # Apple 7.7
        segment_starts = []
        for segment in rendition.segments:
            packet = first_video_packet(segment.path)
            assert packet.is_keyframe, f"{segment.path} does not start with an IDR"
            segment_starts.append(float(packet.pts * packet.time_base))
        starts.append(segment_starts)
        # EXTINF sum against the streams actually written: pictures and AAC frames, within one frame
        pictures, audio_samples = stream_contents(rendition.segments)
        frame_s = 1 / rendition.frame_rate
        assert abs(sum(durations) - pictures * frame_s) < frame_s
        assert abs(float(sum(durations)) - (audio_samples - 1024) / 48000) < float(frame_s)   # minus AAC priming
    assert all(s == starts[0] for s in starts)                # same cut timestamps in every rendition


def test_portrait_source_without_audio_gets_portrait_renditions_and_silent_aac(tmp_path, portrait_no_audio):
    renditions = plan_ladder(270, 480)
    result = transcode(portrait_no_audio, renditions, tmp_path, FAST)
    assert not result.has_source_audio
    for encoded in result.renditions:
        assert encoded.codecs.startswith("avc1.64") and encoded.codecs.endswith(",mp4a.40.2")
        assert encoded.rendition.height > encoded.rendition.width
        with av.open(str(encoded.segments[0].path)) as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert (video.codec_context.width, video.codec_context.height) == (encoded.rendition.width,
                                                                                encoded.rendition.height)
            assert audio.codec_context.name == "aac" and audio.codec_context.sample_rate == 48000
            samples = sum(frame.samples for frame in container.decode(audio))
            assert samples > 48000 * 5
    # 29.97 fps: EXTINF comes from real frame times, 6.006 s, not 6.000 s
    first = result.renditions[0].segments[0]
    assert first.duration_s == Fraction(180 * 1001, 30000)


@pytest.mark.parametrize("source, expected", [
    (Fraction(30000, 1001), Fraction(30000, 1001)),
    (Fraction(2997, 100), Fraction(30000, 1001)),
    (Fraction(120), Fraction(60)),
    (Fraction(25), Fraction(25)),
    (None, Fraction(30)),
])
def test_output_frame_rate_is_natural_and_at_most_60(source, expected):
    assert output_frame_rate(source, 60) == expected


def rotated_clip(path, rotation: int):
    """Stored 96x64 with a white marker in the stored top-left corner, and a display matrix."""
    import numpy as np

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        video.set_display_rotation(rotation)
        for index in range(20):
            rgb = np.full((64, 96, 3), 60, np.uint8)
            rgb[:16, :16] = 255
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 10)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return path


# where the marker must end up: what the ffmpeg CLI's autorotate shows for the same file
@pytest.mark.parametrize("rotation, size, corner", [(90, (64, 96), "bottom-left"), (-90, (64, 96), "top-right"),
                                                    (180, (96, 64), "bottom-right")])
def test_rotation_is_baked_into_the_pixels(tmp_path, rotation, size, corner):
    from pipeline.encode.ladder import Rendition
    from pipeline.inspect.probe import probe

    source = rotated_clip(tmp_path / "phone.mp4", rotation)
    video = probe(source).video
    assert (video.display_width, video.display_height) == size
    rendition = Rendition(name="x", width=size[0], height=size[1], video_bitrate_bps=300_000, audio_bitrate_bps=64_000)
    result = transcode(source, [rendition], tmp_path / "out", FAST)
    with av.open(str(result.renditions[0].segments[0].path)) as container:
        frame = next(container.decode(video=0))
        assert frame.rotation == 0                       # the display matrix is gone: players ignore it
        gray = frame.to_ndarray(format="gray")
    assert gray.shape == (size[1], size[0])
    corners = {"top-left": gray[:8, :8], "top-right": gray[:8, -8:],
               "bottom-left": gray[-8:, :8], "bottom-right": gray[-8:, -8:]}
    assert max(corners, key=lambda name: corners[name].mean()) == corner


def noisy_clip(path, *, seconds: float, width: int, height: int, fps: int = 30):
    """Fresh random grain in every frame plus a moving box: the worst case for a bit-rate cap."""
    import numpy as np

    rng = np.random.default_rng(4)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "20"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=48000, layout="stereo")
        for index in range(round(seconds * fps)):
            rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            x = (index * 7) % (width - 40)
            rgb[40:80, x : x + 40] = 255
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
            samples = (rng.random((2, 1600), dtype=np.float32) - 0.5) * 0.5   # loud noise: hard for AAC too
            sound = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
            sound.sample_rate, sound.pts, sound.time_base = 48000, index * 1600, Fraction(1, 48000)
            container.mux(audio.encode(sound))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path


def test_lowest_rung_peak_with_audio_stays_under_192_kbits(tmp_path):
    from packager.hls.playlist import peak_bandwidth, target_duration

    source = noisy_clip(tmp_path / "grain.mp4", seconds=20, width=416, height=234)
    lowest = plan_ladder(1920, 1080)[-1]
    assert lowest.name == "234p"
    result = transcode(source, [lowest], tmp_path / "out", LadderSettings(preset="veryfast"))
    segments = result.renditions[0].segments
    durations = [s.duration_s for s in segments]
    # published segments are AES-128-CBC ciphertext: PKCS#7 adds up to 16 bytes each
    sizes = [s.path.stat().st_size + 16 for s in segments]
    assert peak_bandwidth(durations, sizes, target_duration(durations)) <= 192_000   # Apple 9.21


def _ts_pids(path: Path) -> list[int]:
    """The PID of every 188-byte TS packet in a segment, in order."""
    data = path.read_bytes()
    assert len(data) % 188 == 0 and data[::188] == b"\x47" * (len(data) // 188)   # whole packets, in sync
    return [((data[i + 1] & 0x1F) << 8) | data[i + 2] for i in range(0, len(data), 188)]


def test_ts_segments_carry_program_tables_at_their_start_not_ten_times_a_second(tmp_path, landscape_30fps):
    result = transcode(landscape_30fps, plan_ladder(640, 360)[-1:], tmp_path, FAST)
    (rendition,) = result.renditions
    for segment in rendition.segments:
        pids = _ts_pids(segment.path)
        first_media = next(i for i, pid in enumerate(pids) if 0x100 <= pid < 0x1000)   # FFmpeg's stream PIDs
        assert set(pids[:first_media]) >= {0x0000, 0x1000}                      # PAT and PMT open the segment
        # and come again only before each IDR (one every 2 s), not every 0.1 s as FFmpeg >= 6 repeats them
        idrs = math.ceil(segment.duration_s / 2)
        assert pids.count(0x0000) <= idrs + 1 and pids.count(0x1000) <= idrs + 1
        assert pids.count(0x0011) <= 1                                          # the SDT, which HLS never reads


def test_quality_check_measures_psnr_per_rung_and_flags_a_low_one(tmp_path, landscape_30fps):
    renditions = plan_ladder(640, 360)
    strict = LadderSettings(preset="superfast", min_psnr_db=60.0)   # nothing lossy reaches 60 dB
    result = transcode(landscape_30fps, renditions, tmp_path, strict)
    for encoded in result.renditions:
        quality = encoded.quality
        assert quality is not None and quality.sample_count >= 2
        assert 20 < quality.min_psnr_db <= quality.psnr_db < 60
        assert quality.is_below_threshold
    assert len(result.quality_warnings) == len(renditions)
    # the bigger rung, at a higher bit rate per pixel of a smooth picture, scores higher
    assert result.renditions[0].quality.psnr_db > result.renditions[1].quality.psnr_db


def test_progress_reports_speed_and_eta(tmp_path, landscape_30fps):
    seen = []
    transcode(landscape_30fps, plan_ladder(640, 360)[-1:], tmp_path, FAST, on_progress=seen.append)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) > 5
    assert seen[-1].media_s == pytest.approx(19.0) and seen[-1].duration_s == pytest.approx(19.0, abs=0.1)
    assert all(p.speed_x > 0 for p in seen[1:]) and seen[-1].eta_s == 0.0
    assert seen[len(seen) // 2].eta_s > 0


FLASHES_S = (2.0, 5.3, 8.75)


def vfr_clip_with_flashes(path):
    """Irregular frame times (20-100 ms gaps, as phones record) with white flashes and beeps together.

    Returns the source times at which the flashes are first seen (and heard): the first frame at or
    after each of FLASHES_S."""
    import numpy as np

    gaps_ms = [20, 50, 33, 100, 40, 70]
    pts_ms = [0]
    while pts_ms[-1] < 11_000:
        pts_ms.append(pts_ms[-1] + gaps_ms[len(pts_ms) % len(gaps_ms)])
    starts_s = [min(t for t in pts_ms if t >= flash * 1000) / 1000 for flash in FLASHES_S]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 160, 96, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        audio = container.add_stream("aac", rate=48000, layout="stereo")
        for t_ms in pts_ms:
            lit = any(start * 1000 <= t_ms < start * 1000 + 300 for start in starts_s)
            frame = av.VideoFrame.from_ndarray(np.full((96, 160, 3), 235 if lit else 20, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t_ms, Fraction(1, 1000)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        t = np.arange(round(pts_ms[-1] / 1000 * 48000)) / 48000
        wave = np.zeros_like(t, dtype=np.float32)
        for start in starts_s:
            on = (t >= start) & (t < start + 0.3)
            wave[on] = 0.5 * np.sin(2 * np.pi * 1000 * t[on])
        for start in range(0, len(t), 4800):
            chunk = wave[start : start + 4800]
            sound = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
            sound.sample_rate, sound.pts, sound.time_base = 48000, start, Fraction(1, 48000)
            container.mux(audio.encode(sound))
        container.mux(audio.encode(None))
    return starts_s


def onsets(times_and_levels, threshold):
    """Times where a level first rises above `threshold` after being below it."""
    found, was_on = [], False
    for t, level in times_and_levels:
        if level > threshold and not was_on:
            found.append(t)
        was_on = level > threshold
    return found


def test_vfr_source_is_resampled_by_timestamp_and_audio_stays_in_sync(tmp_path):
    import numpy as np

    source = tmp_path / "vfr.mp4"
    flashes_s = vfr_clip_with_flashes(source)
    rendition = plan_ladder(160, 96)[0]
    result = transcode(source, [rendition], tmp_path / "out", FAST)
    encoded = result.renditions[0]
    step = 1 / float(encoded.frame_rate)
    pictures, sound = [], []
    for segment in encoded.segments:
        with av.open(str(segment.path)) as container:
            for frame in container.decode(video=0):
                pictures.append((float(frame.pts * frame.time_base), frame.to_ndarray(format="gray").mean()))
        with av.open(str(segment.path)) as container:
            for frame in container.decode(audio=0):
                start = float(frame.pts * frame.time_base)
                left = np.abs(frame.to_ndarray()[0])
                # 1 ms windows: the beep's onset to the millisecond
                for i in range(0, len(left), 48):
                    sound.append((start + i / 48000, float(left[i : i + 48].max())))
    # constant frame rate out, whatever the gaps in
    gaps = np.diff([t for t, _ in pictures])
    assert np.allclose(gaps, step, atol=1e-3)
    first_video = pictures[0][0]
    video_onsets = [t - first_video for t in onsets(pictures, 128)]
    audio_onsets = [t - first_video for t in onsets(sound, 0.1)]
    assert len(video_onsets) == len(audio_onsets) == len(flashes_s)
    for flash, seen, heard in zip(flashes_s, video_onsets, audio_onsets):
        assert abs(seen - flash) <= step + 1e-3          # each flash lands where its timestamp says
        assert abs(seen - heard) <= step + 1e-3          # and the beep with it, within one frame


@pytest.fixture(scope="module")
def landscape_60fps(media_dir):
    return clip(media_dir, "landscape-60.mp4", duration_s=4, width=320, height=180, fps=60)


# At 60 fps a frame (16.7 ms) is shorter than the AAC encoder's priming packet (1024 samples, 21.3 ms).
@pytest.mark.parametrize("source", ["landscape_30fps", "landscape_60fps"])
def test_audio_and_video_start_within_one_frame_in_every_rendition(request, tmp_path, source):
    path = request.getfixturevalue(source)
    with av.open(str(path)) as container:
        width, height = container.streams.video[0].width, container.streams.video[0].height
    result = transcode(path, plan_ladder(width, height), tmp_path, FAST)
    for encoded in result.renditions:
        starts: dict[str, float] = {}
        with av.open(str(encoded.segments[0].path)) as container:
            for packet in container.demux():
                if packet.pts is not None:
                    t = float(packet.pts * packet.time_base)
                    starts[packet.stream.type] = min(t, starts.get(packet.stream.type, t))
        assert abs(starts["video"] - starts["audio"]) <= 1 / float(encoded.frame_rate)


def test_no_rung_is_upscaled_beyond_the_source(tmp_path, portrait_no_audio):
    result = transcode(portrait_no_audio, plan_ladder(270, 480), tmp_path, FAST)
    for encoded in result.renditions:
        assert encoded.rendition.width <= 270 and encoded.rendition.height <= 480


def test_importing_the_transcoder_leaves_numpy_to_the_quality_thread():
    # numpy is a third of a transcode's start-up; pipeline/encode/quality.py imports it on its own thread
    # while the first frames decode. A fresh interpreter, since this one has numpy loaded already.
    code = "import sys, pipeline.encode.transcode; print('numpy' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[2])
    assert found.stdout.strip() == "False"


def test_each_encoder_gets_one_thread_until_there_are_more_cores_than_rungs():
    ladder = plan_ladder(1920, 1080)                       # 5 rungs, 1080p first
    for cores in (1, 2, 5):
        assert [t.count for t in encoder_threads(ladder, cores)] == [1] * 5
    # the largest rung is the longest serial chain: it keeps the decoder's priority, the rest yield
    assert [t.niceness for t in encoder_threads(ladder, 2)] == [0] + [SMALLER_RUNG_NICENESS] * 4

    for cores in (6, 8, 16, 64):
        counts = [t.count for t in encoder_threads(ladder, cores)]
        assert sum(counts) == cores and min(counts) >= 1
        assert counts == sorted(counts, reverse=True)       # spare cores follow pixels
    assert [t.count for t in encoder_threads(ladder, 16)][:2] == [7, 4]

    (only,) = encoder_threads(plan_ladder(416, 234), 2)
    assert only == (2, 0)
    twins = plan_ladder(1280, 720)[:1] * 2
    assert [t.niceness for t in encoder_threads(twins, 2)] == [0, 0]
    assert encoder_threads([], 2) == []
