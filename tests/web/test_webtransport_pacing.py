"""A WebTransport connection sends a burst of RIFT datagrams at once: RIFT paces (DELTA), so
aioquic's own pacer, which held the rest of a burst back for a millisecond-resolution loop timer,
is out of the way (wavry.web.webtransport._Unpaced). Two aioquic connections exchange packets in
memory; no sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from wavry.web.cert import load_or_create_certificate
from wavry.web.webtransport import QUIC_PACKET_SIZE, _Connection

BURST = 8  # datagrams: within the initial congestion window (10 packets), over the pacer's bucket


def _pair(tmp_path: Path) -> tuple[QuicConnection, QuicConnection]:
    cert, _ = load_or_create_certificate(["127.0.0.1"], tmp_path)
    (tmp_path / "c.pem").write_bytes(cert.cert_pem)
    (tmp_path / "k.pem").write_bytes(cert.key_pem)
    server_cfg = QuicConfiguration(
        alpn_protocols=H3_ALPN,
        is_client=False,
        max_datagram_frame_size=65536,
        max_datagram_size=QUIC_PACKET_SIZE,
    )
    server_cfg.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    client_cfg = QuicConfiguration(
        alpn_protocols=H3_ALPN, is_client=True, max_datagram_frame_size=65536, verify_mode=0
    )
    client = QuicConnection(configuration=client_cfg)
    server = QuicConnection(
        configuration=server_cfg,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    return client, server


def _handshake(client: QuicConnection, server: QuicConnection, now: float) -> float:
    addr = ("127.0.0.1", 4433)
    client.connect(addr, now=now)
    for _ in range(20):
        now += 0.002
        for data, _ in client.datagrams_to_send(now=now):
            server.receive_datagram(data, addr, now=now)
        for data, _ in server.datagrams_to_send(now=now):
            client.receive_datagram(data, addr, now=now)
    assert server._handshake_complete and client._handshake_complete
    return now


def _burst(server: QuicConnection, now: float) -> int:
    for _ in range(BURST):
        server.send_datagram_frame(b"\x00" * 1100)
    return len(server.datagrams_to_send(now=now))


def test_a_burst_leaves_at_once_on_a_webtransport_connection(tmp_path: Path) -> None:
    async def run() -> tuple[int, int]:
        client, server = _pair(tmp_path)
        now = _handshake(client, server, 1000.0)
        paced = _burst(server, now + 0.05)  # aioquic's pacer, as configured by default

        client, server = _pair(tmp_path)
        conn: Any = _Connection(server)  # what the web endpoint wraps each connection in
        now = _handshake(client, server, 1000.0)
        unpaced = _burst(conn._quic, now + 0.05)
        return paced, unpaced

    paced, unpaced = asyncio.run(run())
    assert paced < BURST  # the premise: aioquic alone spreads the burst
    assert unpaced == BURST
