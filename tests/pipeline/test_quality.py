"""The sampled quality check: checked while encoding, with the values the after-encoding check gives."""

from __future__ import annotations

import io
import logging

import av
import numpy as np
import pytest
from av.video.reformatter import VideoReformatter

from pipeline.encode.fmp4 import SegmentFormat
from pipeline.encode.ladder import LadderSettings, plan_ladder
from pipeline.encode.quality import (
    QualitySample,
    SampleScore,
    check_sample,
    decoded_luma,
    luma,
    plan_samples,
    psnr_db,
    ssim,
    ssim_db,
    summarize,
)
from pipeline.encode.transcode import transcode
from pipeline.errors import TranscodeError
from tests.support.media import clip

FAST = LadderSettings(preset="superfast")


@pytest.fixture(scope="module")
def landscape_30fps(media_dir):
    """19 s at 30 fps: four 6 s segments, so three are closed before the encoder flushes."""
    return clip(media_dir, "landscape-30.mp4", duration_s=19, width=640, height=360, fps=30)


def source_references(source, frame_indexes: set[int], width: int, height: int) -> dict:
    """Luma of the source frames at `frame_indexes`, scaled as the transcoder scales them for a rung.

    The source is constant 30 fps, unrotated, so output frame n is decoded frame n.
    """
    references = {}
    scaler = VideoReformatter()
    with av.open(str(source)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in frame_indexes:
                scaled = scaler.reformat(frame, width, height, "yuv420p", interpolation="BILINEAR", threads=1)
                references[index] = luma(scaled)
    return references


def fully_decoded_luma(segment_path, offset_in_segment, init_path=None):
    """The sampled picture the plain way: decode the segment from its start, count pictures as shown."""
    source = io.BytesIO(init_path.read_bytes() + segment_path.read_bytes()) if init_path else str(segment_path)
    with av.open(source) as container:
        for position, frame in enumerate(container.decode(video=0)):
            if position == offset_in_segment:
                return luma(frame)
    return None


@pytest.mark.parametrize("segment_format, checked_early", [
    (SegmentFormat.TS, 3),       # the last segment is closed by the flush, so it is left for the end
    (SegmentFormat.FMP4, 0),     # fMP4 segments exist only once the fragmented file is cut, after the flush
])
def test_samples_give_the_values_of_the_check_after_encoding(tmp_path, landscape_30fps, caplog, segment_format,
                                                             checked_early):
    caplog.set_level(logging.DEBUG, logger="pipeline.encode.quality")
    result = transcode(landscape_30fps, plan_ladder(640, 360), tmp_path, FAST, segment_format=segment_format)
    early = sorted(r.getMessage() for r in caplog.records if "checked while encoding" in r.getMessage())
    assert early == sorted(f"{r.rendition.name}: {checked_early} of 4 sampled segments checked while encoding"
                           for r in result.renditions)
    for encoded in result.renditions:
        bounds = [round(s.start_s * encoded.frame_rate) for s in encoded.segments] + [result.frame_count]
        samples = plan_samples(bounds)
        assert len(samples) == 4
        rung = encoded.rendition
        references = source_references(landscape_30fps, {s.frame_index for s in samples}, rung.width, rung.height)
        decoded = [fully_decoded_luma(encoded.segments[sample.segment_index].path, sample.offset_in_segment,
                                      encoded.init_path) for sample in samples]
        scores = [SampleScore(psnr_db(references[sample.frame_index], picture), ssim(references[sample.frame_index], picture))
                  for sample, picture in zip(samples, decoded)]
        after = summarize(rung.name, scores, FAST.min_psnr_db)
        assert after is not None and after.sample_count == 4
        assert encoded.quality == after          # same samples, bit-for-bit the same PSNR and SSIM values
        assert 0.5 < after.min_ssim <= after.ssim < 1


@pytest.fixture(scope="module")
def two_second_segment(tmp_path_factory, media_dir):
    """One encoded TS segment of 60 pictures with B-frames."""
    source = clip(media_dir, "two-seconds.mp4", duration_s=2, width=320, height=180, fps=30)
    out = tmp_path_factory.mktemp("two-seconds")
    encoded = transcode(source, plan_ladder(320, 180)[:1], out, FAST)
    return encoded.renditions[0].segments[0].path


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4, 7, 15, 16, 29, 59])
def test_only_the_pictures_a_sample_needs_are_decoded_yet_it_is_the_same_picture(two_second_segment, offset):
    expected = fully_decoded_luma(two_second_segment, offset)
    assert expected is not None       # offsets cover I, P, reference and non-reference B, and the last picture
    assert np.array_equal(decoded_luma(two_second_segment, offset), expected)


