"""Every protobuf message through a client session's dispatch: each input is a decrypted
plaintext from the host (sealed with the host's key), then the client core, the typed event
boundary (wavry.runtime.messages) and the client's file transfers."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.fuzz.targets._session import Session, seed_messages
from wavry.files.transfer import FileReceiver, FileTransfers, Role
from wavry.rift import events as ev
from wavry.rift.client import ClientState
from wavry.runtime import messages

_state: dict[str, object] = {"n": 0}
_DIR = Path(tempfile.mkdtemp(prefix="wavry-fuzz-client-"))


def seeds() -> list[bytes]:
    return [m.SerializeToString() for m in seed_messages()]


def _env() -> tuple[Session, FileTransfers]:
    n = int(_state["n"]) + 1
    _state["n"] = n
    if n % 3000 == 1 or "s" not in _state:
        for f in _DIR.iterdir():
            f.unlink()
        rx = FileReceiver(_DIR, Role.CLIENT, clipboard_max=1 << 16, free_space=lambda _: 1 << 40)
        _state["s"] = Session()
        _state["files"] = FileTransfers(Role.CLIENT, rx)
    return _state["s"], _state["files"]  # type: ignore[return-value]


def test_one_input(data: bytes) -> None:
    s, files = _env()
    s.now += 0.002
    if s.client.state is not ClientState.ACTIVE:
        _state.pop("s")
        return
    _, d = s.host_tx.seal_bytes(data)
    s.client.receive_datagram(d, s.now)
    s.client.datagrams_to_send(s.now)
    while (e := s.client.next_event()) is not None:
        if isinstance(e, ev.MessageReceived):
            messages.decode(e.message)
            files.handle(e.message, s.now)
    t = s.client.next_timer()
    if t is not None and t <= s.now:
        s.client.handle_timer(s.now)
    files.poll(s.now, 1000.0)
