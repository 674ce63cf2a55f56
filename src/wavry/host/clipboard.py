"""Clipboard text both ways (docs/clipboard.md): a copy on this machine goes to every session
(one ClipboardMessage when it fits a datagram, else over the file path under a reserved name);
a client's copy is set here. Opened with the first stream, on the display the picture comes from."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from wavry.host.link import SessionLink
from wavry.host.routing import HostFeature, PeerInfo, RoutedEvent
from wavry.platform.clipboard import ClipboardError
from wavry.runtime.clipboard_wire import clipboard_text_budget
from wavry.runtime.messages import ClipboardText

__all__ = ["ClipboardFeature", "ClipboardOpener"]

#: (on_change, on_too_large, max_bytes) → a started clipboard back-end (ClipboardSync,
#: WlClipboardSync): ``set_remote_text(text)``, ``mode``, ``where``, ``close()``
ClipboardOpener = Callable[[Callable[[str], None], Callable[[int], None], int], Any]


class ClipboardFeature(HostFeature):
    name = "clipboard"
    handles = (ClipboardText,)

    def __init__(
        self,
        link: SessionLink,
        say: Callable[[str], None],
        *,
        max_bytes: int,
        send_as_file: Callable[[int, str], bool],
        on_state: Callable[[bool], None] = lambda _on: None,
    ) -> None:
        self.link = link
        self.say = say
        self.max_bytes = max_bytes
        self.send_as_file = send_as_file
        self.on_state = on_state  # True: synced (the file receiver accepts clipboard files)
        self.backend: Any = None
        self.viewers: set[int] = set()
        self._open: ClipboardOpener | None = None
        self._where = ""

    def attach(self, opener: ClipboardOpener | None, where: str, *, reopen: bool = False) -> None:
        """How to open the clipboard of the picture's display (None: there is none); with
        ``reopen`` a clipboard already open (on a display that went away) is replaced."""
        if reopen and self.backend is not None:
            self.backend.close()
            self.backend = None
        self._open = opener
        self._where = where
        self._ensure_open()

    def on_accepted(self, peer: PeerInfo, now: float) -> None:
        self.viewers.add(peer.peer)
        self._ensure_open()

    def _ensure_open(self) -> None:
        if self.backend is not None or self._open is None or not self.viewers:
            return
        loop = asyncio.get_running_loop()
        limit = self.max_bytes

        def changed(text: str) -> None:  # on the clipboard's thread
            loop.call_soon_threadsafe(self._send, text)

        def too_large(size: int) -> None:  # on the clipboard's thread
            loop.call_soon_threadsafe(
                self.say,
                f"clipboard: local copy of {size} bytes not synced: larger than the limit "
                f"of {limit} bytes (--clipboard-max)",
            )

        try:
            self.backend = self._open(changed, too_large, limit)
        except (ClipboardError, OSError) as exc:
            self._open = None
            self.on_state(False)
            self.say(f"  clipboard sync off: {exc}")
            return
        self.on_state(True)
        self.say(f"  clipboard sync on ({self._where}, {self.backend.mode})")

    def _send(self, text: str) -> None:
        """A local copy: one ClipboardMessage when it fits a datagram (docs/spec/RIFT.md §1),
        else the file path under the reserved name (docs/protocol-notes.md)."""
        size = len(text.encode("utf-8"))
        for peer in list(self.viewers):
            if size <= clipboard_text_budget(self.link.max_plaintext(peer)):
                self.link.send(peer, ClipboardText(text))
            else:
                self.send_as_file(peer, text)
        self.link.flush()

    def on_event(self, peer: int, event: RoutedEvent, now: float) -> bool:
        if not isinstance(event, ClipboardText) or self.backend is None:
            return isinstance(event, ClipboardText)
        try:
            size = len(event.text.encode("utf-8"))
        except UnicodeEncodeError:
            return True  # not text a clipboard can hold (lone surrogates): ignored
        if size <= clipboard_text_budget(self.link.max_plaintext(peer)):
            self.backend.set_remote_text(event.text)
        return True

    def from_file(self, peer: int, ok: bool, text: str | None, why: str) -> None:
        """Large clipboard text that arrived over the file path (never written to disk)."""
        if not ok or text is None:
            self.say(f"session {peer:08x} clipboard from the client not applied: {why}")
            return
        if self.backend is not None:
            self.backend.set_remote_text(text)

    def on_gone(self, peer: int, reason: str, now: float) -> None:
        self.viewers.discard(peer)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None
