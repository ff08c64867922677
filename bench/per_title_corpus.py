"""The per-title benchmark's corpus: four kinds of content, built or fetched once into var/bench/corpus/.

    .venv/bin/python bench/per_title_corpus.py [--seconds 30]

| title         | kind                      | how it is made                                                  |
|---------------|---------------------------|-----------------------------------------------------------------|
| talking-head  | static, tripod            | numpy: still room, a swaying head that talks and blinks, light  |
|               |                           | sensor noise (sigma 1.2 on luma); 1920x1080, 30 fps             |
| concert       | high motion and noise     | ffmpeg lavfi: testsrc2 shaken like a handheld camera, heavy     |
|               |                           | moving grain (noise=alls=14:allf=t+u); 1920x1080, 30 fps        |
| animation     | animation (real)          | Big Buck Bunny, the 1280x720 24 fps copy that moviepy's source  |
|               |                           | package ships (moviepy 2.2.1 sdist, docs/.../moviepy_10_minutes |
|               |                           | .zip: resources/bbb.mp4); a stream-copied cut from 2:00         |
| screen        | screen recording and text | numpy: an editor window with typed, scrolled text, a moving     |
|               |                           | mouse pointer and a dragged terminal; 1920x1080, 30 fps         |

The numpy titles are encoded at libx264 CRF 14 (visually lossless), well above any rung, so the metrics
measure our encodes, not the source's (the concert's grain at CRF 18: at 14 it is a 190 Mbit/s file).
The ffmpeg CLI used is the one the `imageio-ffmpeg` wheel ships (a static FFmpeg 9 with libx264 and
libvmaf): `.venv/bin/pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import zipfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from common import CACHE  # noqa: E402  (bench/common.py also puts the project on sys.path)

CORPUS = CACHE / "corpus"
MOVIEPY_SDIST = "moviepy==2.2.1"
BBB_MEMBER = "moviepy_10_minutes/resources/bbb.mp4"
BBB_ZIP = "docs/_static/medias/getting_started/moviepy_10_minutes/moviepy_10_minutes.zip"
BBB_START_S = 120
TITLES = ("talking-head", "concert", "animation", "screen")
SOURCE_CRF = "14"


def ffmpeg_exe() -> str:
    """The ffmpeg CLI with libvmaf from the imageio-ffmpeg wheel (Debian 12's ffmpeg has no libvmaf)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise SystemExit("the benchmark needs the imageio-ffmpeg wheel's ffmpeg: .venv/bin/pip install -e '.[bench]'")
    return imageio_ffmpeg.get_ffmpeg_exe()


def build_corpus(seconds: float) -> dict[str, Path]:
    """title -> source path, each made once (cached by title and length)."""
    CORPUS.mkdir(parents=True, exist_ok=True)
    makers = {"talking-head": _talking_head, "concert": _concert, "animation": _animation, "screen": _screen}
    paths = {}
    for title in TITLES:
        path = CORPUS / f"{title}-{seconds:g}s.mp4"
        if not path.exists():
            print(f"making {path.name} ...", flush=True)
            partial = path.with_name(path.name + ".partial.mp4")
            makers[title](partial, seconds)
            partial.replace(path)
        paths[title] = path
    return paths


# -- generated with numpy, encoded by PyAV ---------------------------------------------------------------

class _Writer:
    """A yuv420p clip with a tone, written frame by frame from numpy planes."""

    def __init__(self, path: Path, width: int, height: int, fps: int) -> None:
        self.container = av.open(str(path), "w", format="mp4")
        self.video = self.container.add_stream("libx264", rate=fps)
        self.video.width, self.video.height, self.video.pix_fmt = width, height, "yuv420p"
        self.video.options = {"preset": "veryfast", "crf": SOURCE_CRF}
        self.audio = self.container.add_stream("aac", rate=48000, layout="stereo")
        self.fps, self.index, self.samples = fps, 0, 0

    def write(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        planes = np.concatenate([np.clip(y, 0, 255).astype(np.uint8).ravel(),
                                 np.clip(u, 0, 255).astype(np.uint8).ravel(),
                                 np.clip(v, 0, 255).astype(np.uint8).ravel()])
        frame = av.VideoFrame.from_ndarray(planes.reshape(-1, y.shape[1]), format="yuv420p")
        frame.pts, frame.time_base = self.index, Fraction(1, self.fps)
        self.container.mux(self.video.encode(frame))
        self.index += 1
        until = self.index * 48000 // self.fps
        t = np.arange(self.samples, until) / 48000
        wave = (0.1 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
        audio = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
        audio.sample_rate, audio.pts, audio.time_base = 48000, self.samples, Fraction(1, 48000)
        self.container.mux(self.audio.encode(audio))
        self.samples = until

    def close(self) -> None:
        self.container.mux(self.video.encode(None))
        self.container.mux(self.audio.encode(None))
        self.container.close()


def _smooth_texture(rng: np.random.Generator, height: int, width: int, cells: int, amplitude: float) -> np.ndarray:
    """Low-frequency texture: a coarse random grid, bilinearly enlarged (walls, fabric, shading)."""
    coarse = rng.standard_normal((cells + 1, cells * width // height + 1)).astype(np.float32)
    ys = np.linspace(0, coarse.shape[0] - 1, height, dtype=np.float32)
    xs = np.linspace(0, coarse.shape[1] - 1, width, dtype=np.float32)
    y0, x0 = ys.astype(int).clip(max=coarse.shape[0] - 2), xs.astype(int).clip(max=coarse.shape[1] - 2)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return amplitude * (top * (1 - fy) + bottom * fy)


def _ellipse(height: int, width: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    ys, xs = np.ogrid[:height, :width]
    return ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1


def _talking_head(path: Path, seconds: float, width: int = 1920, height: int = 1080, fps: int = 30,
                  seed: int = 1, noise: float = 1.2) -> None:
    rng = np.random.default_rng(seed)
    room = 70 + 50 * np.linspace(0, 1, height, dtype=np.float32)[:, None] + _smooth_texture(rng, height, width, 12, 10)
    room = np.broadcast_to(room, (height, width)).copy()
    for k in range(7):   # a bookshelf on the left: spines with edges
        x = 120 + k * 46
        room[300:700, x:x + 38] = 40 + 25 * k % 90
    room[700:712, 100:460] = 30
    u_room = np.full((height // 2, width // 2), 120, np.float32) + _smooth_texture(rng, height // 2, width // 2, 6, 4)
    v_room = np.full((height // 2, width // 2), 138, np.float32)
    shirt_texture = _smooth_texture(rng, height, width, 60, 6)
    writer = _Writer(path, width, height, fps)
    for index in range(round(seconds * fps)):
        t = index / fps
        y, u, v = room.copy(), u_room.copy(), v_room.copy()
        cx = width / 2 + 10 * math.sin(2 * math.pi * t / 5) + 3 * math.sin(2 * math.pi * t / 1.3)
        cy = 430 + 5 * math.sin(2 * math.pi * t / 3.7)
        torso = _ellipse(height, width, 1150, cx, 420, 430)
        y[torso] = 55 + shirt_texture[torso]
        u[torso[::2, ::2]], v[torso[::2, ::2]] = 140, 110
        head = _ellipse(height, width, cy, cx, 190, 150)
        shade = np.clip((np.arange(width, dtype=np.float32) - cx) / 150, -1, 1)[None, :]
        y[head] = np.broadcast_to(165 - 25 * shade, y.shape)[head]
        u[head[::2, ::2]], v[head[::2, ::2]] = 110, 150
        y[_ellipse(height, width, cy - 150, cx, 70, 150) & ~_ellipse(height, width, cy + 20, cx, 190, 140)] = 35
        is_blinking = (t % 4.1) < 0.15
        for eye_x in (cx - 55, cx + 55):
            y[_ellipse(height, width, cy - 20, eye_x, 3 if is_blinking else 12, 20)] = 30
        opening = 4 + 14 * abs(math.sin(2 * math.pi * t * 2.3) * math.sin(2 * math.pi * t * 0.7))
        y[_ellipse(height, width, cy + 90, cx, opening, 45)] = 60
        y += rng.standard_normal((height, width), dtype=np.float32) * noise
        writer.write(y, u, v)
    writer.close()


def _glyphs(rng: np.random.Generator, count: int = 80) -> np.ndarray:
    """Character-like bitmaps: 5x7 random strokes, doubled to 10x14 and set in a 12x20 cell."""
    cells = np.zeros((count, 20, 12), np.float32)
    for k in range(count):
        bitmap = rng.random((7, 5)) < 0.38
        bitmap[:, 0] |= k % 3 == 0           # some vertical stems, as letters have
        cells[k, 3:17, 1:11] = np.kron(bitmap, np.ones((2, 2)))
    return cells


def _screen(path: Path, seconds: float, width: int = 1920, height: int = 1080, fps: int = 30,
            seed: int = 2) -> None:
    rng = np.random.default_rng(seed)
    glyphs = _glyphs(rng)
    lines = []
    for _ in range(400):   # code-like lines: an indent, then words of glyphs and spaces
        indent = int(rng.integers(0, 5)) * 4
        words = [int(n) for n in rng.integers(2, 10, size=int(rng.integers(0, 8)))]
        line = [-1] * indent
        for n in words:
            line += [int(g) for g in rng.integers(0, len(glyphs), size=n)] + [-1]
        lines.append(line[:110])
    line_h, char_w = 20, 12
    editor = (80, 160, 1000, 1420)   # top, left, height, width
    visible = editor[2] // line_h
    typed_line = 12
    writer = _Writer(path, width, height, fps)
    for index in range(round(seconds * fps)):
        t = index / fps
        y = np.full((height, width), 50, np.float32)
        u = np.full((height // 2, width // 2), 140, np.float32)
        v = np.full((height // 2, width // 2), 120, np.float32)
        y[:36, :] = 210                                              # top bar
        top, left, h, w = editor
        y[top:top + h, left:left + w] = 235
        u[top // 2:(top + h) // 2, left // 2:(left + w) // 2] = 128
        v[top // 2:(top + h) // 2, left // 2:(left + w) // 2] = 128
        scrolls = int(t // 6)                                        # ten lines every 6 s, scrolled in 0.3 s
        scroll_px = int(line_h * 10 * (scrolls + min(1.0, (t % 6) / 0.3) - 1)) if t >= 6 else 0
        first, offset = divmod(scroll_px, line_h)
        typed = int(t * 8)                                           # eight characters a second
        for row in range(visible + 1):
            number = first + row
            line = lines[number % len(lines)]
            if number == typed_line + scrolls * 10:
                line = line[: typed % 110]
            ry = top + row * line_h - offset
            if ry < top or ry + line_h > top + h:
                continue
            for col, glyph in enumerate(line):
                if glyph >= 0:
                    rx = left + 60 + col * char_w
                    y[ry:ry + line_h, rx:rx + char_w] -= glyphs[glyph] * 200
            if number % 7 == 3:                                      # a highlighted (coloured) keyword line
                u[ry // 2:(ry + line_h) // 2, (left + 60) // 2:(left + 300) // 2] = 160
        if int(t * 2) % 2 == 0:                                      # caret
            y[top + 12 * line_h:top + 13 * line_h, left + 60 + (typed % 110) * char_w:][:, :2] = 20
        if 15 <= t < 18:                                             # a terminal window dragged across
            tx = int(200 + (t - 15) * 300)
            y[500:800, tx:tx + 700] = 25
            v[250:400, tx // 2:(tx + 700) // 2] = 110
            for row in range(12):
                for col, glyph in enumerate(lines[row + 50][:50]):
                    if glyph >= 0:
                        y[520 + row * line_h:540 + row * line_h, tx + 20 + col * char_w:tx + 32 + col * char_w] += (
                            glyphs[glyph] * 180)
        px = int(900 + 500 * math.sin(t / 2.3))                      # mouse pointer
        py = int(540 + 300 * math.sin(t / 3.1))
        for k in range(24):
            y[py + k, px:px + k // 2 + 1] = 255
        writer.write(y, u, v)
    writer.close()


# -- generated with ffmpeg's lavfi, and fetched -------------------------------------------------------------

def _concert(path: Path, seconds: float) -> None:
    shake = "x=32+28*sin(n/3)+9*sin(n/1.7):y=32+20*cos(n/4)+7*sin(n/2.3)"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1984x1144:rate=30:duration={seconds:g}",
         "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=48000:duration={seconds:g}",
         "-vf", f"crop=1920:1080:{shake},noise=alls=14:allf=t+u",
         # CRF 18, not 14: grain at CRF 14 is a 190 Mbit/s file no camera writes, whose decoding alone
         # would weigh on every figure; at 18 it is still far above any rung
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "192k", "-ac", "2", "-shortest", str(path)],
        check=True)


def _animation(path: Path, seconds: float) -> None:
    movie = CORPUS / "bbb.mp4"
    if not movie.exists():
        with tempfile.TemporaryDirectory(dir=CACHE) as download:
            print(f"fetching the {MOVIEPY_SDIST} source package (58 MB) from PyPI for Big Buck Bunny ...", flush=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary=:all:",
                            "--dest", download, MOVIEPY_SDIST], check=True)
            (sdist,) = Path(download).glob("moviepy-*.tar.gz")
            subprocess.run(["tar", "-xzf", str(sdist), "-C", download, f"{sdist.name[:-7]}/{BBB_ZIP}"], check=True)
            with zipfile.ZipFile(Path(download) / sdist.name[:-7] / BBB_ZIP) as archive:
                with archive.open(BBB_MEMBER) as member, open(movie, "wb") as out:
                    while chunk := member.read(1 << 20):
                        out.write(chunk)
    # stream copy: the cut starts at the keyframe before 2:00, with the original bits
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-ss", str(BBB_START_S), "-i", str(movie),
                    "-t", f"{seconds:g}", "-c", "copy", "-avoid_negative_ts", "make_zero", str(path)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    for title, path in build_corpus(args.seconds).items():
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            print(f"{title:13s} {path.relative_to(CACHE)}  {video.width}x{video.height} "
                  f"{float(video.average_rate):.3g} fps  {container.duration / 1e6:.1f} s  "
                  f"{path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
