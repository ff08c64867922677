"""Generate the validation corpus: one small file per kind of upload the validator must judge.

    python samples/make_corpus.py [DIRECTORY]      # default: samples/generated/corpus/ (git-ignored)

Importable too: make_corpus(directory) -> {name: Path}. Everything is made with PyAV + numpy, nothing is
downloaded. Files are tiny (about 256x144, low frame rates, fast presets) so the corpus builds in seconds.
`CASES` says what the validator must answer for each file under the default ValidationRules.

The two 20-minute files bracket the upper bound to the frame: 19 min 59.5 s passes, 20 min 0.5 s does not.
They run at 2 fps with no sound, which keeps them to a few seconds of encoding and a few MB each.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

if __name__ == "__main__":  # run as a script from anywhere: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.synthetic import generate_clip  # noqa: E402

# name -> reason codes the validator must give (empty: accepted)
CASES: dict[str, tuple[str, ...]] = {
    "landscape.mp4": (),
    "exactly_30s.mp4": (),
    "short_29s.mp4": ("too_short",),
    "portrait.mp4": (),
    "rotated_phone.mp4": (),
    "vfr.mp4": (),
    "audio_tail.mp4": (),
    "no_audio.mp4": (),
    "hevc_10bit.mp4": (),
    "vp9_opus.webm": (),
    "ntsc_59_94.mp4": (),
    "square_mpeg4.avi": (),
    "just_under_20min.mp4": (),
    "just_over_20min.mp4": ("too_long",),
    "audio_only.m4a": ("no_video_stream",),
    "still.png": ("still_image",),
    "text.mp4": ("not_media",),
    "empty.mp4": ("empty_file",),
    "truncated_faststart.mp4": ("truncated",),
    "garbage_middle.ts": ("decode_errors",),
}

WIDTH, HEIGHT = 256, 144   # the short side clears the 128 px minimum


def make_corpus(directory: str | Path) -> dict[str, Path]:
    """Write every file in CASES into `directory` (kept if already there); return name -> path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    makers = {
        "landscape.mp4": lambda p: generate_clip(p, duration_s=32, width=WIDTH, height=HEIGHT, fps=10),
        "exactly_30s.mp4": lambda p: generate_clip(p, duration_s=30, width=WIDTH, height=HEIGHT, fps=10),
        "short_29s.mp4": lambda p: generate_clip(p, duration_s=29, width=WIDTH, height=HEIGHT, fps=10),
        "portrait.mp4": lambda p: generate_clip(p, duration_s=31, width=HEIGHT, height=WIDTH, fps=10),
        "rotated_phone.mp4": _rotated_phone,
        "vfr.mp4": _variable_frame_rate,
        "audio_tail.mp4": _audio_tail,
        "no_audio.mp4": lambda p: generate_clip(p, duration_s=31, width=WIDTH, height=HEIGHT, fps=10,
                                                has_audio=False),
        "hevc_10bit.mp4": _hevc_10bit,
        "vp9_opus.webm": _vp9_opus,
        "ntsc_59_94.mp4": lambda p: generate_clip(p, duration_s=30.5, width=WIDTH, height=HEIGHT,
                                                  fps=Fraction(60000, 1001), has_audio=False),
        "square_mpeg4.avi": lambda p: generate_clip(p, duration_s=31, width=160, height=160, fps=10,
                                                    has_audio=False, video_codec="mpeg4",
                                                    container_format="avi"),
        "just_under_20min.mp4": lambda p: _long_clip(p, frames=20 * 60 * 2 - 1),
        "just_over_20min.mp4": lambda p: _long_clip(p, frames=20 * 60 * 2 + 1),
        "audio_only.m4a": _audio_only,
        "still.png": _still_png,
        "text.mp4": lambda p: p.write_text("these are my notes, not a video\n" * 50),
        "empty.mp4": lambda p: p.write_bytes(b""),
        "truncated_faststart.mp4": _truncated_faststart,
        "garbage_middle.ts": _garbage_middle,
    }
    paths = {}
    for name, make in makers.items():
        path = directory / name
        if not path.exists():
            partial = directory / f"partial-{name}"  # same suffix, so muxers pick the same format
            make(partial)
            partial.replace(path)
        paths[name] = path
    return paths


