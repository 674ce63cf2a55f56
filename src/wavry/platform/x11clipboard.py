"""Text clipboard sync with the peer (docs/spec/RIFT.md §5 ``ClipboardMessage``): X11 backend over
XFIXES.

``ClipboardSync`` owns a hidden window on its own X connection and runs the X event loop in a
daemon thread:

* **local → peer**: XFIXES ``SetSelectionOwnerNotify`` on CLIPBOARD (change-driven, no polling).
  When another client becomes the owner the selection is converted to UTF8_STRING (STRING as a
  fallback, INCR for large transfers) and ``on_local_change(text)`` is called *from the X thread*;
  the runtime marshals it onto asyncio (``loop.call_soon_threadsafe``).
* **peer → local**: ``set_remote_text(text)`` (any thread) makes the window the CLIPBOARD owner
  (PRIMARY too when ``primary=True``) and it answers ``SelectionRequest`` for TARGETS,
  UTF8_STRING, STRING and TEXT (INCR above ``INCR_CHUNK``) until another client takes over.

No loops: our own ownership changes are ignored, text equal to the last text synced in either
direction is not sent again, and texts over ``max_bytes`` (UTF-8) are skipped, counted and
reported through ``on_too_large(size)``. Clipboard contents are never logged; only sizes and
counters are.

An X server without XFIXES gets polling instead (``mode == "poll"``): every ``POLL_S`` the
CLIPBOARD owner is asked for its text and a change is detected by comparison.
:func:`open_clipboard` picks the backend: wl-clipboard on a Wayland session
(:mod:`wavry.platform.wlclipboard`), this one on X11.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wavry.platform.clipboard_common import (
    CONVERT_TIMEOUT,
    INCR_CHUNK,
    MAX_TEXT_BYTES,
    POLL_S,
    ClipboardStats,
)
from wavry.platform.xdisplay import open_display

__all__ = ["ClipboardSync"]

log = logging.getLogger(__name__)


@dataclass
class _Convert:
    """An outstanding conversion of CLIPBOARD from another owner."""

    target: int
    started: float
    incr: bytearray | None = None
    incr_type: int = 0
    incr_over: bool = False
    announced: int = 0


@dataclass
class _Outgoing:
    """An INCR transfer we serve to ``requestor``'s ``prop``."""

    requestor: Any
    prop: int
    ptype: int
    data: bytes
    offset: int
    started: float
    done: bool = False


