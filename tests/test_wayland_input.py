"""RemoteDesktop portal input: the calls the real injector makes, as the fake portal records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wavry.media.wayland import WaylandCapture, gstreamer_problem
from wavry.platform.input import InjectionError
from wavry.platform.portal import PortalSession, RestoreTokenStore
from wavry.platform.portal_input import PortalInputInjector
from wavry.runtime.injection import InjectorSink, injector_for
from wavry.runtime.messages import (
    ButtonInput,
    KeyInput,
    PointerMotion,
    PointerMove,
    ScrollInput,
)
from wavry.testing import pwsession
from wavry.testing.portal_fake import FakePortal
from wavry.testing.pwsession import PipeWireSession

pytestmark = [
    pytest.mark.skipif(not pwsession.probe().ok, reason="PipeWire is not installed"),
    pytest.mark.skipif(bool(gstreamer_problem()), reason=gstreamer_problem() or "GStreamer ok"),
]

KEY_A, KEY_LEFTSHIFT, KEY_ENTER = 30, 42, 28
BTN_LEFT, BTN_RIGHT, BTN_MIDDLE, BTN_SIDE, BTN_EXTRA = 0x110, 0x111, 0x112, 0x113, 0x114


@pytest.fixture(scope="module")
def pw() -> Iterator[PipeWireSession]:
    with PipeWireSession() as session:
        yield session


def _bus(pw: PipeWireSession) -> str:
    return pw.env()["DBUS_SESSION_BUS_ADDRESS"]


def test_combined_session_calls_carry_evdev_codes_and_release_all(
    pw: PipeWireSession, tmp_path: Path
) -> None:
    with FakePortal(pw, width=640, height=480) as portal:
        cap = WaylandCapture(30, tokens=RestoreTokenStore(tmp_path / "t"), bus_address=_bus(pw))
        cap.start()
        try:
            sink = injector_for("wayland", cap, None)
            assert isinstance(sink, InjectorSink)
            inj = sink.injector
            assert isinstance(inj, PortalInputInjector)
            node = cap.node_id

            sink.handle(KeyInput(KEY_LEFTSHIFT, True))
            sink.handle(KeyInput(KEY_A, True))
            sink.handle(KeyInput(KEY_A, False))
            sink.handle(PointerMove(0.5, 1.0))
            sink.handle(ButtonInput(1, True))
            sink.handle(ButtonInput(3, True))
            sink.handle(ButtonInput(3, False))
            sink.handle(PointerMotion(3, -2))
            sink.handle(ScrollInput(0.0, 1.0))  # one notch up
            sink.handle(ScrollInput(0.5, -0.25))
            sink.handle(ScrollInput(0.5, -0.75))  # one right, one down
            # a release of a key this injector never pressed is not sent (the user's own keys)
            sink.handle(KeyInput(KEY_ENTER, False))
            inj.sync()
            assert sink.errors == 0, sink.last_error
            assert inj.held_keys == {KEY_LEFTSHIFT} and inj.held_buttons == {1}
            assert portal.notifications() == [
                ("NotifyKeyboardKeycode", [KEY_LEFTSHIFT, 1]),
                ("NotifyKeyboardKeycode", [KEY_A, 1]),
                ("NotifyKeyboardKeycode", [KEY_A, 0]),
                ("NotifyPointerMotionAbsolute", [node, 0.5 * 639, 479.0]),
                ("NotifyPointerButton", [BTN_LEFT, 1]),
                ("NotifyPointerButton", [BTN_RIGHT, 1]),
                ("NotifyPointerButton", [BTN_RIGHT, 0]),
                ("NotifyPointerMotion", [3.0, -2.0]),
                ("NotifyPointerAxisDiscrete", [0, -1]),
                ("NotifyPointerAxisDiscrete", [0, 1]),
                ("NotifyPointerAxisDiscrete", [1, 1]),
            ]
            # the session ends: everything held is released, through the same session
            before = len(portal.notifications())
            sink.release_all()
            inj.sync()
            assert portal.notifications()[before:] == [
                ("NotifyKeyboardKeycode", [KEY_LEFTSHIFT, 0]),
                ("NotifyPointerButton", [BTN_LEFT, 0]),
            ]
            assert not inj.held_keys and not inj.held_buttons
            # every call went to the session the capture opened
            handles = {c.args[0] for c in portal.calls if c.member.startswith("Notify")}
            assert handles == {cap.portal.session_handle} if cap.portal else False
            # back and forward map to BTN_SIDE / BTN_EXTRA
            inj.button(4, True)
            inj.button(5, True)
            inj.close()
            assert portal.notifications()[-4:] == [
                ("NotifyPointerButton", [BTN_SIDE, 1]),
                ("NotifyPointerButton", [BTN_EXTRA, 1]),
                ("NotifyPointerButton", [BTN_SIDE, 0]),
                ("NotifyPointerButton", [BTN_EXTRA, 0]),
            ]
        finally:
            cap.stop()


def test_standalone_session_without_screen_cast(pw: PipeWireSession, tmp_path: Path) -> None:
    with FakePortal(pw) as portal:
        inj = PortalInputInjector.standalone(
            bus_address=_bus(pw), tokens=RestoreTokenStore(tmp_path / "t")
        )
        try:
            assert portal.members() == ["CreateSession", "SelectDevices", "Start"]
            inj.key(KEY_A, True)
            inj.mouse_motion(1.0, 2.0)
            with pytest.raises(InjectionError, match="absolute pointer moves need"):
                inj.mouse_move_abs(0.5, 0.5)
            inj.sync()
        finally:
            inj.close()
        assert portal.notifications() == [
            ("NotifyKeyboardKeycode", [KEY_A, 1]),
            ("NotifyPointerMotion", [1.0, 2.0]),
            ("NotifyKeyboardKeycode", [KEY_A, 0]),
        ]
        assert portal.members()[-1] == "Close"  # its own session is closed with it


def test_portal_errors_are_counted_and_closed_session_refuses(
    pw: PipeWireSession, tmp_path: Path
) -> None:
    with FakePortal(pw) as portal:
        session = PortalSession(bus_address=_bus(pw), tokens=RestoreTokenStore(tmp_path / "t"))
        session.open()
        try:
            inj = PortalInputInjector(lambda: (session, 9999, (640, 480)))
            # the fake refuses a device type that was not granted
            for s in portal.sessions.values():
                s.devices = 1  # keyboard only
            inj.button(1, True)
            inj.sync()
            assert inj.errors == 1 and "AccessDenied" in session.log.last_error
            portal.close_session_from_portal()
            assert portal.wait_for(session.closed.is_set)
            with pytest.raises(InjectionError, match="portal closed it"):
                inj.key(KEY_A, True)
            inj.release_all()  # nothing to release into a dead session: no error
            assert not inj.held_buttons
        finally:
            session.close()


def test_no_remote_desktop_interface_is_explained(pw: PipeWireSession, tmp_path: Path) -> None:
    with (
        FakePortal(pw, remote_desktop=False),
        pytest.raises(InjectionError, match="no RemoteDesktop interface"),
    ):
        PortalInputInjector.standalone(
            bus_address=_bus(pw), tokens=RestoreTokenStore(tmp_path / "t")
        )
