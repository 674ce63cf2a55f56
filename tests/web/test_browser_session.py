"""The browser client end to end: `wavry host --web --source synthetic` and the page in headless
Chromium (Playwright), over WebTransport and over the WebSocket fallback.

The canvas must show the host's picture: the frame id and timestamp read back from the drawn
pixels (the synthetic source's marker) name the frame, which the test renders again from the
same source code and compares (PSNR). The page's glass-to-glass latency comes from that marker
too. A link naming another host identity must be refused before anything is streamed.
"""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wavry.media.marker import read_marker
from wavry.media.synthetic import SyntheticCapture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

W, H, FPS = 640, 360, 30
SOURCE = ("--source", "synthetic", "--size", f"{W}x{H}", "--fps", str(FPS), "--trust", "any")


def canvas_rgb(page: Any) -> np.ndarray:
    got = page.evaluate(
        """() => {
        const c = document.getElementById("screen");
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let s = "";
        for (let i = 0; i < d.length; i += 0x8000) {
            s += String.fromCharCode(...d.subarray(i, i + 0x8000));
        }
        return { w: c.width, h: c.height, b64: btoa(s) };
    }"""
    )
    rgba = np.frombuffer(base64.b64decode(got["b64"]), dtype=np.uint8)
    return rgba.reshape(got["h"], got["w"], 4)[:, :, :3]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * float(np.log10(255.0**2 / mse))


def source_luma(frame_id: int, timestamp_us: int) -> np.ndarray:
    """The luma of the picture `wavry host --source synthetic` captured as frame `frame_id`."""
    frame = SyntheticCapture(W, H, FPS, noise=12).make_frame(frame_id, timestamp_us)
    return np.asarray(frame.to_ndarray(format="yuv420p"))[:H]


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of the canvas (colour conversions differ most in saturated colours; the
    luma is what the pattern's ramp, box and marker are drawn in)."""
    return np.asarray(rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114]))


def assert_shows_host_picture(page: Any) -> None:
    for _ in range(10):  # a frame drawn while the test reads it back can still be mid-update
        rgb = canvas_rgb(page)
        assert rgb.shape == (H, W, 3)
        mark = read_marker(rgb)
        if mark is not None:
            break
    assert mark is not None, "no readable marker in the canvas: it does not show the stream"
    frame_id, ts = mark
    y = luma(rgb)
    same = psnr(y, source_luma(frame_id, ts))
    # the next frame (ramp 4 px on, box moved) must match clearly worse: the canvas shows this
    # very frame, not just something like the pattern
    other = psnr(y, source_luma(frame_id + 1, ts))
    # (the absolute figure depends on the bitrate congestion control chose: loose)
    assert same >= 22.0, f"canvas vs frame {frame_id}: PSNR {same:.1f} dB"
    assert same > other + 3.0, f"not frame-specific: {same:.1f} vs {other:.1f} dB"


def streaming(transport: str, frames: int) -> Any:
    return lambda s: s.get("transport") == transport and s.get("framesDecoded", 0) >= frames


@pytest.mark.parametrize("transport", ["webtransport", "websocket"])
def test_page_streams_host_picture(
    chromium: Any, web: Any, synthetic_host: Any, transport: str
) -> None:
    host = synthetic_host
    ended = host.output().count(" ended: ")
    query = "?transport=websocket" if transport == "websocket" else ""
    page = web.open_page(chromium, host.link(query))
    try:
        first = web.wait_stats(page, streaming(transport, 20))
        t0 = time.monotonic()
        more = first["framesDecoded"] + 90
        stats = web.wait_stats(page, lambda s: s["framesDecoded"] >= more)
        rate = (stats["framesDecoded"] - first["framesDecoded"]) / (time.monotonic() - t0)
        assert stats["hostId"] == host.wavry_id
        assert stats["codec"] == "h264" and (stats["width"], stats["height"]) == (W, H)
        # frames at the stream's rate (this machine is shared: allow for scheduling)
        assert rate >= FPS * 0.5, (rate, stats)
        # end-to-end (capture timestamp → drawn, clocks aligned by Ping/Pong) and
        # glass-to-glass from the marker read back out of the decoded pixels
        assert 0 < stats["e2eP50Ms"] < 250, stats
        stats = web.wait_stats(page, lambda s: s.get("markerP50Ms") is not None)
        assert 0 < stats["markerP50Ms"] < 250, stats
        assert_shows_host_picture(page)
        assert "accepted" in host.output()
    finally:
        page.context.close()
    # the page's session ends with its carrier at once, not after the 10 s liveness timeout
    deadline = time.monotonic() + 5
    while host.output().count(" ended: ") == ended and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host.output().count(" ended: ") > ended, host.output()


