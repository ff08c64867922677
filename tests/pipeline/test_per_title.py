"""Per-title ladders on real (small, generated) media: probes, plans, encodes, and playlists a player accepts."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import av
import m3u8
import numpy as np
import pytest

from packager.hls.conformance import check_parsed_episode, parse_playlist
from packager.publishing.publish import EpisodeLocation, publish, read_pointer
from pipeline.encode.ladder import LadderMode, LadderSettings, PerTitleSettings, QualityMetric, plan_ladder
from pipeline.encode.playback import decode_segment
from pipeline.encode.transcode import transcode
from pipeline.per_title.complexity import _RungProber, analyze_complexity, measured_offsets, plan_windows
from pipeline.per_title.decision import plan_ladder_for
from tests.support.keys import RandomKeys, key_uri

PER_TITLE = LadderSettings(preset="superfast", mode=LadderMode.PER_TITLE)
FIXED = LadderSettings(preset="superfast")


def write_clip(path, *, seconds: float, width: int, height: int, is_noisy: bool, fps: int = 30):
    """A still picture (a gradient with hard-edged shapes, as a slide or a tripod shot) or fresh grain every frame."""
    rng = np.random.default_rng(7)
    ys, xs = np.mgrid[0:height, 0:width]
    still = np.stack([(xs * 255 // width), (ys * 255 // height), np.full_like(xs, 90)], axis=-1).astype(np.uint8)
    still[height // 4:height // 2, width // 5:width // 2] = (240, 40, 40)
    still[height // 2:height * 3 // 4, width // 2:width * 4 // 5] = (20, 20, 200)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "16"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=48000, layout="stereo")
        for index in range(round(seconds * fps)):
            rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8) if is_noisy else still
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
            tone = (0.1 * np.sin(np.arange(index * 1600, (index + 1) * 1600) / 48000 * 2 * np.pi * 440)).astype(np.float32)
            sound = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            sound.sample_rate, sound.pts, sound.time_base = 48000, index * 1600, Fraction(1, 48000)
            container.mux(audio.encode(sound))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path


def write_text_clip(path, *, seconds: float, width: int, height: int, fps: int = 30):
    """A screen recording: dark glyphs (random 5x7 bitmaps, 2 px a dot) on a flat page, a line scrolled
    every 1.5 s, and a pointer moving over it. Sharp edges on flat colour, as text is."""
    rng = np.random.default_rng(11)
    glyphs = rng.integers(0, 2, (64, 7, 5), dtype=np.uint8).repeat(2, axis=1).repeat(2, axis=2) * 200
    line_px, lines = 18, height // 18 + 2
    page = np.full((lines * line_px * 4, width), 235, np.uint8)
    for row in range(lines * 4):
        for column in range(4, width // 12 - 4):
            if rng.random() < 0.5:
                y, x = row * line_px + 2, column * 12
                page[y:y + 14, x:x + 10] -= glyphs[rng.integers(0, 64)]
    planes = []
    for index in range(round(seconds * fps)):
        top = (index * 2 // (3 * fps)) * line_px
        y = page[top:top + height].copy()
        px, py = (index * 7) % (width - 16), (index * 3) % (height - 16)
        y[py:py + 16, px:px + 16] = 16
        planes.append(y)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "0"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        chroma = np.full((height // 2, width // 2), 128, np.uint8)
        for index, y in enumerate(planes):
            frame = av.VideoFrame.from_ndarray(np.concatenate([y.ravel(), chroma.ravel(), chroma.ravel()])
                                               .reshape(height * 3 // 2, width), format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return path


@pytest.fixture(scope="module")
def static_clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("per-title") / "static.mp4", seconds=14, width=960, height=540,
                      is_noisy=False)


@pytest.fixture(scope="module")
def noisy_clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("per-title") / "noisy.mp4", seconds=14, width=960, height=540,
                      is_noisy=True)


@pytest.fixture(scope="module")
def static_encoded(static_clip, tmp_path_factory):
    plan = plan_ladder_for(static_clip, 960, 540, PER_TITLE)
    return plan, transcode(static_clip, list(plan.renditions), tmp_path_factory.mktemp("static-out"), PER_TITLE)


def total_bytes(result) -> int:
    return sum(segment.path.stat().st_size for rendition in result.renditions for segment in rendition.segments)


def x264_options(segment_path) -> dict[str, str]:
    """The options libx264 wrote into its SEI before the first picture: what the encoder was really asked."""
    with av.open(str(segment_path)) as container:
        for packet in container.demux(container.streams.video[0]):
            data = bytes(packet)
            start = data.index(b"x264 - core ")
            header = data[start:data.index(b"\x00", start)].decode()
            return dict(option.partition("=")[::2] for option in header.partition("options: ")[2].split())
    raise AssertionError("no video packet")


def test_a_static_input_gets_lower_bit_rates_than_a_noisy_one_of_the_same_size(static_encoded, noisy_clip, tmp_path):
    static_plan, static_result = static_encoded
    noisy_plan = plan_ladder_for(noisy_clip, 960, 540, PER_TITLE)
    assert [r.name for r in plan_ladder(960, 540)] == ["540p", "360p", "234p"]
    # grain needs every bit the fixed ladder gives it; the still picture a fraction at most
    fixed = {r.name: r for r in plan_ladder(960, 540)}
    assert {d.rate_control for d in noisy_plan.decisions} == {"average_bitrate"}
    assert all(rendition == fixed[rendition.name] for rendition in noisy_plan.renditions)
    static = {d.name: d for d in static_plan.decisions}
    both = [d for d in noisy_plan.decisions if d.is_kept and static[d.name].is_kept]
    assert all(static[d.name].bitrate_bps <= d.bitrate_bps for d in both)
    # the larger rungs at constant quality for a fraction of the rate (the 80 kbit/s one may stay fixed)
    assert static["540p"].rate_control == "capped_crf" and static["540p"].bitrate_bps < 2_000_000 / 2
    assert static["540p"].crf >= PER_TITLE.per_title.min_crf and static["540p"].peak_bitrate_bps <= 2_000_000
    assert len(static_plan.renditions) < len(noisy_plan.renditions) or sum(
        static[d.name].bitrate_bps for d in both) < sum(d.bitrate_bps for d in both) / 2
    noisy_result = transcode(noisy_clip, list(noisy_plan.renditions), tmp_path, PER_TITLE)
    assert total_bytes(static_result) < total_bytes(noisy_result)     # with a rung more, even
    for encoded in static_result.renditions:         # CRF held the quality: nothing below the flag
        assert encoded.quality.psnr_db > 40 and encoded.quality.ssim > 0.98


def test_text_keeps_the_quality_it_needs_within_the_fixed_rate(tmp_path):
    """Text on a flat page, where the probes put the fixed rate far below their CRFs: the earlier thresholds
    ('enough' at 55 dB predicted, CRF 12 at best) stopped short (on the benchmark's screen recording: 49-51 dB
    against the fixed rungs' 63-68, 1.4 VMAF lost at 360p); the rule now goes on to 60 dB predicted or
    min_crf, capped at the fixed rate, which the probes cannot predict that far."""
    clip = write_text_clip(tmp_path / "text.mp4", seconds=6, width=960, height=540)
    earlier = replace(PER_TITLE, per_title=replace(PER_TITLE.per_title, enough_db=55.0, min_crf=12.0, max_crf=22.0))
    encoded = {}
    for name, settings in (("now", PER_TITLE), ("earlier", earlier), ("fixed", FIXED)):
        plan = plan_ladder_for(clip, 960, 540, settings)
        encoded[name] = plan, transcode(clip, list(plan.renditions), tmp_path / name, settings)
    psnr = {name: {r.rendition.name: r.quality.psnr_db for r in result.renditions}
            for name, (_, result) in encoded.items()}
    now_plan, now_result = encoded["now"]
    constant = [d for d in now_plan.decisions if d.is_kept and d.rate_control == "capped_crf"]
    assert constant, now_plan.as_dict()
    for decision in constant:
        earlier_decision = next(d for d in encoded["earlier"][0].decisions if d.name == decision.name)
        assert decision.crf < earlier_decision.crf
        assert psnr["now"][decision.name] > psnr["earlier"][decision.name] + 2, psnr
        assert psnr["now"][decision.name] > max(50.0, psnr["fixed"][decision.name] - 0.5), psnr
        rung = next(r for r in now_result.renditions if r.rendition.name == decision.name)
        seconds = sum(segment.duration_s for segment in rung.segments)
        assert sum(segment.path.stat().st_size for segment in rung.segments) * 8 / seconds < decision.fixed_bitrate_bps


def test_per_title_renditions_stay_idr_aligned_and_encode_as_planned(static_encoded):
    plan, result = static_encoded
    assert [r.rendition for r in result.renditions] == list(plan.renditions)
    assert any(r.is_constant_quality for r in plan.renditions)
    assert result.renditions[-1].rendition.name == "234p"            # the lowest rung is never dropped
    starts = []
    for encoded in result.renditions:
        rendition_starts = []
        for segment in encoded.segments:
            with av.open(str(segment.path)) as container:
                packet = next(p for p in container.demux(container.streams.video[0]) if p.size)
                assert packet.is_keyframe, f"{segment.path} does not start with an IDR"
                rendition_starts.append(packet.pts * packet.time_base)
        starts.append(rendition_starts)
        options = x264_options(encoded.segments[0].path)
        rendition = encoded.rendition
        if rendition.is_constant_quality:
            assert options["rc"] == "crf" and float(options["crf"]) == pytest.approx(rendition.crf)
        else:
            assert options["rc"] == "abr" and int(options["bitrate"]) == rendition.video_bitrate_bps // 1000
        assert int(options["vbv_maxrate"]) == rendition.maxrate_bps // 1000
        assert int(options["vbv_bufsize"]) == rendition.bufsize_bits // 1000
        assert options["scenecut"] == "0"                                # IDRs only where forced
    assert all(s == starts[0] for s in starts)


def test_a_per_title_episode_publishes_playlists_that_meet_every_must(static_encoded, store):
    plan, result = static_encoded
    location = EpisodeLocation(series_id="per-title", episode_id="1")
    published = publish(result, store, RandomKeys(), location, key_uri=key_uri, decode_segment=decode_segment)
    prefix = location.version_prefix(published.version)
    master_text = store.get_bytes(f"{prefix}/master.m3u8").decode()
    master = m3u8.loads(master_text)
    uris = [v.uri for v in master.playlists] + [v.uri for v in master.iframe_playlists]
    parsed = {uri: parse_playlist(store.get_bytes(f"{prefix}/{uri}").decode(), uri) for uri in uris}
    duration_s = read_pointer(store, location)["duration_s"]
    assert check_parsed_episode(parse_playlist(master_text, "master.m3u8"), parsed, duration_s=duration_s) == []
    assert len(master.playlists) == len(plan.renditions) >= 2                 # several bit rates (Apple 9.9)
    for variant in master.playlists:
        info = variant.stream_info
        assert info.bandwidth <= 2 * info.average_bandwidth                    # Apple 1.30
    assert min(v.stream_info.bandwidth for v in master.playlists) <= 192_000   # Apple 9.21


def test_fixed_mode_is_todays_ladder_encoded_as_today(landscape_clip, tmp_path):
    plan = plan_ladder_for(landscape_clip, 640, 360, FIXED)
    assert plan.mode == LadderMode.FIXED and plan.analysis is None
    assert plan.renditions == tuple(plan_ladder(640, 360, FIXED))
    result = transcode(landscape_clip, list(plan.renditions), tmp_path, FIXED)
    for encoded in result.renditions:
        options = x264_options(encoded.segments[0].path)
        rendition = encoded.rendition
        assert options["rc"] == "abr" and int(options["bitrate"]) == rendition.video_bitrate_bps // 1000
        assert int(options["vbv_maxrate"]) == int(rendition.video_bitrate_bps * 1.1) // 1000
        assert int(options["vbv_bufsize"]) == int(rendition.video_bitrate_bps * rendition.vbv_buffer_s) // 1000
    report = plan.as_dict(result)
    assert [r["reason"] for r in report["rungs"]] == ["fixed", "fixed"]
    assert all(r["measured"]["bytes"] > 0 and r["measured"]["psnr_db"] > 20 for r in report["rungs"])


def test_the_report_names_every_candidate_and_measures_the_kept_ones(static_encoded):
    plan, result = static_encoded
    report = plan.as_dict(result)
    assert report["mode"] == "per-title" and report["metric"] == "psnr"
    assert [r["name"] for r in report["rungs"]] == ["540p", "360p", "234p"]
    assert report["analysis"]["windows"] >= 3 and report["analysis"]["cpu_s"] > 0
    for rung in report["rungs"]:
        assert rung["reason"] in {"lowest_rung", "adds_quality", "adds_too_little", "dominated", "only_other_rung"}
        assert rung["message"]
        if rung["kept"]:
            measured = rung["measured"]
            assert measured["bytes"] > 0 and 0 < measured["average_bitrate_bps"] <= measured["peak_segment_bitrate_bps"]
            assert measured["ssim"] > 0.9
        else:
            assert rung["measured"] is None


def test_an_analysis_that_cannot_decode_falls_back_to_the_fixed_ladder(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"garbage" * 1000)
    plan = plan_ladder_for(broken, 640, 360, PER_TITLE)
    assert plan.renditions == tuple(plan_ladder(640, 360))
    assert plan.mode == LadderMode.PER_TITLE and plan.fallback_reason and "broken.mp4" in plan.fallback_reason
    assert plan.as_dict()["fallback_reason"] == plan.fallback_reason


def test_probes_of_a_portrait_source_are_portrait_and_spread_over_it(portrait_clip):
    candidates = plan_ladder(360, 640)
    analysis = analyze_complexity(portrait_clip, candidates, PER_TITLE)
    assert [(p.rendition.width, p.rendition.height) for p in analysis.rungs] == [(360, 640), (234, 416)]
    starts = [w.start_s for w in analysis.windows]
    assert len(starts) == 3 and starts == sorted(set(starts)) and starts[-1] > 6
    for probe in analysis.rungs:
        (better, worse) = probe.points                   # CRF 20, then 28
        assert better.bitrate_bps > worse.bitrate_bps > 0
        assert better.quality_db > worse.quality_db > 20
    assert analysis.measured_frames == 2 * len(starts)


@pytest.mark.parametrize("duration_s, windows", [(30, 3), (60, 6), (120, 12), (600, 24), (1200, 24),
                                                (None, 1)])
def test_windows_cover_a_share_of_the_episode_within_bounds(duration_s, windows):
    starts, frames = plan_windows(duration_s, Fraction(30), LadderSettings())   # 3 %, in 0.3 s windows
    assert frames == 9 and len(starts) == windows
    if duration_s:
        assert starts == sorted(starts) and starts[-1] + 0.3 <= duration_s


@pytest.mark.parametrize("window_frames", [5, 7, 8, 9, 10, 12, 18, 24])
def test_each_window_is_measured_on_a_b_picture_and_on_a_p_or_reference_b_one(window_frames):
    """x264's B-pyramid puts P and reference-B pictures at even offsets from the IDR, plain B ones at odd
    offsets: measured on even offsets alone, a grainy rung read 0.3 dB better than its whole encode."""
    first, second = measured_offsets(window_frames)
    assert 0 < first < second < window_frames
    assert (first + second) % 2 == 1


def test_a_window_starts_at_the_source_keyframe_nearest_its_place_not_far_before_it(tmp_path):
    """A 12 s source with a keyframe every 10 s (0 and 10 s), three windows planned near 2, 5.9 and 9.8 s.
    The last one starts at the keyframe after its place (decoding 5 s of frames from the one before only
    to skip them cost a third of the analysis on a talking head); the middle one has no keyframe near
    enough either side, so it is decoded from 0 s and starts at the earliest time it may."""
    clip = tmp_path / "long-gop.mp4"
    with av.open(str(clip), "w") as container:
        video = container.add_stream("libx264", rate=30, options={
            "preset": "ultrafast", "crf": "20", "x264-params": "keyint=300:min-keyint=300:scenecut=0"})
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        for index in range(360):
            picture = np.full((180, 320, 3), index % 250, np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 30)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    planned, _ = plan_windows(12.0, Fraction(30), PER_TITLE)
    assert len(planned) == 3
    analysis = analyze_complexity(clip, plan_ladder(320, 180), PER_TITLE)
    starts = [w.start_s for w in analysis.windows]
    spacing = planned[1] - planned[0]
    assert starts[0] == 0.0 and starts[2] == pytest.approx(10.0)
    assert starts[1] == pytest.approx(planned[1] - spacing / 2, abs=1 / 30)


def test_decoding_back_only_what_the_measured_pictures_need_measures_the_same(portrait_clip, monkeypatch):
    skipping = analyze_complexity(portrait_clip, plan_ladder(360, 640), PER_TITLE)
    monkeypatch.setattr(_RungProber, "_skip", lambda self, packet, waiting: "DEFAULT")
    everything = analyze_complexity(portrait_clip, plan_ladder(360, 640), PER_TITLE)
    assert skipping.rungs == everything.rungs and skipping.measured_frames == everything.measured_frames


def test_probes_measure_in_ssim_when_asked(portrait_clip):
    settings = replace(PER_TITLE, per_title=PerTitleSettings.for_metric(QualityMetric.SSIM))
    analysis = analyze_complexity(portrait_clip, plan_ladder(360, 640), settings)
    assert analysis.metric == QualityMetric.SSIM
    for probe in analysis.rungs:
        better, worse = probe.points
        assert 40 > better.quality_db > worse.quality_db > 5         # dB of SSIM: 0.9 is 10 dB, 0.9999 is 40
