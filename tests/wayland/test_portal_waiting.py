"""A portal dialog nobody answers: the host says what to do while it waits, and gives up with a
message that says so (the fake portal answers late or never; the rest is real D-Bus)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wavry.media.types import CaptureError
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
def pw() -> Iterator[PipeWireSession]:
    with PipeWireSession() as session:
        yield session


def _capture(pw: PipeWireSession, tmp: Path, notes: list[str], timeout: float) -> WaylandCapture:
    cap = WaylandCapture(
        30,
        path="portal",
        input=False,
        tokens=RestoreTokenStore(tmp / "tokens.json"),
        bus_address=pw.env()["DBUS_SESSION_BUS_ADDRESS"],
        dialog_timeout=timeout,
        notice=notes.append,
    )
    assert cap.cast is None
    return cap


def test_slow_dialog_says_once_what_to_do_then_streams(pw: PipeWireSession, tmp_path: Path) -> None:
    notes: list[str] = []
    with FakePortal(pw, response_delay=1.3):
        cap = _capture(pw, tmp_path, notes, timeout=30)
        cap.start()
        try:
            cap.grab()
        finally:
            cap.stop()
    assert len(notes) == 1, notes
    assert "approve the screen-sharing request on the host's screen" in notes[0]
    assert "30 s" in notes[0]


def test_unanswered_dialog_times_out_saying_so(pw: PipeWireSession, tmp_path: Path) -> None:
    notes: list[str] = []
    with FakePortal(pw, response_delay=30) as portal:
        cap = _capture(pw, tmp_path, notes, timeout=2.0)
        started = time.monotonic()
        with pytest.raises(CaptureError) as err:
            cap.start()
        took = time.monotonic() - started
        assert "nobody answered" in str(err.value) and "within 2 s" in str(err.value)
        assert "approve the screen-sharing request on the host's screen" in str(err.value)
        assert took < 10, took
        assert "OpenPipeWireRemote" not in portal.members()
    assert len(notes) == 1
