"""Clipboard text on the wire (docs/spec/RIFT.md §5 ``ClipboardMessage``): wrap, unwrap, size.

The clipboard back-ends (:mod:`wavry.platform.clipboard` and friends) deal in plain text; the
runtimes turn it into protobuf here, so the platform layer never imports the wire format.
"""

from __future__ import annotations

from wavry.platform.clipboard import MAX_TEXT_BYTES
from wavry.rift import rift_pb2

__all__ = ["clipboard_message", "clipboard_text_budget", "text_from_message"]


def clipboard_message(text: str) -> rift_pb2.Message:
    """Wrap ``text`` in ``Message{control{clipboard{text}}}``."""
    return rift_pb2.Message(
        control=rift_pb2.ControlMessage(clipboard=rift_pb2.ClipboardMessage(text=text))
    )


def clipboard_text_budget(max_plaintext: int) -> int:
    """Largest UTF-8 text (bytes) whose ``clipboard_message`` fits in ``max_plaintext`` bytes.

    docs/spec/RIFT.md §1: only video and file chunks are split, every other message fits in one
    datagram,
    so a session can carry at most this much clipboard text per ``ClipboardMessage`` (1357 bytes
    at the default 1400-byte datagram). Pass it as ``ClipboardSync(max_bytes=...)`` so larger
    changes are skipped and counted instead of failing in ``SecureChannel.seal``.
    """
    n = max(0, min(max_plaintext, MAX_TEXT_BYTES + 16))
    while n > 0 and len(clipboard_message("x" * n).SerializeToString()) > max_plaintext:
        n -= 1
    return min(n, MAX_TEXT_BYTES)


def text_from_message(msg: rift_pb2.Message, max_bytes: int = MAX_TEXT_BYTES) -> str | None:
    """The clipboard text carried by ``msg``, or None if it is not a valid clipboard message.

    Rejects messages that are not ``control.clipboard``, text that does not encode as UTF-8
    (lone surrogates) and text over ``max_bytes`` UTF-8 bytes.
    """
    if msg.WhichOneof("content") != "control":
        return None
    if msg.control.WhichOneof("content") != "clipboard":
        return None
    text = msg.control.clipboard.text
    if not isinstance(text, str):
        return None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None
    if size > max_bytes:
        return None
    return text