def test_a_sample_past_the_end_of_its_segment_is_not_compared(two_second_segment):
    assert decoded_luma(two_second_segment, 60) is None


def test_plan_samples_spreads_six_over_a_long_episode():
    starts = [k * 180 for k in range(201)]        # 200 segments of 6 s at 30 fps
    samples = plan_samples(starts)
    assert [s.segment_index for s in samples] == [0, 40, 80, 119, 159, 199]
    assert all(s.frame_index == starts[s.segment_index] + 15 for s in samples)


def test_a_sampled_segment_that_does_not_decode_is_named_in_the_error(tmp_path):
    broken = tmp_path / "720p" / "seg_00003.ts"
    broken.parent.mkdir()
    broken.write_bytes(b"\x47" + b"not a transport stream" * 100)
    sample = QualitySample(frame_index=90, segment_index=3, offset_in_segment=15)
    with pytest.raises(TranscodeError, match="quality check: 720p/seg_00003.ts does not decode back"):
        check_sample(sample, np.zeros((720, 1280), np.uint8), broken)


def naive_ssim(reference: np.ndarray, decoded: np.ndarray) -> float:
    """SSIM as FFmpeg's ssim filter defines it, one 8x8 window (every 4 pixels) at a time."""
    a, b = reference.astype(np.float64), decoded.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2 * 64, (0.03 * 255) ** 2 * 64 * 63
    values = []
    for y in range(0, a.shape[0] - 7, 4):
        for x in range(0, a.shape[1] - 7, 4):
            wa, wb = a[y:y + 8, x:x + 8], b[y:y + 8, x:x + 8]
            s1, s2 = wa.sum(), wb.sum()
            ss, s12 = (wa * wa).sum() + (wb * wb).sum(), (wa * wb).sum()
            variances, covariance = ss * 64 - s1 * s1 - s2 * s2, s12 * 64 - s1 * s2
            values.append((2 * s1 * s2 + c1) * (2 * covariance + c2) / ((s1 * s1 + s2 * s2 + c1) * (variances + c2)))
    return float(np.mean(values))


@pytest.mark.parametrize("shape", [(36, 64), (38, 67)])      # whole blocks, and a remainder that is left out
def test_ssim_is_the_windowed_definition_and_ssim_db_its_log_scale(shape):
    rng = np.random.default_rng(5)
    picture = rng.integers(0, 256, shape, dtype=np.uint8)
    blurred = ((picture.astype(np.int32) + np.roll(picture, 1, axis=1)) // 2).astype(np.uint8)
    assert ssim(picture, picture) == 1.0 and ssim_db(picture, picture) == float("inf")
    value = ssim(picture, blurred)
    assert value == pytest.approx(naive_ssim(picture, blurred), abs=1e-12)
    assert 0 < value < 0.9
    assert ssim_db(picture, blurred) == pytest.approx(-10 * np.log10(1 - value))


def test_the_demo_picture_holds_at_the_lowest_rung_where_the_stress_picture_does_not(tmp_path):
    """The demo's sample must not greet a newcomer with a quality warning about itself; the tests' sample
    must stay hard enough that the warning is exercised."""
    from pipeline.synthetic import generate_clip

    lowest = plan_ladder(640, 360)[-1:]
    warnings = {}
    for picture in ("scene", "stress"):
        source = generate_clip(tmp_path / f"{picture}.mp4", duration_s=3, width=640, height=360, fps=30,
                               has_audio=False, picture=picture)
        warnings[picture] = transcode(source, lowest, tmp_path / picture, FAST).quality_warnings
    assert warnings["scene"] == ()
    assert len(warnings["stress"]) == 1 and "below 30 dB" in warnings["stress"][0]
    with pytest.raises(ValueError, match="picture must be"):
        generate_clip(tmp_path / "x.mp4", duration_s=1, width=64, height=64, picture="noise")