def test_page_falls_back_to_websocket_when_webtransport_fails(
    chromium: Any, web: Any, synthetic_host: Any
) -> None:
    host = synthetic_host
    wrong_hash = "h=" + "A" * 43  # a certificate hash the host does not have
    page = web.open_page(chromium, host.link(fragment=f"{wrong_hash}&id={host.wavry_id}"))
    try:
        stats = web.wait_stats(page, streaming("websocket", 10))
        assert stats["hostId"] == host.wavry_id
    finally:
        page.context.close()


def test_wrong_host_identity_is_refused(chromium: Any, web: Any, synthetic_host: Any) -> None:
    host = synthetic_host
    accepted = host.output().count("accepted")
    other = "B" * 42 + "A"  # well-formed, not this host
    cert = host.url.split("#", 1)[1].split("&")[0]
    page = web.open_page(chromium, host.link(fragment=f"{cert}&id={other}"))
    try:
        stats = web.wait_stats(page, lambda s: "refused" in s.get("state", ""))
        assert "identity mismatch" in stats["error"], stats
        assert other in stats["error"] and host.wavry_id in stats["error"]
        assert stats["framesDecoded"] == 0 and stats["sessionState"] == "none"
        assert page.is_visible("#error") and "mismatch" in page.inner_text("#error")
    finally:
        page.context.close()
    assert host.output().count("accepted") == accepted


def test_pairing_code_typed_in_page_then_trusted(chromium: Any, web: Any, tmp_path: Path) -> None:
    paired = ("--source", "synthetic", "--size", f"{W}x{H}", "--fps", str(FPS))
    with web.host(tmp_path, *paired) as host:
        page = web.open_page(chromium, host.link())
        try:
            page.wait_for_selector("#pair", state="visible", timeout=30_000)
            code = host.wait_for(r"Pairing code: (\d{3}) (\d{3})")
            wrong = "000000" if code.group(1) + code.group(2) != "000000" else "111111"
            page.fill("#pair-code", wrong)
            page.click("#pair button")
            web.wait_js(
                page, "document.getElementById('pair-message').textContent.includes('wrong code')"
            )
            page.fill("#pair-code", f"{code.group(1)} {code.group(2)}")
            page.click("#pair button")
            web.wait_stats(page, lambda s: s.get("framesDecoded", 0) >= 10)
            assert page.is_hidden("#pair")
            browser_id = page.evaluate("window.wavryStats().myId")
            host.wait_for(r"paired and trusted: .*" + re.escape(browser_id))
            # the identity lives in IndexedDB: the same browser comes back without pairing
            page.reload()
            stats = web.wait_stats(page, lambda s: s.get("framesDecoded", 0) >= 10)
            assert stats["myId"] == browser_id
            assert page.is_hidden("#pair")
        finally:
            page.context.close()


def test_av1_when_the_host_prefers_it(chromium: Any, web: Any, tmp_path: Path) -> None:
    """The page offers AV1 (WebCodecs can decode it here) and the host, preferring it, picks it."""
    args = ("--source", "synthetic", "--size", "320x240", "--fps", "30", "--trust", "any")
    with web.host(tmp_path, *args, "--codec", "av1") as host:
        page = web.open_page(chromium, host.link())
        try:
            stats = web.wait_stats(page, lambda s: s.get("framesDecoded", 0) >= 30, timeout=60)
            assert stats["codec"] == "av1", stats
            assert stats["decodeErrors"] == 0
            stats = web.wait_stats(page, lambda s: s.get("markerP50Ms") is not None)
            assert 0 < stats["markerP50Ms"] < 500
        finally:
            page.context.close()


def test_bare_address_asks_the_serving_host(chromium: Any, web: Any, synthetic_host: Any) -> None:
    """https://HOST:PORT/ with no fragment: the page takes the ID and hash from the host that
    served it (/rift-info.json) and still uses WebTransport."""
    host = synthetic_host
    page = web.open_page(chromium, host.url.split("#", 1)[0])
    try:
        stats = web.wait_stats(page, streaming("webtransport", 10))
        assert stats["hostId"] == host.wavry_id
    finally:
        page.context.close()
