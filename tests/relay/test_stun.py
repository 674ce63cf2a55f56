"""STUN Binding responder against captured requests, over real UDP sockets."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path
from typing import Any

import pytest
from aioice import stun

from wavry.controlplane.stun import StunResponder, start_stun_server

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "stun"
REQUESTS = ["binding_request.bin", "binding_request_ice_controlled.bin"]
REQUESTS += ["binding_request_ice_controlling.bin"]


def _have_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


async def _exchange(host: str, payloads: list[bytes], expect: int) -> tuple[list[bytes], Any]:
    """Send payloads from one client socket; return the responses and the client address."""
    loop = asyncio.get_running_loop()
    transport, _responder = await start_stun_server(host, 0)
    server_addr = transport.get_extra_info("sockname")
    client_t, client = await loop.create_datagram_endpoint(Client, local_addr=(host, 0))
    try:
        for p in payloads:
            client_t.sendto(p, server_addr)
        got = [await asyncio.wait_for(client.queue.get(), 2.0) for _ in range(expect)]
        await asyncio.sleep(0.05)
        assert client.queue.empty(), "unexpected extra responses"
        return got, client_t.get_extra_info("sockname")
    finally:
        client_t.close()
        transport.close()


def test_vectors_parse() -> None:
    for name in REQUESTS:
        msg = stun.parse_message((VECTORS / name).read_bytes())
        assert msg.message_method == stun.Method.BINDING
        assert msg.message_class == stun.Class.REQUEST
    resp = stun.parse_message((VECTORS / "binding_response.bin").read_bytes())
    assert resp.message_class == stun.Class.RESPONSE
    assert "XOR-MAPPED-ADDRESS" in resp.attributes


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        pytest.param("::1", marks=pytest.mark.skipif(not _have_ipv6(), reason="no IPv6")),
    ],
)
def test_answers_captured_requests_over_udp(host: str) -> None:
    requests = [(VECTORS / n).read_bytes() for n in REQUESTS]
    responses, client_addr = asyncio.run(_exchange(host, requests, len(requests)))
    for req, raw in zip(requests, responses, strict=True):
        resp = stun.parse_message(raw)  # also checks FINGERPRINT when present
        assert resp.message_method == stun.Method.BINDING
        assert resp.message_class == stun.Class.RESPONSE
        assert resp.transaction_id == req[8:20]
        assert resp.attributes["XOR-MAPPED-ADDRESS"] == (client_addr[0], client_addr[1])
        assert resp.attributes["SOFTWARE"] == "wavry"
        had_fingerprint = b"\x80\x28\x00\x04" in req[-8:-4]
        assert ("FINGERPRINT" in resp.attributes) == had_fingerprint
        # The address is really XOR-ed with the cookie (not a plain MAPPED-ADDRESS).
        assert raw[20:22] == b"\x00\x20"


def test_ignores_junk_without_crashing() -> None:
    good = (VECTORS / "binding_request.bin").read_bytes()
    ice = bytearray((VECTORS / "binding_request_ice_controlled.bin").read_bytes())
    ice[40] ^= 0xFF  # inside SOFTWARE: FINGERPRINT no longer matches
    bad_cookie = good[:4] + b"\x00\x00\x00\x00" + good[8:]
    junk = [
        b"",
        b"\x00",
        good[:19],
        good + b"\x00\x00\x00\x00",  # length field does not match
        bad_cookie,
        b"\xc0" + good[1:],  # top bits set: not STUN
        bytes(ice),
        (VECTORS / "binding_response.bin").read_bytes(),  # a response, not a request
        b"\x00\x11" + good[2:],  # Binding indication: no answer
        b"\x00\x03" + good[2:],  # Allocate request: not served
        good[:2] + b"\x00\x08" + good[4:] + b"\x00\x24\x00\x08\x00\x00\x00\x01",  # truncated TLV
        good[:2] + b"\x00\x04" + good[4:] + b"\x00\x24\x00\x00",  # PRIORITY with no value
        b"W\x01\x10\x00" + b"\x00" * 16,  # a relay datagram
    ]
    responses, client_addr = asyncio.run(_exchange("127.0.0.1", [*junk, good], 1))
    resp = stun.parse_message(responses[0])
    assert resp.transaction_id == good[8:20]
    assert resp.attributes["XOR-MAPPED-ADDRESS"] == client_addr[:2]


def test_handle_counts_and_unknown_attribute() -> None:
    r = StunResponder(software=None)
    good = (VECTORS / "binding_request.bin").read_bytes()
    assert r.handle(b"\x00" * 3, ("1.2.3.4", 5)) is None
    assert r.handle((VECTORS / "binding_response.bin").read_bytes(), ("1.2.3.4", 5)) is None
    raw = r.handle(good, ("::ffff:10.1.2.3", 4242, 0, 0))
    assert raw is not None
    resp = stun.parse_message(raw)
    assert resp.attributes == {"XOR-MAPPED-ADDRESS": ("10.1.2.3", 4242)}
    # Unknown comprehension-required attribute 0x0033 -> 420 listing it; 0xC057 is optional.
    req = good[:2] + b"\x00\x08" + good[4:] + b"\x00\x33\x00\x03abc\x00"
    raw = r.handle(req, ("1.2.3.4", 5))
    assert raw is not None
    err = stun.parse_message(raw)
    assert err.message_class == stun.Class.ERROR
    assert err.attributes["ERROR-CODE"] == (420, "Unknown Attribute")
    assert raw[-8:] == b"\x00\x0a\x00\x02\x00\x33\x00\x00"
    assert struct.unpack("!H", raw[2:4])[0] == len(raw) - 20
    opt = good[:2] + b"\x00\x08" + good[4:] + b"\xc0\x57\x00\x04\x00\x01\x00\x0a"
    assert r.handle(opt, ("1.2.3.4", 5)) is not None
    assert (r.stats.malformed, r.stats.ignored, r.stats.responses, r.stats.errors_420) == (
        1,
        1,
        2,
        1,
    )


def test_per_ip_rate_limit() -> None:
    now = [0.0]
    r = StunResponder(rate=1.0, burst=3, clock=lambda: now[0])
    good = (VECTORS / "binding_request.bin").read_bytes()
    answers = [r.handle(good, ("10.0.0.1", 1000 + i)) is not None for i in range(5)]
    assert answers == [True, True, True, False, False]
    assert r.handle(good, ("10.0.0.2", 1000)) is not None  # another IP is unaffected
    now[0] += 1.0
    assert r.handle(good, ("10.0.0.1", 1000)) is not None
    assert r.handle(good, ("10.0.0.1", 1000)) is None
    assert r.stats.rate_limited == 3
