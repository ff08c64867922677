"""Still images from decoded video frames: scaling and JPEG/WebP encoding with PyAV's bundled FFmpeg.

Why PyAV and not Pillow: the bundled FFmpeg already has the `mjpeg` and `libwebp` encoders and the
same swscale the transcode scales with, so posters, thumbnails and storyboard sheets need no second
imaging library (and no second set of codec libraries to keep patched). An encoded packet of either
encoder is a complete image file (JFIF / RIFF WebP).

Colour: video frames are limited-range YUV in their own matrix (BT.709 for HD); they are converted to
RGB first and from RGB to the BT.601 YUV the image decoders assume: full range for JPEG (JFIF),
limited range for WebP (libwebp's own RGB import), so a poster's colours match the video's.
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import NamedTuple

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from pipeline.errors import PictureError

JPEG_QUALITY_SCALE = 3           # mjpeg qscale, 2 (best) .. 31: 3 is ~quality 90 in libjpeg terms
STORYBOARD_JPEG_QUALITY_SCALE = 6
WEBP_QUALITY = 80                # libwebp 0..100


class Size(NamedTuple):
    width: int
    height: int


def scaled_size(width: int, height: int, target_width: int) -> Size:
    """The size of a `width`x`height` picture scaled to `target_width`, never upscaled, even sides.

    Portrait pictures keep their shape: target_width is the width, the height follows the aspect.
    """
    out_width = min(target_width, width)
    out_height = max(2, round(height * out_width / width / 2) * 2)
    return Size(max(2, out_width // 2 * 2), out_height)


def fitted_size(width: int, height: int, long_side: int) -> Size:
    """The size of a picture scaled so its longer side is `long_side` (never upscaled), even sides."""
    if width >= height:
        return scaled_size(width, height, long_side)
    out_height = min(long_side, height)
    out_width = max(2, round(width * out_height / height / 2) * 2)
    return Size(out_width, max(2, out_height // 2 * 2))


def to_rgb(frame: av.VideoFrame, size: Size, reformatter: VideoReformatter | None = None) -> np.ndarray:
    """`frame` scaled to `size` as an RGB array (height, width, 3), area-averaged when shrinking."""
    scaler = reformatter or VideoReformatter()
    scaled = scaler.reformat(frame, size.width, size.height, "rgb24", interpolation="AREA", threads=1)
    return scaled.to_ndarray()


def encode_jpeg(rgb: np.ndarray, quality_scale: int = JPEG_QUALITY_SCALE) -> bytes:
    """A baseline JFIF JPEG of an RGB array. Raises PictureError."""
    return _encode("mjpeg", rgb, "yuvj420p", "JPEG", {"qmin": str(quality_scale), "qmax": str(quality_scale),
                                                       "huffman": "optimal"})


def encode_webp(rgb: np.ndarray, quality: int = WEBP_QUALITY) -> bytes:
    """A lossy WebP of an RGB array. Raises PictureError."""
    return _encode("libwebp", rgb, "yuv420p", "MPEG", {"quality": str(quality), "preset": "picture"})


def _encode(codec: str, rgb: np.ndarray, pix_fmt: str, color_range: str, options: dict[str, str]) -> bytes:
    height, width = rgb.shape[:2]
    try:
        context = av.CodecContext.create(codec, "w")
        context.width, context.height = width, height
        context.pix_fmt = pix_fmt
        context.time_base = Fraction(1, 25)
        context.options = options
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format=pix_fmt, dst_colorspace="ITU601", dst_color_range=color_range)
        packets = context.encode(frame) + context.encode(None)
    except av.FFmpegError as exc:
        raise PictureError(f"{codec}: encoding a {width}x{height} image failed: {exc}") from exc
    data = b"".join(bytes(packet) for packet in packets)
    if not data:
        raise PictureError(f"{codec}: the encoder returned no image for {width}x{height}")
    return data


def decode_image(data: bytes) -> np.ndarray:
    """Decode a JPEG or WebP file to an RGB array; for checks and tests. Raises PictureError."""
    image_format = "webp_pipe" if data[:4] == b"RIFF" else "jpeg_pipe"
    try:
        with av.open(io.BytesIO(data), format=image_format) as container:
            for frame in container.decode(video=0):
                return frame.to_ndarray(format="rgb24")
    except av.FFmpegError as exc:
        raise PictureError(f"the image does not decode: {exc}") from exc
    raise PictureError("the image holds no picture")
