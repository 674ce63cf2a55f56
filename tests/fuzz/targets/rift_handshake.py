"""RIFT handshake messages (docs/spec/RIFT.md §2) at both ends: a host fed msg1/msg3/cookie
datagrams (admission, Noise, identity proofs), a client in its handshake fed msg2/cookie replies.

Input: byte 0 picks the message, bytes 1..13 the handshake id variant, the rest is the payload.
"""

from __future__ import annotations

from wavry.rift.client import ClientSession, ClientState
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.framing import encode_handshake_header
from wavry.rift.handshake import InitiatorHandshake, LocalStatic
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity

HOST_IDENTITY = Identity.from_private_bytes(b"\x01" * 32)
CLIENT_IDENTITY = Identity.from_private_bytes(b"\x02" * 32)
HOST_STATIC = bytes(range(32))
CLIENT = LocalStatic.create(CLIENT_IDENTITY, bytes(range(1, 33)), "fuzz")
ADDR = ("192.0.2.7", 4000)
_state: dict[str, object] = {"n": 0}


def _fresh() -> tuple[HostEndpoint, InitiatorHandshake, bytes]:
    host = HostEndpoint(
        HOST_IDENTITY, HostConfig(trust_any=True, cookie_pending_threshold=64),
        static_private=HOST_STATIC,
    )  # fmt: skip
    real = InitiatorHandshake(CLIENT, b"\x0a" * 12)
    host.receive_datagram(real.msg1, ADDR, 0.0)
    msg2 = next(d for d, _ in host.datagrams_to_send(0.0))
    return host, real, msg2


def seeds() -> list[bytes]:
    _host, real, msg2 = _fresh()
    real.on_msg2(msg2[30:])
    assert real.msg3 is not None
    return [
        b"\x01" + bytes(12) + real.msg1[30:],
        b"\x03" + b"\x0a" * 12 + real.msg3[30:],
        b"\x02" + bytes(12) + msg2[30:],
        b"\x04" + bytes(12) + bytes(16),
        b"\x01" + b"\x05" * 12 + bytes(32),
    ]


def test_one_input(data: bytes) -> None:
    if len(data) < 13:
        return
    n = int(_state["n"]) + 1
    _state["n"] = n
    if n % 500 == 1:  # a fresh host now and then: bounded state, reproducible enough
        _state["env"] = _fresh()
    host, _real, _msg2 = _state["env"]  # type: ignore[misc]
    kind, hid, payload = data[0] % 5, data[1:13], data[13:]
    if kind in (1, 3, 4):
        if kind == 3 and data[1] & 1:
            hid = b"\x0a" * 12  # the pending handshake's id: msg3 through Noise
        host.receive_datagram(encode_handshake_header(hid, kind) + payload, ADDR, n * 0.001)
        host.datagrams_to_send(n * 0.001)
        while host.next_event() is not None:
            pass
        host.handle_timer(n * 0.001)
    else:
        client = _state.get("client")
        if not isinstance(client, ClientSession) or client.state is not ClientState.HANDSHAKE:
            client = ClientSession(CLIENT_IDENTITY, ClientConfig(auto_reconnect=False))
            client.connect(0.0)
            _state["client"] = client
        hs = client._hs
        own = hs.handshake_id if hs is not None and data[1] & 1 else hid
        number = 2 if kind == 2 else 4
        client.receive_datagram(encode_handshake_header(own, number) + payload, 0.01)
        client.datagrams_to_send(0.01)
        while client.next_event() is not None:
            pass
