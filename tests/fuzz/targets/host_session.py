"""Every protobuf message through a host session's dispatch: each input is a decrypted
plaintext (sealed with the client's key so it authenticates), then the host core, the typed
event boundary (wavry.runtime.messages) and the host's file transfers see it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.fuzz.targets._session import ADDR, Session, seed_messages
from wavry.files.transfer import FileReceiver, FileTransfers, Role
from wavry.rift import events as ev
from wavry.runtime import messages

_state: dict[str, object] = {"n": 0}
_DIR = Path(tempfile.mkdtemp(prefix="wavry-fuzz-host-"))


def seeds() -> list[bytes]:
    return [m.SerializeToString() for m in seed_messages()]


def _env() -> tuple[Session, FileTransfers]:
    n = int(_state["n"]) + 1
    _state["n"] = n
    if n % 3000 == 1 or "s" not in _state:
        for f in _DIR.iterdir():
            f.unlink()
        rx = FileReceiver(_DIR, Role.HOST, clipboard_max=1 << 16, free_space=lambda _: 1 << 40)
        _state["s"] = Session()
        _state["files"] = FileTransfers(Role.HOST, rx)
    return _state["s"], _state["files"]  # type: ignore[return-value]


def test_one_input(data: bytes) -> None:
    s, files = _env()
    s.now += 0.002
    if s.host_session is None:  # the input ended the session (a Disconnect): next time anew
        _state.pop("s")
        return
    _, d = s.client_tx.seal_bytes(data)
    s.host.receive_datagram(d, ADDR, s.now)
    s.host.datagrams_to_send(s.now)
    while (e := s.host.next_event()) is not None:
        if isinstance(e, ev.ClientMessage):
            messages.decode(e.message)
            files.handle(e.message, s.now)
    s.host.handle_timer(s.now)
    files.poll(s.now, 1000.0)
