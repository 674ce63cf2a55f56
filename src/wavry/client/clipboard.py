"""The clipboard feature: text both ways. Up to one datagram as ``ClipboardText``, larger text
over the file path under the reserved name (docs/protocol-notes.md). Back-end: the
``open_clipboard`` sync object (X11 selections or wl-clipboard), injected."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from wavry.runtime.clipboard_wire import clipboard_text_budget
from wavry.runtime.features import Feature
from wavry.runtime.messages import AppEvent, ClipboardText

__all__ = ["ClipboardFeature"]


def _utf8_size(text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return -1


class ClipboardFeature(Feature):
    name = "clipboard"
    handles = (ClipboardText,)

    def __init__(
        self,
        send: Callable[[AppEvent], None],
        send_large: Callable[[str], None],
        max_plaintext: Callable[[], int],
        say: Callable[[str], None],
        limit: int,
    ) -> None:
        self.sync: Any = None  # ClipboardSync | WlClipboardSync
        self._send = send
        self._send_large = send_large
        self._max_plaintext = max_plaintext
        self._say = say
        self.limit = limit

    def _budget(self) -> int:
        n = self._max_plaintext()
        return clipboard_text_budget(n) if n > 0 else 0

    def start(self, loop: asyncio.AbstractEventLoop, opener: Callable[..., Any]) -> None:
        """Open the back-end (``opener`` = ``open_clipboard``); failures are one line."""
        limit = self.limit

        def changed(text: str) -> None:  # on the clipboard's thread
            loop.call_soon_threadsafe(self.local_change, text)

        def too_large(size: int) -> None:  # on the clipboard's thread
            loop.call_soon_threadsafe(
                self._say,
                f"clipboard: local copy of {size} bytes not synced: larger than the limit "
                f"of {limit} bytes (--clipboard-max-bytes)",
            )

        try:
            self.sync = opener(changed, max_bytes=limit, on_too_large=too_large)
        except (RuntimeError, OSError) as exc:
            self._say(f"clipboard sync off: {exc}")
            return
        self._say(f"clipboard sync on ({self.sync.mode})")

    def local_change(self, text: str) -> None:
        size = _utf8_size(text)
        if size < 0:
            return  # not representable as UTF-8 (lone surrogates): nothing to send
        if size <= self._budget():
            self._send(ClipboardText(text))
        else:
            self._send_large(text)

    def remote_text(self, text: str) -> None:
        """Text from the host (a ClipboardText or a completed clipboard file)."""
        if self.sync is not None:
            self.sync.set_remote_text(text)

    def on_event(self, peer: int, event: AppEvent, now: float) -> bool:
        assert isinstance(event, ClipboardText)
        size = _utf8_size(event.text)
        if 0 <= size <= self._budget():  # lone surrogates (-1) and oversize text are ignored
            self.remote_text(event.text)
        return True

    def close(self) -> None:
        if self.sync is not None:
            self.sync.close()
            self.sync = None
