"""Per-frame cost of each media stage on this machine: ``python -m wavry.media.measure``.

Prints a table (median and p95 in ms) for: synthetic frame generation, bgr0→yuv420p conversion
with one reused reformatter vs a new one per frame vs libyuv, x264/x265/SVT-AV1 encode,
H.264/HEVC/AV1 decode, and X11 capture of a private Xvfb. Not a test: numbers depend on the
machine's load.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from wavry.media.decode import Decoder
from wavry.media.encode import Codec, Encoder
from wavry.media.synthetic import SyntheticCapture
from wavry.media.yuv import PackedToI420

__all__ = ["main", "measure"]


def _stats(samples_us: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_us)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return statistics.median(ordered) / 1000, p95 / 1000


def _time(fn: Callable[[int], Any], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(i)
        out.append((time.perf_counter_ns() - t0) / 1000)
    return out


def measure(
    width: int = 1280,
    height: int = 720,
    fps: int = 60,
    frames: int = 120,
    codecs: tuple[Codec, ...] = (Codec.H264,),
    x11: bool = True,
) -> dict[str, tuple[float, float]]:
    """{stage: (median_ms, p95_ms)} at ``width``x``height``."""
    res: dict[str, tuple[float, float]] = {}
    src = SyntheticCapture(width, height, fps, paced=False, noise=24)
    src.start()
    res["synthetic frame"] = _stats(_time(lambda i: src.make_frame(i, i), frames))
    pictures = [src.grab().image for _ in range(frames)]

    rgb = np.random.default_rng(0).integers(0, 255, (height, width, 4), dtype=np.uint8)
    bgr0 = av.VideoFrame.from_ndarray(rgb, format="bgra")
    reuse = VideoReformatter()
    res["bgra→yuv420p, reused ctx"] = _stats(
        _time(lambda i: reuse.reformat(bgr0, width, height, "yuv420p"), frames)
    )
    res["bgra→yuv420p, new ctx"] = _stats(
        _time(lambda i: VideoReformatter().reformat(bgr0, width, height, "yuv420p"), frames)
    )
    libyuv = PackedToI420.open()
    if libyuv is not None:  # what the encoder uses when libyuv0 is installed
        res["bgra→yuv420p, libyuv"] = _stats(_time(lambda i: libyuv.convert(bgr0), frames))

    for codec in codecs:
        enc = Encoder(codec, width, height, fps, bitrate_kbps=8000 if codec is Codec.H264 else 4000)
        packets: list[bytes] = []
        samples: list[float] = []
        for pic in pictures:
            out = enc.encode(pic)
            samples.append(out.encode_us)
            packets.append(out.data)
        res[f"encode {enc.encoder_name}"] = _stats(samples[5:])
        dec = Decoder(codec)
        dsamples: list[float] = []
        for data in packets:
            t0 = time.perf_counter_ns()
            dec.decode(data)
            dsamples.append((time.perf_counter_ns() - t0) / 1000)
        res[f"decode {codec.value}"] = _stats(dsamples[5:])
        kbps = sum(len(p) for p in packets[5:]) * 8 * fps / (len(packets) - 5) / 1000
        res[f"bitrate {codec.value} (kbit/s, not ms)"] = (kbps, kbps)

    if x11:
        from wavry.media.virtual import VirtualCapture

        cap = VirtualCapture(width, height, fps=240, draw_mouse=True)
        cap.start()
        try:
            shots = []
            calls = []
            for _ in range(frames):
                t0 = time.perf_counter_ns()
                shots.append(cap.grab())
                calls.append((time.perf_counter_ns() - t0) / 1000)
        finally:
            cap.close()
        # Requested at 240 fps, so x11grab's pacing wait is (almost) nil and the call time is
        # the cost of one XShmGetImage + wrapping the picture.
        res["x11 grab() call (x11grab, SHM)"] = _stats(calls[5:])
        res["x11 capture_us (stamp→frame)"] = _stats([float(s.capture_us) for s in shots[5:]])
    return res


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=60)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--all-codecs", action="store_true", help="also HEVC and AV1")
    parser.add_argument("--no-x11", action="store_true")
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    codecs = (Codec.H264, Codec.HEVC, Codec.AV1) if args.all_codecs else (Codec.H264,)
    res = measure(w, h, args.fps, args.frames, codecs, not args.no_x11)
    print(f"{'stage':36} {'median':>9} {'p95':>9}   ({w}x{h}, {args.frames} frames)")
    for name, (med, p95) in res.items():
        print(f"{name:36} {med:9.2f} {p95:9.2f}")


if __name__ == "__main__":
    main()
