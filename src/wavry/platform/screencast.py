"""Wayland screen-cast back-ends behind one small interface, and the choice between them.

Every Wayland path ends in a PipeWire video node that :class:`wavry.media.wayland.WaylandCapture`
consumes; they differ in how the node is obtained and who may need to approve it:

- ``mutter``: GNOME's own remote-desktop interfaces (:mod:`wavry.platform.mutter`), no dialog;
  the node lives on the session's PipeWire daemon.
- ``portal``: xdg-desktop-portal ScreenCast (+ RemoteDesktop) (:mod:`wavry.platform.portal`),
  a dialog the first time, then a restore token; the node is reached through the fd the portal
  hands out. On wlroots desktops (sway, Hyprland) this is xdg-desktop-portal-wlr.
- ``kwin``: KDE Plasma without its portal dialogs: KWin's own ``zkde_screencast_unstable_v1`` and
  ``org_kde_kwin_fake_input`` (:mod:`wavry.platform.kwin`), allowed by a ``.desktop`` file; the
  node lives on the session's PipeWire daemon.

:func:`select_wayland_path` picks the best one by probe (``WAVRY_WAYLAND_PATH`` overrides).
"""

from __future__ import annotations

import abc
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wavry.platform.probe import ProbeResult

if TYPE_CHECKING:
    from wavry.platform.portal import RestoreTokenStore

__all__ = [
    "CastError",
    "CastStream",
    "KWinCast",
    "MutterCast",
    "PortalCast",
    "ScreenCastBackend",
    "WaylandPath",
    "select_wayland_path",
    "wayland_path_probes",
]

PATHS = ("mutter", "portal", "kwin")


class CastError(RuntimeError):
    """The screen cast could not be set up; the message says what to do."""


@dataclass(frozen=True)
class CastStream:
    """A granted stream: the PipeWire node, its logical size (pointer coordinates)."""

    node_id: int
    size: tuple[int, int] | None


class ScreenCastBackend(abc.ABC):
    """Obtains one PipeWire screen-cast node and keeps the grant alive until ``close()``."""

    name = "cast"

    def __init__(self) -> None:
        self.on_closed: Callable[[str], None] | None = None

    @abc.abstractmethod
    def open(self) -> CastStream: ...

    @abc.abstractmethod
    def pipewire_fd(self) -> int | None:
        """A new fd to PipeWire for the node (caller closes), or None: the session's daemon."""

    @property
    @abc.abstractmethod
    def closed(self) -> threading.Event: ...

    @abc.abstractmethod
    def close(self) -> None: ...


class MutterCast(ScreenCastBackend):
    """GNOME: a Mutter remote-desktop session with its linked screen cast (no dialog)."""

    name = "mutter"

    def __init__(
        self,
        *,
        monitor: int | None = None,
        virtual: tuple[int, int] | None = None,
        cursor: bool = True,
        bus_address: str | None = None,
    ) -> None:
        super().__init__()
        from wavry.platform.mutter import CURSOR_EMBEDDED, CURSOR_HIDDEN, MutterSession

        self.session = MutterSession(
            monitor=monitor,
            virtual=virtual,
            cursor_mode=CURSOR_EMBEDDED if cursor else CURSOR_HIDDEN,
            bus_address=bus_address,
        )
        self.session.on_closed = self._closed

    def _closed(self, reason: str) -> None:
        if self.on_closed is not None:
            self.on_closed(reason)

    def open(self) -> CastStream:
        from wavry.platform.mutter import MutterError

        try:
            stream = self.session.open()
        except MutterError as exc:
            raise CastError(str(exc)) from exc
        assert stream is not None
        return CastStream(stream.node_id, stream.size)

    def pipewire_fd(self) -> int | None:
        return None

    @property
    def closed(self) -> threading.Event:
        return self.session.closed

    def close(self) -> None:
        self.session.close()


