"""Sharing this computer from the app: the host runtime (:class:`wavry.host.HostRuntime`)
in-process on the app's asyncio loop, started from the same ``[host]`` settings `wavry host`
reads, reporting through its observer (typed notices) — turned into Qt signals here.

The app only drives the runtime's Python API (start, clients, disconnect, pairing, trusted
devices, close); it never touches a frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from enum import StrEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from wavry.desktop.errors import describe
from wavry.desktop.prefs import Prefs

__all__ = ["ShareState", "SharingController"]

log = logging.getLogger("wavry.desktop.sharing")
CLIENTS_EVERY_MS = 1000


class ShareState(StrEnum):
    off = "off"
    starting = "starting"
    on = "on"
    stopping = "stopping"


class SharingController(QObject):
    """Signals: ``state_changed(str)``, ``notice(object)`` (every host notice),
    ``clients_changed()`` (each second while sharing, and when one joins or leaves),
    ``pairing_requested(object)`` (a PairingRequested or PairingCodeShown notice),
    ``paired(object)``, ``failed(str)`` (could not start, or stopped by itself)."""

    state_changed = Signal(str)
    notice = Signal(object)
    clients_changed = Signal()
    pairing_requested = Signal(object)
    paired = Signal(object)
    failed = Signal(str)

    def __init__(self, prefs: Prefs, config_dir: Path | None = None, account: Any = None):
        super().__init__()
        self.prefs = prefs
        self.config_dir = config_dir
        self.account = account  # AccountService: signed in, the host is online at its gateway
        self.state = ShareState.off
        self.runtime: Any = None  # wavry.host.HostRuntime while sharing
        self.started: Any = None  # the HostStarted notice
        self.last_error = ""
        self.pairing: Any = None  # the open PairingRequested / PairingCodeShown notice
        self.asker_left = False  # the device that asked to pair has disconnected since
        self._watch: asyncio.Task[None] | None = None
        self._tick = QTimer(self)
        self._tick.setInterval(CLIENTS_EVERY_MS)
        self._tick.timeout.connect(self.clients_changed.emit)

    def _set(self, state: ShareState) -> None:
        self.state = state
        self.state_changed.emit(state.value)

    @property
    def sharing(self) -> bool:
        return self.state is ShareState.on

    # ---- on / off -------------------------------------------------------------------------

    async def start(self) -> bool:
        """Share with the ``[host]`` settings; False (and ``failed``) when it cannot."""
        if self.state is not ShareState.off:
            return self.state is ShareState.on
        self._set(ShareState.starting)
        self.last_error = ""
        runtime = None
        try:
            from wavry.host import HostRuntime, options_from_settings

            settings = self.prefs.host()
            options = options_from_settings(settings, self.config_dir)
            self._online_at_gateway(options, getattr(settings, "gateway", None))
            runtime = HostRuntime(options, observer=self._on_notice)
            await runtime.start()
        except Exception as exc:
            self.last_error = describe(exc, "cannot share this computer")
            if runtime is not None:
                runtime.failure = self.last_error
                with contextlib.suppress(Exception):
                    await runtime.close()
            self.runtime = None
            self._set(ShareState.off)
            self.failed.emit(self.last_error)
            return False
        self.runtime = runtime
        self._watch = asyncio.ensure_future(self._watch_stopped(runtime))
        self._tick.start()
        self._set(ShareState.on)
        return True

    def _online_at_gateway(self, options: Any, configured: str | None) -> None:
        """Signed in, this computer is online at the account's gateway while it shares (its
        clients then reach it by name); [host] gateway = "off" or a URL decides otherwise."""
        connectivity = getattr(options, "connectivity", None)
        if connectivity is None or configured is not None:
            return
        account = getattr(self.account, "account", None)
        connectivity.gateway = account.gateway_url if account is not None else None

    async def stop(self) -> None:
        runtime = self.runtime
        if runtime is None or self.state is not ShareState.on:
            return
        self._set(ShareState.stopping)
        if self._watch is not None:
            self._watch.cancel()
        await self._close(runtime)

    async def _close(self, runtime: Any) -> None:
        self._tick.stop()
        try:
            await runtime.close()
        except Exception as exc:  # closing never leaves the app in "stopping"
            log.warning("closing the host: %s", describe(exc))
        self.runtime = None
        self.started = None
        self.pairing = None
        self._set(ShareState.off)
        self.clients_changed.emit()

    async def _watch_stopped(self, runtime: Any) -> None:
        """The host stops by itself when its picture source goes away: say so."""
        why = await runtime.stopped()
        self.last_error = f"sharing stopped: {why}"
        self._set(ShareState.stopping)
        await self._close(runtime)
        self.failed.emit(self.last_error)

    # ---- the runtime's notices -------------------------------------------------------------

    def _on_notice(self, notice: Any) -> None:
        from wavry.host import notices as n

        if isinstance(notice, n.HostStarted):
            self.started = notice
        elif isinstance(notice, (n.PairingRequested, n.PairingCodeShown)):
            self.pairing = notice
            self.asker_left = False
            self.pairing_requested.emit(notice)
        elif isinstance(notice, n.Paired):
            self.pairing = None
            self.paired.emit(notice)
        elif isinstance(notice, (n.ClientJoined, n.ClientLeft)):
            if isinstance(notice, n.ClientLeft) and self._pairing_peer() == notice.peer:
                # A client without a prompt gives up at once and comes back with the code: the
                # code stays on screen (it stays valid), only refusing has nothing left to end.
                self.asker_left = True
                self.pairing_requested.emit(self.pairing)
            self.clients_changed.emit()
        self.notice.emit(notice)

    def _pairing_peer(self) -> int | None:
        return getattr(self.pairing, "peer", None)

    # ---- the owner's controls --------------------------------------------------------------

    def clients(self) -> list[Any]:
        return [] if self.runtime is None else list(self.runtime.clients())

    def disconnect_client(self, peer: int) -> None:
        if self.runtime is not None:
            self.runtime.disconnect(peer)

    def show_pairing_code(self) -> str | None:
        return None if self.runtime is None else self.runtime.show_pairing_code()

    def refuse_pairing(self) -> None:
        peer = self._pairing_peer()
        if self.runtime is not None and peer is not None:
            self.runtime.refuse_pairing(peer)
        self.pairing = None
        self.pairing_requested.emit(None)

    def trusted_devices(self) -> list[Any]:
        """Trusted devices: the running host's, else the file's (both are one list)."""
        if self.runtime is not None:
            return list(self.runtime.trusted_devices())
        from wavry.store import TrustedDevices

        return TrustedDevices(self.config_dir).load()

    def forget_device(self, wavry_id: str) -> bool:
        if self.runtime is not None:
            return bool(self.runtime.forget_device(wavry_id))
        from wavry.store import TrustedDevices

        return TrustedDevices(self.config_dir).remove(wavry_id)