class ClipboardSync:
    """Two-way text clipboard sync for one X display (see module docstring).

    ``on_local_change(text)`` runs on the X thread; it must not block for long. ``primary=True``
    also claims PRIMARY when applying peer text (PRIMARY is never watched or sent).
    """

    def __init__(
        self,
        on_local_change: Callable[[str], None],
        display: str | None = None,
        auth: str | None = None,
        *,
        primary: bool = False,
        max_bytes: int = MAX_TEXT_BYTES,
        on_too_large: Callable[[int], None] | None = None,
        poll: bool | None = None,
    ) -> None:
        self._on_local_change = on_local_change
        self._on_too_large = on_too_large
        self._force_poll = poll  # None: poll only when the server has no XFIXES
        self.mode = ""
        self._poll_at = 0.0
        self._display_name = display
        self._auth = auth
        self._primary = primary
        self.max_bytes = max_bytes
        self.stats = ClipboardStats()
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._pending: str | None = None  # remote text waiting for the X thread
        self._last: str | None = None  # last text synced in either direction
        self._owned: str | None = None  # text we serve while we own CLIPBOARD
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._d: Any = None
        self._win: Any = None
        self._convert: _Convert | None = None
        self._outgoing: dict[tuple[int, int], _Outgoing] = {}
        self._last_too_large = -1

    def _count(self, name: str) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    # -- public API ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def owns_clipboard(self) -> bool:
        """True while we serve peer text as the CLIPBOARD owner."""
        return self._owned is not None

    def start(self) -> ClipboardSync:
        """Connect, create the window, select XFIXES input and start the event thread."""
        if self._thread is not None:
            return self
        d = open_display(self._display_name, self._auth)
        try:
            has_xfixes = d.query_extension("XFIXES") is not None
            poll = self._force_poll if self._force_poll is not None else not has_xfixes
            if not poll:
                d.xfixes_query_version()  # required before any other XFIXES request
            self.mode = "poll" if poll else "xfixes"
            self._setup(d)
        except Exception:
            d.close()
            raise
        self._d = d
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name="wavry-clipboard", daemon=True)
        self._thread.start()
        return self

    def set_remote_text(self, text: str) -> bool:
        """Make ``text`` (from the peer) the local clipboard; callable from any thread.

        Returns False when the text is skipped (too large, not encodable, or a repeat of what we
        already own).
        """
        try:
            size = len(text.encode("utf-8"))
        except (UnicodeEncodeError, AttributeError):
            self._count("invalid")
            return False
        if size > self.max_bytes:
            self._count("too_large")
            return False
        with self._lock:
            if self._wake_w < 0:  # not started or closed
                return False
            if text == self._owned and self._pending is None:
                self._count("duplicates")
                return False
            self._pending = text
            self._wake()
        return True

    def close(self) -> None:
        """Stop the thread (joins it), give up ownership, destroy the window, disconnect."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        self._wake()
        thread.join(5.0)
        with self._lock:  # no set_remote_text may write to a closed (or reused) descriptor
            fds = (self._wake_r, self._wake_w)
            self._wake_r, self._wake_w = -1, -1
            self._pending = None
        if not thread.is_alive():
            for fd in fds:
                if fd >= 0:
                    os.close(fd)

    def __enter__(self) -> ClipboardSync:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- X thread -----------------------------------------------------------------------------

    def _wake(self) -> None:
        fd = self._wake_w
        if fd >= 0:
            with contextlib.suppress(OSError):  # full pipe: a wake-up is already pending
                os.write(fd, b"x")

    def _setup(self, d: Any) -> None:
        from Xlib import X
        from Xlib.ext import xfixes

        self._atoms = {
            name: d.intern_atom(name)
            for name in (
                "CLIPBOARD",
                "PRIMARY",
                "TARGETS",
                "UTF8_STRING",
                "STRING",
                "TEXT",
                "INCR",
                "ATOM",
                "_WAVRY_CLIPBOARD",
            )
        }
        screen = d.screen()
        self._win = screen.root.create_window(
            -10, -10, 1, 1, 0, X.CopyFromParent, event_mask=X.PropertyChangeMask
        )
        self._xfixes_event = -1
        if self.mode == "xfixes":
            mask = (
                xfixes.XFixesSetSelectionOwnerNotifyMask
                | xfixes.XFixesSelectionWindowDestroyNotifyMask
                | xfixes.XFixesSelectionClientCloseNotifyMask
            )
            ext = d.query_extension("XFIXES")
            self._xfixes_event = ext.first_event + xfixes.XFixesSelectionNotify
            d.xfixes_select_selection_input(self._win, self._atoms["CLIPBOARD"], mask)
        d.set_error_handler(self._on_x_error)
        d.sync()

    def _on_x_error(self, err: Any, request: Any) -> None:
        # Typically BadWindow from a requestor that went away; never fatal.
        self._count("errors")
        log.debug("clipboard: X error %s", type(err).__name__)

    def _run(self) -> None:
        d = self._d
        fd = d.fileno()
        try:
            while not self._stop.is_set():
                with self._lock:
                    pending, self._pending = self._pending, None
                if pending is not None:
                    self._safely(self._take_ownership, pending)
                while d.pending_events():
                    self._safely(self._handle, d.next_event())
                self._expire()
                if self.mode == "poll":
                    self._safely(self._poll, time.monotonic())
                d.flush()
                if d.pending_events():
                    continue
                try:
                    wait = POLL_S if self.mode == "poll" else 0.25
                    readable, _, _ = select.select([fd, self._wake_r], [], [], wait)
                except (OSError, ValueError):
                    break
                if self._wake_r in readable:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
        except Exception as exc:  # connection lost: stop quietly, the session carries on
            # the display closing (the end of a virtual display, a demo's shutdown) is said by
            # the capture when it matters; anything else is worth a warning
            closed = type(exc).__name__ == "ConnectionClosedError"
            (log.info if closed else log.warning)(
                "clipboard: X event loop ended: %s", type(exc).__name__
            )
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        from Xlib import X

        d, self._d = self._d, None
        if d is None:
            return
        try:
            for name in ("CLIPBOARD", "PRIMARY"):
                atom = self._atoms[name]
                owner = d.get_selection_owner(atom)
                if owner is not None and owner != X.NONE and owner.id == self._win.id:
                    d.set_selection_owner(atom, X.NONE, X.CurrentTime)
            self._win.destroy()
            d.sync()
        except Exception:
            pass
        finally:
            self._owned = None
            with contextlib.suppress(Exception):
                d.close()

    def _safely(self, fn: Callable[[Any], None], arg: Any) -> None:
        from Xlib import error as xerror

        try:
            fn(arg)
        except (xerror.ConnectionClosedError, OSError):
            raise
        except Exception as exc:  # one odd event or request must not stop the clipboard
            self._count("errors")
            log.debug("clipboard: event handling failed: %s", type(exc).__name__)

    def _handle(self, e: Any) -> None:
        from Xlib import X
        from Xlib.ext import xfixes

        if e.type == X.SelectionRequest:
            self._serve(e)
        elif e.type == X.SelectionNotify:
            self._on_selection_notify(e)
        elif e.type == X.PropertyNotify:
            self._on_property(e)
        elif e.type == X.SelectionClear:
            if e.atom == self._atoms["CLIPBOARD"]:
                self._owned = None
        elif e.type == self._xfixes_event:
            # python-xlib may load Xlib.ext.xfixes twice, so match codes, not classes.
            if e.sub_code == xfixes.XFixesSetSelectionOwnerNotify:
                self._on_owner_change(e)
            elif e.selection == self._atoms["CLIPBOARD"]:  # owner window destroyed / closed
                self._convert = None

    # ---- local → peer

    def _poll(self, now: float) -> None:
        """No XFIXES: ask the current CLIPBOARD owner for its text every POLL_S (a change is
        found by comparison with the last synced text in ``_deliver``)."""
        from Xlib import X

        if now < self._poll_at or self._convert is not None:
            return
        self._poll_at = now + POLL_S
        owner = self._d.get_selection_owner(self._atoms["CLIPBOARD"])
        if owner is None or owner == X.NONE or owner.id == self._win.id:
            return
        self._request(self._atoms["UTF8_STRING"], X.CurrentTime)

    def _on_owner_change(self, e: Any) -> None:
        from Xlib import X

        if e.selection != self._atoms["CLIPBOARD"]:
            return
        owner = e.owner
        owner_id = owner.id if owner is not None and owner != X.NONE else 0
        if owner_id == self._win.id:
            return  # our own ownership (peer text): never echoed back
        self._owned = None
        if owner_id == 0:
            return
        self._request(self._atoms["UTF8_STRING"], e.selection_timestamp)

    def _request(self, target: int, timestamp: int) -> None:
        prop = self._atoms["_WAVRY_CLIPBOARD"]
        self._win.delete_property(prop)
        self._win.convert_selection(self._atoms["CLIPBOARD"], target, prop, timestamp)
        self._convert = _Convert(target=target, started=time.monotonic())

    def _on_selection_notify(self, e: Any) -> None:
        from Xlib import X

        conv = self._convert
        if conv is None or e.selection != self._atoms["CLIPBOARD"]:
            return
        if e.property == X.NONE:
            if conv.target == self._atoms["UTF8_STRING"]:
                self._request(self._atoms["STRING"], e.time)
            else:
                self._convert = None
                self._count("invalid")  # owner offers no text
            return
        prop = self._win.get_full_property(e.property, X.AnyPropertyType, sizehint=INCR_CHUNK)
        self._win.delete_property(e.property)  # also starts INCR
        if prop is None:
            self._convert = None
            self._count("invalid")
            return
        if prop.property_type == self._atoms["INCR"]:
            conv.incr = bytearray()
            conv.incr_type = 0
            conv.started = time.monotonic()
            announced = int(prop.value[0]) if len(prop.value) else 0
            conv.incr_over = announced > self.max_bytes
            conv.announced = announced
            return
        self._convert = None
        self._deliver(prop.property_type, prop.format, prop.value)

    def _on_property(self, e: Any) -> None:
        from Xlib import X

        key = (e.window.id, e.atom)
        out = self._outgoing.get(key)
        if out is not None and e.state == X.PropertyDelete:
            self._send_chunk(out)
            return
        conv = self._convert
        if (
            conv is None
            or conv.incr is None
            or e.window.id != self._win.id
            or e.atom != self._atoms["_WAVRY_CLIPBOARD"]
            or e.state != X.PropertyNewValue
        ):
            return
        prop = self._win.get_full_property(e.atom, X.AnyPropertyType, sizehint=INCR_CHUNK)
        self._win.delete_property(e.atom)
        conv.started = time.monotonic()
        if prop is None:
            return
        if not conv.incr_type:
            conv.incr_type = prop.property_type
        value = prop.value
        if len(value) == 0:  # end of INCR
            self._convert = None
            if conv.incr_over:
                self._too_large(max(conv.announced, self.max_bytes + 1))
                return
            self._deliver(conv.incr_type, 8, bytes(conv.incr))
            return
        if not conv.incr_over:
            conv.incr += bytes(value) if prop.format == 8 else b""
            if len(conv.incr) > self.max_bytes:
                conv.incr_over = True
                conv.incr = bytearray()

    def _deliver(self, ptype: int, fmt: int, value: Any) -> None:
        if fmt != 8 or ptype not in (
            self._atoms["UTF8_STRING"],
            self._atoms["STRING"],
            self._atoms["TEXT"],
        ):
            self._count("invalid")
            return
        raw = bytes(value)
        if len(raw) > self.max_bytes:
            self._too_large(len(raw))
            return
        try:
            text = raw.decode("latin-1" if ptype == self._atoms["STRING"] else "utf-8")
        except UnicodeDecodeError:
            self._count("invalid")
            return
        if len(text.encode("utf-8")) > self.max_bytes:
            self._too_large(len(text.encode("utf-8")))
            return
        if not text:
            return
        with self._lock:
            if text == self._last:
                if self.mode != "poll":
                    self._count("duplicates")
                return
            self._last = text
        self._count("sent")
        log.debug("clipboard: local change, %d bytes", len(raw))
        try:
            self._on_local_change(text)
        except Exception as exc:
            self._count("errors")
            log.warning("clipboard: on_local_change failed: %s", type(exc).__name__)

    def _too_large(self, size: int) -> None:
        with self._lock:
            if self.mode == "poll" and size == self._last_too_large:
                return  # polling sees the same oversized copy again and again: report it once
            self._last_too_large = size
        self._count("too_large")
        if self._on_too_large is not None:
            try:
                self._on_too_large(size)
            except Exception as exc:
                self._count("errors")
                log.warning("clipboard: on_too_large failed: %s", type(exc).__name__)

    # ---- peer → local

    def _take_ownership(self, text: str) -> None:
        from Xlib import X

        d = self._d
        with self._lock:
            self._last = text
        self._owned = text
        self._convert = None
        selections = ["CLIPBOARD"] + (["PRIMARY"] if self._primary else [])
        for name in selections:
            self._win.set_selection_owner(self._atoms[name], X.CurrentTime)
        owner = d.get_selection_owner(self._atoms["CLIPBOARD"])
        if owner is None or owner == X.NONE or owner.id != self._win.id:
            self._owned = None
            self._count("errors")
            return
        self._count("applied")
        log.debug("clipboard: remote text applied, %d chars", len(text))

    def _serve(self, e: Any) -> None:
        from Xlib import X, Xatom
        from Xlib.protocol import event

        a = self._atoms
        prop = e.property if e.property != X.NONE else e.target  # obsolete requestors
        text = self._owned
        ok = False
        if text is not None and e.selection in (a["CLIPBOARD"], a["PRIMARY"]):
            try:
                if e.target == a["TARGETS"]:
                    targets = [a["TARGETS"], a["UTF8_STRING"], a["STRING"], a["TEXT"]]
                    e.requestor.change_property(prop, Xatom.ATOM, 32, targets)
                    ok = True
                elif e.target in (a["UTF8_STRING"], a["TEXT"], a["STRING"]):
                    if e.target == a["STRING"]:
                        data, ptype = text.encode("latin-1", "replace"), a["STRING"]
                    else:
                        data, ptype = text.encode("utf-8"), a["UTF8_STRING"]
                    if len(data) > INCR_CHUNK:
                        self._start_incr(e.requestor, prop, ptype, data)
                    else:
                        e.requestor.change_property(prop, ptype, 8, data)
                    self._count("served")
                    ok = True
            except Exception:
                self._count("errors")
                ok = False
        if not ok:
            self._count("refused")
        reply = event.SelectionNotify(
            time=e.time,
            requestor=e.requestor,
            selection=e.selection,
            target=e.target,
            property=prop if ok else X.NONE,
        )
        e.requestor.send_event(reply)

    def _start_incr(self, requestor: Any, prop: int, ptype: int, data: bytes) -> None:
        from Xlib import X

        requestor.change_attributes(event_mask=X.PropertyChangeMask)
        requestor.change_property(prop, self._atoms["INCR"], 32, [len(data)])
        self._outgoing[(requestor.id, prop)] = _Outgoing(
            requestor, prop, ptype, data, 0, time.monotonic()
        )

    def _send_chunk(self, out: _Outgoing) -> None:
        from Xlib import X

        out.started = time.monotonic()
        if out.done:  # requestor deleted the final zero-length property
            del self._outgoing[(out.requestor.id, out.prop)]
            out.requestor.change_attributes(event_mask=X.NoEventMask)
            return
        chunk = out.data[out.offset : out.offset + INCR_CHUNK]
        out.offset += len(chunk)
        out.requestor.change_property(out.prop, out.ptype, 8, chunk)
        if not chunk:
            out.done = True

    def _expire(self) -> None:
        now = time.monotonic()
        if self._convert is not None and now - self._convert.started > CONVERT_TIMEOUT:
            self._convert = None
            self._count("timeouts")
        for key, out in list(self._outgoing.items()):
            if now - out.started > CONVERT_TIMEOUT:
                del self._outgoing[key]
                self._count("timeouts")
