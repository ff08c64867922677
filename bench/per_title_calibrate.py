"""How VMAF follows x264's CRF and our probes' PSNR, on clips that are NOT the benchmark's corpus.

    .venv/bin/python bench/per_title_calibrate.py [--seconds 10] [--crfs 16,18,20,22,24]

The per-title defaults (PerTitleSettings) are chosen from this, so that bench/per_title.py then
measures them on other content: a talking head with another seed and twice the sensor noise, ffmpeg's
testsrc2 with still grain instead of the shaken one, Big Buck Bunny from 5:10 instead of 2:00, and a
screen recording with other text. For each clip, the top rung and the 360p rung are encoded in one
transcode at the fixed rate and at each CRF capped by the fixed rung's VBV; printed: bit rate, VMAF,
PSNR-Y at the rung's own size, and the probes' prediction of that PSNR.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import per_title_corpus  # noqa: E402
from common import CACHE  # noqa: E402
from per_title_corpus import CORPUS, build_corpus, ffmpeg_exe  # noqa: E402
from per_title_quality import ladder_quality, rung_bytes, source_tags  # noqa: E402

from pipeline.encode.ladder import LadderSettings, PerTitleSettings, plan_ladder  # noqa: E402
from pipeline.encode.transcode import transcode  # noqa: E402
from pipeline.inspect.probe import probe  # noqa: E402
from pipeline.per_title.complexity import analyze_complexity  # noqa: E402
from pipeline.per_title.decision import _Curve  # noqa: E402

CALIBRATION = CACHE / "calibration"


def clips(seconds: float) -> dict[str, Path]:
    CALIBRATION.mkdir(parents=True, exist_ok=True)
    build_corpus(30)                     # brings bbb.mp4
    made = {}
    for name, make in (("talking-head-b", _talking_head_b), ("grain-b", _grain_b), ("animation-b", _animation_b),
                       ("screen-b", _screen_b)):
        path = CALIBRATION / f"{name}-{seconds:g}s.mp4"
        if not path.exists():
            print(f"making {path.name} ...", flush=True)
            partial = path.with_name(path.name + ".partial.mp4")
            make(partial, seconds)
            partial.replace(path)
        made[name] = path
    return made


def _talking_head_b(path: Path, seconds: float) -> None:
    per_title_corpus._talking_head(path, seconds, seed=3, noise=2.0)


def _screen_b(path: Path, seconds: float) -> None:
    per_title_corpus._screen(path, seconds, seed=5)


def _grain_b(path: Path, seconds: float) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds:g}", "-vf", "noise=alls=12:allf=t",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p", str(path)],
                   check=True)


def _animation_b(path: Path, seconds: float) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-ss", "310", "-i", str(CORPUS / "bbb.mp4"),
                    "-t", f"{seconds:g}", "-c", "copy", "-avoid_negative_ts", "make_zero", str(path)], check=True)


def calibrate(name: str, source: Path, crfs: list[float], settings: LadderSettings) -> None:
    info = probe(source).video
    ladder = plan_ladder(info.display_width, info.display_height, settings)
    rungs = [ladder[0], next(r for r in ladder if r.name == "360p")]
    analysis = analyze_complexity(source, ladder, replace(settings, per_title=PerTitleSettings(probe_crfs=(18.0, 26.0))))
    curves = {probe_.rendition.name: _Curve(probe_.points) for probe_ in analysis.rungs}
    encodes = []
    for rung in rungs:
        encodes.append(replace(rung, name=f"{rung.name}-fixed"))
        encodes += [replace(rung, name=f"{rung.name}-crf{crf:g}", crf=crf, peak_bitrate_bps=rung.maxrate_bps)
                    for crf in crfs]
    with tempfile.TemporaryDirectory(dir=CACHE) as out:
        transcode(source, encodes, out, settings)
        directories = {r.name: Path(out) / r.name for r in encodes}
        quality = ladder_quality(source, directories, (info.display_width, info.display_height), subsample=2,
                                 retag=source_tags(source))
        print(f"\n{name}")
        for encode in encodes:
            rung_name, _, mode = encode.name.partition("-")
            measured = {**quality[encode.name], **rung_bytes(directories[encode.name])}
            curve = curves[rung_name]
            predicted = curve.quality(encode.crf) if encode.crf is not None else curve.quality(
                curve.crf_for_rate(encode.video_bitrate_bps))
            print(f"  {rung_name:6s} {mode:6s} {measured['video_bitrate_bps'] / 1000:8.0f} kbit/s  VMAF "
                  f"{measured['vmaf']:6.2f}  PSNR-Y own {measured['own_psnr_y']:6.2f} (probes predicted "
                  f"{predicted:6.2f})  SSIM {measured['ssim']:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--crfs", default="16,18,20,22,24")
    parser.add_argument("--clips", default="talking-head-b,grain-b,animation-b,screen-b")
    args = parser.parse_args()
    settings = LadderSettings(preset="veryfast")
    made = clips(args.seconds)
    for name in args.clips.split(","):
        calibrate(name, made[name], [float(c) for c in args.crfs.split(",")], settings)


if __name__ == "__main__":
    main()
