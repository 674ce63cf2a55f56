"""The portal D-Bus flow of the wayland source against a fake xdg-desktop-portal on a private bus.

The fake (wavry.testing.portal_fake) plays only the D-Bus side: real Request/Response signals,
a real PipeWire node from the synthetic marker source. Everything under test is the real
client: wavry.platform.portal.PortalSession and wavry.media.wayland.WaylandCapture.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wavry.media.types import CaptureError
from wavry.media.wayland import WaylandCapture, gstreamer_problem
from wavry.media.wayland import probe as wayland_probe
from wavry.platform.portal import (
    CURSOR_EMBEDDED,
    CURSOR_HIDDEN,
    PortalCancelled,
    PortalError,
    PortalSession,
    RestoreTokenStore,
    probe_portal,
)
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


@pytest.fixture
def bus(pw: PipeWireSession) -> str:
    return pw.env()["DBUS_SESSION_BUS_ADDRESS"]


def _capture(bus: str, tokens: RestoreTokenStore, **kw: object) -> WaylandCapture:
    return WaylandCapture(30, tokens=tokens, bus_address=bus, **kw)  # type: ignore[arg-type]


def test_flow_options_and_restore_token_reused(
    pw: PipeWireSession, bus: str, tmp_path: Path
) -> None:
    tokens = RestoreTokenStore(tmp_path / "cfg" / "portal-restore-token.json")
    with FakePortal(pw) as portal:
        cap = _capture(bus, tokens, input=False)
        cap.start()
        try:
            assert cap.size == (640, 480)
            assert cap.grant is not None and cap.grant.streams[0].size == (640, 480)
            assert not cap.grant.remote_desktop
        finally:
            cap.stop()
        assert portal.members() == [
            "CreateSession", "SelectSources", "Start", "OpenPipeWireRemote", "Close",
        ]  # fmt: skip
        assert {c.interface for c in portal.calls[:3]} == {"org.freedesktop.portal.ScreenCast"}
        opts = portal.calls_of("SelectSources")[0].args[1]
        assert opts["types"] == 1 and opts["multiple"] is False
        assert opts["cursor_mode"] == CURSOR_EMBEDDED
        assert opts["persist_mode"] == 2 and "restore_token" not in opts
        # the token of the first grant was saved privately...
        first_token = portal.tokens_issued[0]
        assert tokens.load("screencast") == first_token
        assert stat.S_IMODE(os.stat(tokens.path).st_mode) == 0o600
        # ...and is offered on the next run, whose new token replaces it
        cap2 = _capture(bus, tokens, input=False)
        cap2.start()
        cap2.stop()
        opts2 = portal.calls_of("SelectSources")[1].args[1]
        assert opts2["restore_token"] == first_token
        assert tokens.load("screencast") == portal.tokens_issued[1] != first_token
        # the session was closed on stop, and the portal's node went away with it
        assert not portal.sessions


def test_combined_remote_desktop_session(pw: PipeWireSession, bus: str, tmp_path: Path) -> None:
    tokens = RestoreTokenStore(tmp_path / "t.json")
    tokens.save("remotedesktop", "from-last-time")
    with FakePortal(pw) as portal:
        session = PortalSession(bus_address=bus, tokens=tokens)
        try:
            grant = session.open()
            assert grant.remote_desktop and grant.devices == 3 and session.has_input
            assert portal.members() == ["CreateSession", "SelectDevices", "SelectSources", "Start"]
            assert portal.calls[0].interface == "org.freedesktop.portal.RemoteDesktop"
            assert portal.calls[3].interface == "org.freedesktop.portal.RemoteDesktop"
            dev = portal.calls_of("SelectDevices")[0].args[1]
            # combined sessions persist through SelectDevices, not SelectSources
            assert dev["types"] == 3 and dev["persist_mode"] == 2
            assert dev["restore_token"] == "from-last-time"
            src = portal.calls_of("SelectSources")[0].args[1]
            assert "persist_mode" not in src and "restore_token" not in src
            assert tokens.load("remotedesktop") == portal.tokens_issued[0]
        finally:
            session.close()


def test_cursor_mode_only_when_offered(pw: PipeWireSession, bus: str, tmp_path: Path) -> None:
    with FakePortal(pw, cursor_modes=CURSOR_HIDDEN, remote_desktop=False) as portal:
        session = PortalSession(bus_address=bus, tokens=RestoreTokenStore(tmp_path / "t"))
        try:
            session.open()
        finally:
            session.close()
        assert "cursor_mode" not in portal.calls_of("SelectSources")[0].args[1]


@pytest.mark.parametrize(("member", "code"), [("Start", 1), ("SelectSources", 2)])
def test_denied_or_cancelled_gives_clear_error(
    pw: PipeWireSession, bus: str, tmp_path: Path, member: str, code: int
) -> None:
    tokens = RestoreTokenStore(tmp_path / "t.json")
    with FakePortal(pw, response_codes={member: code}, remote_desktop=False) as portal:
        session = PortalSession(bus_address=bus, tokens=tokens)
        with pytest.raises(PortalCancelled) as info:
            session.open()
        assert info.value.code == code
        text = str(info.value)
        assert f"response {code}" in text
        if code == 1:
            assert "cancelled or denied by the user" in text and "accept" in text
        cap = _capture(bus, tokens)
        with pytest.raises(CaptureError, match=f"response {code}"):
            cap.start()
        assert not tokens.path.exists()  # nothing granted, nothing saved
        assert "OpenPipeWireRemote" not in portal.members()


def test_no_portal_and_no_screencast_are_explained(
    pw: PipeWireSession, bus: str, tmp_path: Path
) -> None:
    result = probe_portal(bus)
    assert not result.ok and "no xdg-desktop-portal on the session bus" in result.detail
    assert "xdg-desktop-portal" in result.remedy
    w = wayland_probe(bus)
    assert not w.ok and "no xdg-desktop-portal" in w.detail and w.remedy
    with pytest.raises(CaptureError, match="no xdg-desktop-portal on the session bus"):
        _capture(bus, RestoreTokenStore(tmp_path / "t")).start()
    with FakePortal(pw, screencast=False):
        result = probe_portal(bus)
        assert not result.ok and "no ScreenCast interface" in result.detail
        assert "ScreenCast" in result.remedy
    with FakePortal(pw):
        result = probe_portal(bus)
        assert (
            result.ok and "ScreenCast v4" in result.detail and "RemoteDesktop v2" in result.detail
        )
    no_bus = probe_portal("unix:path=/nonexistent/wavry-bus")
    assert not no_bus.ok and "cannot connect to the D-Bus session bus" in no_bus.detail
    old = os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
    try:
        r = probe_portal()
        assert not r.ok and "DBUS_SESSION_BUS_ADDRESS is unset" in r.detail
    finally:
        if old is not None:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = old


def test_session_closed_by_portal_ends_capture_cleanly(
    pw: PipeWireSession, bus: str, tmp_path: Path
) -> None:
    with FakePortal(pw, remote_desktop=False) as portal:
        cap = _capture(bus, RestoreTokenStore(tmp_path / "t"))
        cap.start()
        try:
            assert cap.grab().image.width == 640
            portal.close_session_from_portal()
            deadline = time.monotonic() + 5
            with pytest.raises(CaptureError, match="closed the session"):
                while time.monotonic() < deadline:
                    cap.grab()
            assert cap.portal is not None and cap.portal.closed.is_set()
        finally:
            cap.stop()
        # stop() after the portal closed it does not call Close on a dead session
        assert portal.members().count("Close") == 0


def test_open_pipewire_remote_requires_session(pw: PipeWireSession, bus: str) -> None:
    session = PortalSession(bus_address=bus)
    with pytest.raises(PortalError, match="not open"):
        session.open_pipewire_remote()