def _picture(index: int, width: int, height: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    luma = ((xs + ys + index * 4) % 256).astype(np.uint8)
    rgb = np.stack([luma, np.roll(luma, index, axis=1), 255 - luma], axis=-1)
    box = min(width, height) // 5
    x = int((width - box) * (0.5 + 0.5 * math.sin(index / 7)))
    rgb[: box, x : x + box] = (255, 255, 0)
    return rgb


def _write_video(path: Path, pts: list[int], time_base: Fraction, *, codec: str = "libx264",
                 pix_fmt: str = "yuv420p", width: int = WIDTH, height: int = HEIGHT, rate: Fraction = Fraction(10),
                 options: dict[str, str] | None = None, rotation: int = 0, audio_codec: str | None = None,
                 audio_tail_s: float = 0.1, container_format: str | None = None) -> Path:
    """Encode one picture per entry of `pts` (in `time_base`), with an optional tone as long as the video."""
    with av.open(str(path), "w", format=container_format) as container:
        video = container.add_stream(codec, rate=rate, options=options or {})
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        audio = container.add_stream(audio_codec, rate=48000, layout="stereo") if audio_codec else None
        for index, frame_pts in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(_picture(index, width, height), format="rgb24")
            frame.pts, frame.time_base = frame_pts, time_base
            container.mux(video.encode(frame.reformat(format=pix_fmt)))
        container.mux(video.encode(None))
        if audio is not None:
            _write_tone(container, audio, float((pts[-1] - pts[0]) * time_base) + audio_tail_s)
    return path


def _write_tone(container, audio, duration_s: float) -> None:
    samples = round(duration_s * 48000)
    for start in range(0, samples, 4800):
        t = np.arange(start, min(start + 4800, samples)) / 48000.0
        wave = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
        container.mux(audio.encode(frame))
    container.mux(audio.encode(None))


def _rotated_phone(path: Path) -> Path:
    # Stored landscape, displayed portrait: what a phone held upright writes (display matrix side data).
    return _write_video(path, list(range(310)), Fraction(1, 10), rotation=90, audio_codec="aac",
                        options={"preset": "ultrafast"})


def _variable_frame_rate(path: Path) -> Path:
    # Gaps alternate between 1/10 s and 1/5 s and some 1/20 s bursts: irregular pts, as phones record.
    gaps = [100, 200, 50, 50, 100, 150]
    pts = [0]
    while pts[-1] < 31_000:
        pts.append(pts[-1] + gaps[len(pts) % len(gaps)])
    return _write_video(path, pts, Fraction(1, 1000), audio_codec="aac", rate=Fraction(10),
                        options={"preset": "ultrafast"})


def _audio_tail(path: Path) -> Path:
    # Sound runs 3 s past the last picture (credits music): the container lasts longer than the video,
    # which must not be mistaken for a cut-off upload.
    return _write_video(path, list(range(310)), Fraction(1, 10), audio_codec="aac", audio_tail_s=3.0,
                        options={"preset": "ultrafast"})


def _hevc_10bit(path: Path) -> Path:
    return _write_video(path, list(range(310)), Fraction(1, 10), codec="libx265", pix_fmt="yuv420p10le",
                        options={"preset": "ultrafast", "x265-params": "log-level=error"}, audio_codec="aac")


def _vp9_opus(path: Path) -> Path:
    return _write_video(path, list(range(310)), Fraction(1, 10), codec="libvpx-vp9",
                        options={"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"},
                        audio_codec="libopus", container_format="webm")


def _long_clip(path: Path, *, frames: int) -> Path:
    # 2 fps: one frame is 0.5 s, so `frames` sets the length to the frame. Pictures cycle through a
    # precomputed set so that numpy does not dominate the 2400-frame encode.
    rate = Fraction(2)
    pictures = [av.VideoFrame.from_ndarray(_picture(index, WIDTH, HEIGHT), format="rgb24").reformat(
        format="yuv420p") for index in range(24)]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.codec_context.time_base = 1 / rate
        for index in range(frames):
            frame = pictures[index % len(pictures)]
            frame.pts, frame.time_base = index, 1 / rate
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="ipod") as container:
        audio = container.add_stream("aac", rate=48000, layout="stereo")
        _write_tone(container, audio, 31.0)
    return path


def _still_png(path: Path) -> Path:
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt, codec.time_base = WIDTH, HEIGHT, "rgb24", Fraction(1, 1)
    frame = av.VideoFrame.from_ndarray(_picture(0, WIDTH, HEIGHT), format="rgb24")
    path.write_bytes(b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode(None)]))
    return path


def _truncated_faststart(path: Path) -> Path:
    # Index at the front (faststart): the cut file's header still promises all 50 s.
    whole = generate_clip(path.with_name("whole_" + path.name), duration_s=50, width=WIDTH, height=HEIGHT,
                          fps=10, container_options={"movflags": "faststart"})
    data = whole.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.7)])
    whole.unlink()
    return path


def _garbage_middle(path: Path) -> Path:
    clean = generate_clip(path.with_name("clean_" + path.name), duration_s=32, width=WIDTH, height=HEIGHT,
                          fps=10)
    data = bytearray(clean.read_bytes())
    clean.unlink()
    middle = len(data) // 2
    data[middle : middle + 16 * 1024] = np.random.default_rng(7).integers(0, 256, 16 * 1024, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "generated" / "corpus"
    for name, made in make_corpus(target).items():
        print(f"{made}  {made.stat().st_size} bytes  expect: {', '.join(CASES[name]) or 'accepted'}")
