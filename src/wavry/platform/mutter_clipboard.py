"""Text clipboard sync on GNOME through Mutter's remote-desktop session (no focus, no dialog).

GNOME has no wlr-data-control, so wl-clipboard can only poll there and needs a focused surface;
Mutter's ``org.gnome.Mutter.RemoteDesktop.Session`` carries the clipboard for remote desktops
instead (what gnome-remote-desktop uses). Same interface as the X11
:class:`wavry.platform.clipboard.ClipboardSync` and wl-clipboard back-ends:

* **local → peer**: after ``EnableClipboard``, Mutter emits ``SelectionOwnerChanged(a{sv})``
  whenever an application takes the clipboard (``session-is-owner`` false, ``mime-types``);
  we ``SelectionRead("text/plain;charset=utf-8")`` → a pipe fd, read it to the end in a worker
  thread and call ``on_local_change(text)`` from there (change-driven, ``mode == "mutter"``).
* **peer → local**: ``SetSelection({"mime-types": [...]})`` makes this session the owner; when
  an application pastes Mutter emits ``SelectionTransfer(mime, serial)``, we answer with
  ``SelectionWrite(serial)`` → fd, write the text, ``SelectionWriteDone(serial, true)``.

The session is a remote-desktop session of its own (no screen cast), so the clipboard works
with any picture source on the GNOME session. No loops: text equal to the last text synced in
either direction is not sent again; texts over ``max_bytes`` are skipped, counted and reported.
Contents are never logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable

from dbus_fast import Message, Variant

from wavry.platform.clipboard import MAX_TEXT_BYTES, ClipboardError, ClipboardStats
from wavry.platform.mutter import RD_SESSION, MutterError, MutterSession

__all__ = ["MutterClipboardSync"]

log = logging.getLogger(__name__)

TRANSFER_TIMEOUT = 2.0
"""Seconds a clipboard transfer may take in either direction."""

TEXT_TYPES = ("text/plain;charset=utf-8", "text/plain", "UTF8_STRING", "STRING", "TEXT")


def _mime_list(value: object) -> list[str]:
    """``mime-types`` as Mutter 43 sends it: a struct ``(as)`` holding the list (or ``as``)."""
    if isinstance(value, tuple) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    return [str(m) for m in value] if isinstance(value, list | tuple) else []


class MutterClipboardSync:
    """Two-way text clipboard sync for the GNOME session on ``bus_address``."""

    mode = "mutter"

    def __init__(
        self,
        on_local_change: Callable[[str], None],
        *,
        bus_address: str | None = None,
        max_bytes: int = MAX_TEXT_BYTES,
        on_too_large: Callable[[int], None] | None = None,
    ) -> None:
        self._on_local_change = on_local_change
        self._on_too_large = on_too_large
        self.max_bytes = max_bytes
        self.stats = ClipboardStats()
        self.session = MutterSession(screencast=False, bus_address=bus_address)
        self._lock = threading.Lock()
        self._last: str | None = None
        self._owned: bytes | None = None
        self._running = False
        self.last_error = ""

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    @property
    def running(self) -> bool:
        return self._running and not self.session.closed.is_set()

    def start(self) -> MutterClipboardSync:
        if self._running:
            return self
        self.session.signal_handlers.append(self._on_signal)
        try:
            self.session.open()
            self.session.call("EnableClipboard", "a{sv}", [{}])
        except MutterError as exc:
            self.session.close()
            raise ClipboardError(f"GNOME clipboard through Mutter: {exc}") from exc
        self._running = True
        return self

    # ---- signals (D-Bus thread) --------------------------------------------------------

    def _on_signal(self, msg: Message) -> None:
        if msg.path != self.session.rd_path or msg.interface != RD_SESSION:
            return
        if msg.member == "SelectionOwnerChanged":
            options = {k: v.value if isinstance(v, Variant) else v for k, v in msg.body[0].items()}
            if options.get("session-is-owner"):
                return  # our own SetSelection
            mimes = _mime_list(options.get("mime-types", []))
            mime = next((m for m in TEXT_TYPES if m in mimes), None)
            if mime is None:
                if mimes:
                    self._count("invalid")  # not text
                return
            threading.Thread(target=self._read, args=(mime,), daemon=True).start()
        elif msg.member == "SelectionTransfer":
            mime, serial = str(msg.body[0]), int(msg.body[1])
            threading.Thread(target=self._write, args=(mime, serial), daemon=True).start()

    # ---- local → peer --------------------------------------------------------------------

    def _fd_of(self, reply: Message) -> int:
        fds = list(reply.unix_fds)
        if not fds:
            raise MutterError("Mutter returned no file descriptor")
        fd = fds[int(reply.body[0])] if isinstance(reply.body[0], int) else fds[0]
        for other in fds:
            if other != fd:
                os.close(other)
        return fd

    def _read(self, mime: str) -> None:
        try:
            fd = self._fd_of(self.session.call("SelectionRead", "s", [mime]))
        except MutterError as exc:
            self.last_error = f"SelectionRead: {exc}"
            self._count("errors")
            return
        data = bytearray()
        too_large = False
        deadline = time.monotonic() + TRANSFER_TIMEOUT
        try:
            while True:
                # Mutter hands out a non-blocking pipe: wait for data, but not forever (an
                # application that never answers must not hold a thread)
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    self._count("timeouts")
                    return
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
                if len(data) > self.max_bytes:
                    too_large = True
                    break
        except OSError as exc:
            self.last_error = f"reading the selection: {exc}"
            self._count("errors")
            return
        finally:
            os.close(fd)
        if too_large:
            self._count("too_large")
            if self._on_too_large is not None:
                with contextlib.suppress(Exception):
                    self._on_too_large(len(data))
            return
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            self._count("invalid")
            return
        if not text:
            return
        with self._lock:
            if text == self._last:
                self.stats.duplicates += 1
                return
            self._last = text
        self._count("sent")
        try:
            self._on_local_change(text)
        except Exception as exc:
            self._count("errors")
            log.warning("clipboard: on_local_change failed: %s", type(exc).__name__)

    # ---- peer → local --------------------------------------------------------------------

    def set_remote_text(self, text: str) -> bool:
        """Make ``text`` (from the peer) the GNOME clipboard; callable from any thread."""
        try:
            data = text.encode("utf-8")
        except (UnicodeEncodeError, AttributeError):
            self._count("invalid")
            return False
        if len(data) > self.max_bytes:
            self._count("too_large")
            return False
        if not self.running:
            return False
        with self._lock:
            if data == self._owned:
                self.stats.duplicates += 1
                return False
            self._owned = data
            self._last = text
        try:
            self.session.call(
                "SetSelection", "a{sv}", [{"mime-types": Variant("as", list(TEXT_TYPES))}]
            )
        except MutterError:
            self._count("errors")
            return False
        self._count("applied")
        return True

    def _write(self, mime: str, serial: int) -> None:
        data = self._owned
        ok = False
        try:
            fd = self._fd_of(self.session.call("SelectionWrite", "u", [serial]))
        except MutterError as exc:
            self.last_error = f"SelectionWrite: {exc}"
            self._count("errors")
            return
        try:
            if data is not None and mime in TEXT_TYPES:
                view = memoryview(data)
                deadline = time.monotonic() + TRANSFER_TIMEOUT
                while view:
                    left = deadline - time.monotonic()
                    if left <= 0 or not select.select([], [fd], [], left)[1]:
                        raise OSError("the pasting application stopped reading")
                    n = os.write(fd, view)
                    view = view[n:]
                ok = True
                self._count("served")
            else:
                self._count("refused")
        except OSError as exc:
            self.last_error = f"writing the selection: {exc}"
            self._count("errors")
        finally:
            os.close(fd)
        with contextlib.suppress(MutterError):
            self.session.call("SelectionWriteDone", "ub", [serial, ok])

    def close(self) -> None:
        self._running = False
        with contextlib.suppress(MutterError):
            if not self.session.closed.is_set() and self.session.rd_path:
                self.session.call("DisableClipboard")
        self.session.close()

    def __enter__(self) -> MutterClipboardSync:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never the contents
        return f"MutterClipboardSync(mode={self.mode!r}, running={self.running})"