class PortalCast(ScreenCastBackend):
    """Any desktop with a person: xdg-desktop-portal ScreenCast (+ RemoteDesktop input)."""

    name = "portal"

    def __init__(
        self,
        *,
        input: bool | None = None,
        cursor: bool = True,
        bus_address: str | None = None,
        tokens: RestoreTokenStore | None = None,
        dialog_timeout: float = 120.0,
        on_waiting: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        from wavry.platform.portal import PortalSession

        self.session = PortalSession(
            remote_desktop=input,
            cursor_embedded=cursor,
            tokens=tokens,
            bus_address=bus_address,
            request_timeout=dialog_timeout,
            on_waiting=on_waiting,
        )
        self.session.on_closed = self._closed

    def _closed(self, reason: str) -> None:
        if self.on_closed is not None:
            self.on_closed(reason)

    def open(self) -> CastStream:
        from wavry.platform.portal import PortalCancelled, PortalError

        try:
            grant = self.session.open()
        except PortalCancelled as exc:
            raise CastError(str(exc)) from exc
        except PortalError as exc:
            raise CastError(f"screen cast through the portal failed: {exc}") from exc
        stream = grant.streams[0]
        return CastStream(stream.node_id, stream.size)

    def pipewire_fd(self) -> int | None:
        from wavry.platform.portal import PortalError

        try:
            return self.session.open_pipewire_remote()
        except PortalError as exc:
            raise CastError(f"cannot open the PipeWire stream: {exc}") from exc

    @property
    def closed(self) -> threading.Event:
        return self.session.closed

    def close(self) -> None:
        self.session.close()


class KWinCast(ScreenCastBackend):
    """KDE Plasma: KWin's own screen-cast protocol (no dialog; a ``.desktop`` file allows it)."""

    name = "kwin"

    def __init__(
        self,
        *,
        monitor: int | None = None,
        window: str | None = None,
        cursor: bool = True,
        display: str | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        from wavry.platform.kwin import KWinScreenCast

        self.session = KWinScreenCast(
            monitor=monitor, window=window, cursor=cursor, display=display, notice=notice
        )
        self.session.on_closed = self._closed

    def _closed(self, reason: str) -> None:
        if self.on_closed is not None:
            self.on_closed(reason)

    def open(self) -> CastStream:
        from wavry.platform.kwin import KWinError

        try:
            node, size = self.session.open()
        except KWinError as exc:
            raise CastError(str(exc)) from exc
        return CastStream(node, size if size != (0, 0) else None)

    def pipewire_fd(self) -> int | None:
        return None

    @property
    def closed(self) -> threading.Event:
        return self.session.closed

    def close(self) -> None:
        self.session.close()


# ---- choosing a path -------------------------------------------------------------------


@dataclass(frozen=True)
class WaylandPath:
    """The path ``wavry host`` uses on this Wayland desktop and why."""

    name: str  # "mutter" | "portal" | "kwin"
    reason: str
    probes: tuple[ProbeResult, ...] = ()


def wayland_path_probes(bus_address: str | None = None) -> list[ProbeResult]:
    """One probe per Wayland path, best first (what ``wavry doctor`` shows)."""
    from wavry.platform.kwin import probe_kwin
    from wavry.platform.mutter import probe_mutter
    from wavry.platform.portal import probe_portal

    return [probe_mutter(bus_address), probe_portal(bus_address), probe_kwin()]


def select_wayland_path(bus_address: str | None = None) -> WaylandPath:
    """The best available path by probe: Mutter's API on GNOME (nobody needs to approve),
    else the portal (a dialog once, then its restore token), else KWin's own protocols when the
    compositor is KWin (its ``.desktop`` allowance is written on first use).
    ``WAVRY_WAYLAND_PATH=mutter|portal|kwin`` forces one."""
    forced = os.environ.get("WAVRY_WAYLAND_PATH", "").strip().lower()
    if forced and forced not in PATHS:
        raise CastError(
            f"WAVRY_WAYLAND_PATH={forced!r} is not a Wayland path (choose from {', '.join(PATHS)})"
        )
    if forced:
        return WaylandPath(forced, f"WAVRY_WAYLAND_PATH={forced}")
    from wavry.platform.mutter import probe_mutter
    from wavry.platform.portal import probe_portal

    mutter = probe_mutter(bus_address)
    if mutter.ok:  # the portal is not asked (asking may start its daemon)
        return WaylandPath("mutter", "GNOME's Mutter remote-desktop API, no dialog", (mutter,))
    portal = probe_portal(bus_address)
    probes = (mutter, portal)
    if portal.ok:
        return WaylandPath("portal", "xdg-desktop-portal: approve once, then restored", probes)
    from wavry.platform.kwin import kwin_state

    kwin = kwin_state()
    if kwin.kwin:  # allowed now, or the allowance is written when the capture starts
        reason = "KWin's screencast and fake-input protocols, no dialog"
        return WaylandPath("kwin", reason, (*probes, ProbeResult("kwin", True, kwin.detail)))
    return WaylandPath("portal", f"no usable path ({portal.detail})", probes)


def _desktop() -> str:
    return (
        os.environ.get("XDG_CURRENT_DESKTOP") or os.environ.get("DESKTOP_SESSION") or ""
    ).lower()


def doctor_probes(bus_address: str | None = None) -> list[ProbeResult]:
    """What ``wavry doctor`` shows for Wayland: the path this desktop offers, then each path
    with what to install or allow for it."""
    from wavry.platform.kwin import kwin_state, probe_kwin
    from wavry.platform.mutter import probe_mutter
    from wavry.platform.portal import probe_portal

    mutter, portal = probe_mutter(bus_address), probe_portal(bus_address)
    desktop = _desktop()
    on_kwin = kwin_state().kwin
    out = []
    if mutter.ok:
        out.append(
            ProbeResult("wayland-path", True, "mutter: GNOME's remote-desktop API, no dialog")
        )
    elif portal.ok:
        out.append(
            ProbeResult("wayland-path", True, "portal: a dialog once, then its restore token")
        )
    elif on_kwin:
        out.append(
            ProbeResult("wayland-path", True, "kwin: KWin's own protocols, no dialog (KDE Plasma)")
        )
    else:
        out.append(
            ProbeResult(
                "wayland-path",
                False,
                "no Wayland screen-cast path on this session bus",
                "run wavry inside the desktop session (GNOME: nothing to install; other "
                "desktops: xdg-desktop-portal and its backend)",
            )
        )
    if not mutter.ok:
        mutter = ProbeResult(
            "mutter", False, mutter.detail, "GNOME only: run wavry in the user's GNOME session"
        )
    out.append(mutter)
    if not portal.ok and ("kde" in desktop or on_kwin):
        portal = ProbeResult(
            "portal",
            False,
            portal.detail,
            "apt install xdg-desktop-portal-kde plasma-workspace (the portal's screen-sharing "
            "dialogs live in plasma-workspace)",
        )
    elif not portal.ok and any(w in desktop for w in ("sway", "hyprland", "wlroots")):
        portal = ProbeResult(
            "portal",
            False,
            portal.detail,
            "apt install xdg-desktop-portal-wlr (wlroots screencopy needs a GPU with DMA-BUF)",
        )
    out.append(portal)
    if "kde" in desktop or on_kwin:
        out.append(probe_kwin())
    if os.path.isdir("/dev/dri"):
        out.append(
            ProbeResult(
                "wayland-dmabuf", True, "/dev/dri present: compositors may offer DMA-BUF frames"
            )
        )
    else:
        out.append(
            ProbeResult(
                "wayland-dmabuf",
                False,
                "no /dev/dri (no GPU): frames come as shared memory, one copy each",
                "nothing to do; a GPU with its DRM driver lets the compositor hand out DMA-BUF",
            )
        )
    return out
