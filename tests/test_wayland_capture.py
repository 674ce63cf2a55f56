"""The PipeWire consumer of the wayland source against a real PipeWire video node.

The node is published by the fake portal from the synthetic marker source (frame id + capture
time in every picture), so the test reads the ids back from the captured pixels.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wavry.media.decode import Decoder
from wavry.media.encode import Codec, Encoder
from wavry.media.marker import read_marker
from wavry.media.wayland import WaylandCapture, gstreamer_problem
from wavry.platform.portal import RestoreTokenStore
from wavry.testing import pwsession
from wavry.testing.portal_fake import FakePortal
from wavry.testing.pwsession import PipeWireSession

pytestmark = [
    pytest.mark.skipif(not pwsession.probe().ok, reason="PipeWire is not installed"),
    pytest.mark.skipif(bool(gstreamer_problem()), reason=gstreamer_problem() or "GStreamer ok"),
]


@pytest.fixture(scope="module")
def desktop() -> Iterator[tuple[PipeWireSession, FakePortal]]:
    with PipeWireSession() as pw, FakePortal(pw, width=640, height=360, fps=60) as portal:
        yield pw, portal


def _capture(
    desktop: tuple[PipeWireSession, FakePortal], tmp: Path, **kw: object
) -> WaylandCapture:
    pw, _ = desktop
    bus = pw.env()["DBUS_SESSION_BUS_ADDRESS"]
    tokens = RestoreTokenStore(tmp / "t.json")
    return WaylandCapture(kw.pop("fps", 60), tokens=tokens, bus_address=bus, **kw)  # type: ignore[arg-type]


def test_frames_have_stream_size_and_increasing_marker_ids(
    desktop: tuple[PipeWireSession, FakePortal], tmp_path: Path
) -> None:
    cap = _capture(desktop, tmp_path, fps=60)
    cap.start()
    try:
        assert cap.size == (640, 360) and cap.stream_size == (640, 360)
        ids: list[int] = []
        stamps: list[int] = []
        t0 = time.monotonic()
        n = 90
        for _ in range(n):
            f = cap.grab()
            assert f.image.format.name == "yuv420p"
            assert (f.image.width, f.image.height) == (640, 360)
            m = read_marker(f.image)
            assert m is not None, "marker unreadable in a captured picture"
            ids.append(m[0])
            stamps.append(m[1])
            # the marker's time is when the node drew the picture; capture_ts is not before it
            assert f.capture_ts >= m[1] - 2000
            assert f.capture_us >= 0
        elapsed = time.monotonic() - t0
        fps = n / elapsed
    finally:
        cap.stop()
    assert ids == sorted(ids), ids
    assert len(set(ids)) >= n * 0.8, f"too many repeats: {ids}"
    assert ids[-1] - ids[0] >= n * 0.8
    assert fps > 40, f"{fps:.1f} fps through PipeWire"


def test_paced_to_requested_fps_dropping_not_queueing(
    desktop: tuple[PipeWireSession, FakePortal], tmp_path: Path
) -> None:
    cap = _capture(desktop, tmp_path, fps=20)
    cap.start()
    try:
        ids = []
        t0 = time.monotonic()
        for _ in range(20):
            m = read_marker(cap.grab().image)
            assert m is not None
            ids.append(m[0])
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
    finally:
        cap.stop()
    assert 0.8 < elapsed < 1.6, elapsed
    # the 60 fps node moved on about three frames per grab: the newest picture is taken
    steps = [b - a for a, b in itertools.pairwise(ids)]
    assert sum(steps) / len(steps) > 2.0, ids


def test_bgrx_output_and_encoder_round_trip(
    desktop: tuple[PipeWireSession, FakePortal], tmp_path: Path
) -> None:
    cap = _capture(desktop, tmp_path, fps=60, pixel_format="BGRx")
    cap.start()
    enc = Encoder(Codec.H264, 640, 360, 60, 8000)
    dec = Decoder(Codec.H264)
    try:
        seen = []
        for i in range(10):
            f = cap.grab()
            assert f.image.format.name == "bgr0"
            out = dec.decode(enc.encode(f.image, force_keyframe=i == 0).data)
            assert out is not None
            m = read_marker(out.frame)
            if m is not None:
                seen.append(m[0])
    finally:
        cap.stop()
        enc.close()
    assert len(seen) >= 5 and seen == sorted(seen)


def test_static_screen_repeats_last_picture(
    desktop: tuple[PipeWireSession, FakePortal], tmp_path: Path
) -> None:
    _, portal = desktop
    cap = _capture(desktop, tmp_path, fps=60, idle_repeat_s=0.1)
    cap.start()
    try:
        cap.grab()
        for s in portal.sessions.values():
            assert s.node is not None
            s.node.stop()  # nothing new arrives, like a desktop where nothing moves
        time.sleep(0.2)
        before = cap.frames_repeated
        t0 = time.monotonic()
        frames = [cap.grab() for _ in range(3)]
        assert cap.frames_repeated - before >= 2
        assert time.monotonic() - t0 < 1.0
        assert frames[-1].frame_index > frames[0].frame_index
    finally:
        cap.stop()


def test_silent_stream_is_reconnected_and_resumes(
    desktop: tuple[PipeWireSession, FakePortal], tmp_path: Path
) -> None:
    _, portal = desktop
    cap = _capture(desktop, tmp_path, fps=30, idle_repeat_s=0.1, reconnect_after_s=0.5)
    starts, remotes = portal.members().count("Start"), portal.members().count("OpenPipeWireRemote")
    cap.start()
    try:
        (node,) = [s.node for s in portal.sessions.values() if s.node is not None]
        first = read_marker(cap.grab().image)
        assert first is not None
        node.pause()  # the desktop stands still
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:
            cap.grab()
        assert cap.reconnects >= 1 and cap.frames_repeated > 0
        # the portal session was kept: no new dialog, just another PipeWire connection
        assert portal.members().count("Start") == starts + 1
        assert portal.members().count("OpenPipeWireRemote") == remotes + 1 + cap.reconnects
        node.resume()
        ids = []
        for _ in range(10):
            m = read_marker(cap.grab().image)
            if m is not None:
                ids.append(m[0])
        assert ids and ids[-1] > first[0] and ids == sorted(ids)
        assert len(set(ids)) >= 5
    finally:
        cap.stop()
