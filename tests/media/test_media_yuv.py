"""libyuv colour conversion (wavry.media.yuv) against an exact reference and against swscale,
and the encoder's fallback to swscale where libyuv is missing."""

from __future__ import annotations

from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from av.video.reformatter import VideoReformatter

from wavry.media import yuv
from wavry.media.decode import Decoder
from wavry.media.encode import Codec, Encoder
from wavry.media.synthetic import SyntheticCapture
from wavry.media.yuv import PackedToI420

pytestmark = pytest.mark.skipif(yuv.libyuv() is None, reason="libyuv0 is not installed")

Image = npt.NDArray[np.uint8]
SIZES = [(640, 360), (1280, 720), (65, 37), (641, 361), (3, 1)]


def desktop(w: int, h: int, seed: int = 0) -> Image:
    """A (h, w, 4) R, G, B, X picture: the synthetic test scene (textured background, moving
    square, frame marker), a smooth gradient strip, a white window with black text-like noise."""
    sw, sh = max(128, w + w % 2), max(64, h + h % 2)  # the scene needs an even size, ≥ 128×64
    scene = SyntheticCapture(sw, sh, 30, paced=False).make_frame(7, 123_456)
    rgb = scene.to_ndarray(format="rgb24")[:h, :w]
    out = np.zeros((h, w, 4), np.uint8)
    out[..., :3] = rgb
    y, x = np.mgrid[0:h, 0:w]
    band = slice(0, max(1, h // 4))
    out[band, :, 0] = (x[band] * 255 // max(1, w - 1)).astype(np.uint8)
    out[band, :, 1] = (y[band] * 255 // max(1, h - 1)).astype(np.uint8)
    win = (slice(h // 2, h), slice(w // 3, w))
    text = np.random.default_rng(seed).integers(0, 2, out[win].shape[:2], dtype=np.uint8)
    out[win][..., :3] = (255 * (1 - text))[..., None]
    return out


def packed_frame(rgbx: Image, fmt: str) -> av.VideoFrame:
    """``rgbx`` (R, G, B, X per pixel) as a packed ``fmt`` frame (bgr0 stores B, G, R, X)."""
    h, w = rgbx.shape[:2]
    frame = av.VideoFrame(w, h, fmt)
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    order = [2, 1, 0, 3] if fmt.startswith("bgr") else [0, 1, 2, 3]
    rows[:, : w * 4] = rgbx[..., order].reshape(h, w * 4)
    return frame


def plane(frame: av.VideoFrame, i: int) -> npt.NDArray[np.int64]:
    p = frame.planes[i]
    rows = np.frombuffer(p, np.uint8).reshape(-1, p.line_size)
    return rows[: p.height, : p.width].astype(np.int64)


def reference_i420(rgbx: Image) -> list[npt.NDArray[np.float64]]:
    """BT.601 limited range; chroma of each 2×2 block's mean colour (edges repeated)."""
    h, w = rgbx.shape[:2]
    ph, pw = -h % 2, -w % 2
    r, g, b = (rgbx[..., c].astype(np.float64) for c in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255

    def box(c: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        c = np.pad(c, ((0, ph), (0, pw)), mode="edge")
        return c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3))

    rb, gb, bb = box(r), box(g), box(b)
    u = 128 + (-37.797 * rb - 74.203 * gb + 112.0 * bb) / 255
    v = 128 + (112.0 * rb - 93.786 * gb - 18.214 * bb) / 255
    return [np.rint(y), np.rint(u), np.rint(v)]


def converter() -> PackedToI420:
    conv = PackedToI420.open()
    assert conv is not None
    return conv


@pytest.mark.parametrize("fmt", ["bgr0", "rgb0"])
@pytest.mark.parametrize(("w", "h"), SIZES)
def test_packed_to_i420_matches_the_exact_conversion(fmt: str, w: int, h: int) -> None:
    rgbx = desktop(w, h)
    out = converter().convert(packed_frame(rgbx, fmt))
    assert out is not None and out.format.name == "yuv420p" and (out.width, out.height) == (w, h)
    for i, ref in enumerate(reference_i420(rgbx)):
        got = plane(out, i)
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= 2, f"plane {i}"


@pytest.mark.parametrize("fmt", ["bgr0", "rgb0"])
@pytest.mark.parametrize(("w", "h"), SIZES[:-1])  # 3×1 has no smooth colour to compare
def test_packed_to_i420_agrees_with_swscale(fmt: str, w: int, h: int) -> None:
    """Luma is the same as swscale's; chroma too where colour changes smoothly. (At sharp colour
    edges swscale's chroma is not a 2×2 mean, so the two differ there by design.)"""
    rgbx = desktop(w, h)
    frame = packed_frame(rgbx, fmt)
    ours = converter().convert(frame)
    theirs = VideoReformatter().reformat(frame, w, h, "yuv420p")
    assert ours is not None
    assert np.abs(plane(ours, 0) - plane(theirs, 0)).max() <= 1
    y, x = np.mgrid[0:h, 0:w]
    smooth = np.zeros((h, w, 4), np.uint8)
    smooth[..., 0] = x * 200 // max(1, w - 1) + 20
    smooth[..., 1] = y * 200 // max(1, h - 1) + 20
    smooth[..., 2] = (x + y) * 100 // max(1, w + h - 2) + 60
    frame = packed_frame(smooth, fmt)
    ours = converter().convert(frame)
    theirs = VideoReformatter().reformat(frame, w, h, "yuv420p")
    assert ours is not None
    for i in range(3):
        assert np.abs(plane(ours, i) - plane(theirs, i)).max() <= 2, f"plane {i}"


def test_a_format_libyuv_does_not_take_is_refused() -> None:
    assert converter().convert(av.VideoFrame(64, 32, "rgb24")) is None


def _encode_decode(enc: Encoder, rgbx: Image) -> Any:
    dec = Decoder(Codec.H264)
    out = None
    for _ in range(3):
        out = dec.decode(enc.encode(packed_frame(rgbx, "bgr0")).data)
    assert out is not None
    return out.yuv_arrays()[0]


def test_the_encoder_converts_with_libyuv_and_falls_back_to_swscale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rgbx = np.zeros((240, 320, 4), np.uint8)
    rgbx[:, :160] = 255
    enc = Encoder(Codec.H264, 320, 240, 30, bitrate_kbps=500)
    assert enc._yuv is not None  # libyuv is installed here
    calls = []
    convert = enc._yuv.convert
    monkeypatch.setattr(enc._yuv, "convert", lambda f: calls.append(f) or convert(f))
    y = _encode_decode(enc, rgbx)
    assert len(calls) == 3
    assert y[:, :150].mean() > 200 and y[:, 170:].mean() < 40

    # without the library (the loader finds nothing): swscale, same picture
    monkeypatch.setattr(yuv, "_LIB", None)
    monkeypatch.setattr(yuv, "_LOADED", False)
    monkeypatch.setattr(yuv.ctypes, "CDLL", _no_library)
    assert yuv.libyuv() is None and PackedToI420.open() is None
    enc = Encoder(Codec.H264, 320, 240, 30, bitrate_kbps=500)
    assert enc._yuv is None
    y = _encode_decode(enc, rgbx)
    assert y[:, :150].mean() > 200 and y[:, 170:].mean() < 40


def _no_library(name: str, *args: Any, **kwargs: Any) -> Any:
    raise OSError(f"{name}: cannot open shared object file")


def test_another_size_than_the_encoders_is_scaled_by_swscale() -> None:
    enc = Encoder(Codec.H264, 320, 240, 30, bitrate_kbps=500)
    y = _encode_decode(enc, np.full((480, 640, 4), 255, np.uint8))
    assert y.shape == (240, 320) and y.mean() > 200


def _into_surface(src: av.VideoFrame, fmt: str) -> Image:
    """``src`` written by libyuv into a packed buffer with a row pitch of its own; the bytes
    past each row must be left alone. The (h, w, 4) picture as stored."""
    w, h = src.width, src.height
    pitch = w * 4 + 64
    surface = np.full((h, pitch), 0x5A, np.uint8)
    assert yuv.packs_i420_to(fmt)
    assert yuv.i420_to_packed(src, fmt, int(surface.ctypes.data), pitch)
    assert (surface[:, w * 4 :] == 0x5A).all()
    return surface[:, : w * 4].reshape(h, w, 4)


@pytest.mark.parametrize("fmt", ["bgr0", "bgra", "rgb0", "rgba"])
@pytest.mark.parametrize(("w", "h"), [(640, 360), (1280, 720)])
def test_i420_into_a_packed_surface_agrees_with_swscale(fmt: str, w: int, h: int) -> None:
    """The client's window-surface path at decoded-video sizes: libyuv straight into the
    surface against swscale's picture of the same format (BT.601 limited range both)."""
    src = converter().convert(packed_frame(desktop(w, h), "bgr0"))
    assert src is not None
    got = _into_surface(src, fmt).astype(np.int64)
    p = VideoReformatter().reformat(src, w, h, fmt).planes[0]
    ref = np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:h, : w * 4].reshape(h, w, 4)
    # colour bytes only: libyuv writes 255 into X/A, swscale what it likes
    assert np.abs(got[..., :3] - ref[..., :3].astype(np.int64)).max() <= 3


@pytest.mark.parametrize(("w", "h"), [(641, 361), (65, 37)])
def test_i420_into_a_packed_surface_at_odd_sizes_gives_the_picture_back(w: int, h: int) -> None:
    """Odd sizes (where swscale's own round trip is off by up to 37 here): a smooth picture
    through I420 and back is the picture within the rounding of two conversions and of the
    2×2 chroma (the gradient is steep at 65×37)."""
    y, x = np.mgrid[0:h, 0:w]
    smooth = np.zeros((h, w, 4), np.uint8)
    smooth[..., 0] = x * 200 // max(1, w - 1) + 20
    smooth[..., 1] = y * 200 // max(1, h - 1) + 20
    smooth[..., 2] = (x + y) * 100 // max(1, w + h - 2) + 60
    src = converter().convert(packed_frame(smooth, "bgr0"))
    assert src is not None
    got = _into_surface(src, "bgr0")[..., [2, 1, 0]].astype(np.int64)  # B, G, R → R, G, B
    assert np.abs(got - smooth[..., :3].astype(np.int64)).max() <= 6


def test_i420_into_a_packed_surface_refuses_what_it_cannot_write() -> None:
    frame = av.VideoFrame(64, 32, "yuv420p")
    buf = np.zeros((32, 64 * 4), np.uint8)
    assert not yuv.packs_i420_to("rgb565le")
    assert not yuv.i420_to_packed(frame, "rgb565le", int(buf.ctypes.data), 64 * 4)
    assert not yuv.i420_to_packed(av.VideoFrame(64, 32, "nv12"), "bgr0", int(buf.ctypes.data), 256)


def _i420(w: int, h: int, seed: int) -> av.VideoFrame:
    rng = np.random.default_rng(seed)
    frame = av.VideoFrame(w, h, "yuv420p")
    for i, plane in enumerate(frame.planes):
        ph = h if i == 0 else (h + 1) // 2
        a = np.frombuffer(plane, np.uint8, count=ph * plane.line_size).reshape(ph, -1)
        a[:] = rng.integers(16, 236, a.shape, dtype=np.uint8)
    return frame


def _touch(frame: av.VideoFrame, plane: int, row: int, col: int) -> av.VideoFrame:
    """A copy of ``frame`` with one byte of one plane changed."""
    out = av.VideoFrame(frame.width, frame.height, "yuv420p")
    for src, dst in zip(frame.planes, out.planes, strict=True):
        np.frombuffer(dst, np.uint8)[:] = np.frombuffer(src, np.uint8)
    p = out.planes[plane]
    np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[row, col] ^= 0x40
    return out


@pytest.mark.parametrize(("w", "h"), [(1280, 720), (1366, 770), (65, 101)])
def test_changed_rows_finds_every_changed_band_and_only_those(w: int, h: int) -> None:
    from wavry.client.present import BAND_ROWS, changed_rows

    a = _i420(w, h, 1)
    assert changed_rows(a, a) == []
    assert changed_rows(a, None) is None
    assert changed_rows(a, _i420(w + 2, h, 1)) is None
    band = BAND_ROWS
    # one luma byte: its band; the last column too (the compared width is the picture's)
    b = _touch(a, 0, 2 * band + 3, w - 1)
    assert changed_rows(b, a) == [(2 * band, 3 * band)]
    # one chroma byte counts for its two luma rows
    c = _touch(a, 2, band // 2, (w - 1) // 2)
    assert changed_rows(c, a) == [(band, 2 * band)]
    # the last row: the last (maybe short) band
    last = (h - 1) // band * band
    assert changed_rows(_touch(a, 0, h - 1, 0), a) == [(last, h)]
    # neighbouring bands merge, distant ones do not
    d = _touch(_touch(_touch(a, 0, 0, 5), 0, band, 5), 1, (h - 1) // 2, 0)
    assert changed_rows(d, a) == [(0, 2 * band), (last, h)]


def test_converting_the_changed_bands_gives_the_whole_conversion() -> None:
    """The window's partial update: the changed bands of a new picture converted over the old
    picture's pixels equal the new picture converted whole (libyuv takes one chroma row for
    two luma rows, no vertical filter across a band's edge)."""
    from wavry.client.present import changed_rows

    w, h = 640, 360
    old = _i420(w, h, 3)
    new = _touch(_touch(old, 0, 100, 10), 1, 120, 300)
    pitch = w * 4
    partial = np.zeros((h, pitch), np.uint8)
    whole = np.zeros((h, pitch), np.uint8)
    assert yuv.i420_to_packed(old, "bgr0", int(partial.ctypes.data), pitch)
    bands = changed_rows(new, old)
    assert bands == [(96, 112), (240, 256)]
    for rows in bands:
        assert yuv.i420_to_packed(new, "bgr0", int(partial.ctypes.data), pitch, rows=rows)
    assert yuv.i420_to_packed(new, "bgr0", int(whole.ctypes.data), pitch)
    assert np.array_equal(partial, whole)
    with pytest.raises(ValueError, match=r"rows 3\.\.16"):
        yuv.i420_to_packed(new, "bgr0", int(whole.ctypes.data), pitch, rows=(3, 16))
