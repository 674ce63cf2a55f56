"""An established RIFT session (sans-I/O) that fuzz targets feed decrypted plaintexts into: the
other end's channel seals each input, so it passes the AEAD and reaches the session's dispatch."""

from __future__ import annotations

from wavry.rift import rift_pb2
from wavry.rift.channel import SecureChannel
from wavry.rift.client import ClientSession, ClientState
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.host import HostEndpoint, HostSession
from wavry.rift.identity import Identity
from wavry.rift.testing.loopback import Loopback

ADDR = ("192.0.2.9", 5000)
HOST_ID = Identity.from_private_bytes(b"\x03" * 32)
CLIENT_ID = Identity.from_private_bytes(b"\x04" * 32)


class Session:
    def __init__(self) -> None:
        self.host = HostEndpoint(HOST_ID, HostConfig(trust_any=True), static_private=b"\x05" * 32)
        self.client = ClientSession(CLIENT_ID, ClientConfig(auto_reconnect=False))
        lb = Loopback(self.client, self.host, client_addr=ADDR)
        self.client.connect(0.0)
        lb.pump(0.0)
        assert self.client.state is ClientState.ACTIVE
        (self.session,) = self.host.sessions.values()
        self.now = 0.0
        ch = self.session.channel
        # the client's sending half, as the host sees it (same keys as the client's channel)
        self.client_tx = SecureChannel(ch.alias, ch.recv_key, ch.send_key, ch.max_datagram)
        self.host_tx = SecureChannel(ch.alias, ch.send_key, ch.recv_key, ch.max_datagram)
        # skip the ids both sides already used
        for _ in range(self.client.channel.next_packet_id - 1):  # type: ignore[union-attr]
            self.client_tx.seal_bytes(b"")
        for _ in range(ch.next_packet_id - 1):
            self.host_tx.seal_bytes(b"")

    @property
    def host_session(self) -> HostSession | None:
        return self.host.sessions.get(self.session.alias)


def seed_messages() -> list[rift_pb2.Message]:
    c = rift_pb2.ControlMessage
    m = rift_pb2.Message
    media = rift_pb2.MediaMessage
    return [
        m(control=c(ping=rift_pb2.Ping(timestamp_us=5))),
        m(control=c(pong=rift_pb2.Pong(timestamp_us=5, host_time_us=7))),
        m(control=c(hello=rift_pb2.Hello(protocol_version=1, max_fps=30))),
        m(control=c(nack=rift_pb2.Nack(packet_ids=[1, 2, 3]))),
        m(control=c(rfi=rift_pb2.ReferenceInvalidation(last_valid_frame_id=3))),
        m(control=c(select_monitor=rift_pb2.SelectMonitor(monitor_id=0))),
        m(control=c(clipboard=rift_pb2.ClipboardMessage(text="hi"))),
        m(control=c(pair_request=rift_pb2.PairRequest(proof=bytes(32)))),
        m(control=c(disconnect=rift_pb2.Disconnect(reason=1, message="bye"))),
        m(control=c(congestion=rift_pb2.CongestionControl(target_bitrate_kbps=900))),
        m(control=c(encoder_control=rift_pb2.EncoderControl(skip_frames=1))),
        m(control=c(latency=rift_pb2.LatencyStats(frame_id=1, total_us=9))),
        m(control=c(stats=rift_pb2.StatsReport(period_ms=1000, received_packets=9))),
        m(
            control=c(
                transport_feedback=rift_pb2.TransportFeedback(
                    base_packet_id=1,
                    packet_count=8,
                    received_bitmap=b"\xff",
                    reference_time_us=10,
                    arrival_delta_us=[0, 1, 2, 3, 4, 5, 6, 7],
                )
            )
        ),
        m(
            control=c(
                file_header=rift_pb2.FileHeader(
                    file_id=3,
                    filename="a.txt",
                    file_size=10,
                    checksum_sha256="0" * 64,
                    chunk_size=1000,
                    total_chunks=1,
                )
            )
        ),
        m(control=c(file_status=rift_pb2.FileStatus(file_id=3, status=1, message="next=0"))),
        m(input=rift_pb2.InputMessage(timestamp_us=1, key=rift_pb2.Key(keycode=30, pressed=True))),
        m(input=rift_pb2.InputMessage(mouse_move=rift_pb2.MouseMove(x=0.5, y=0.5))),
        m(input=rift_pb2.InputMessage(scroll=rift_pb2.Scroll(dx=0, dy=1))),
        m(
            input=rift_pb2.InputMessage(
                gamepad=rift_pb2.GamepadMessage(
                    gamepad_id=0,
                    axes=[rift_pb2.GamepadAxis(axis=0, value=0.5)],
                    buttons=[rift_pb2.GamepadButton(button=0, pressed=True)],
                )
            )
        ),
        m(media=media(audio=rift_pb2.AudioPacket(timestamp_us=1, payload=b"\xfc" * 20))),
        m(
            media=media(
                video=rift_pb2.VideoChunk(
                    frame_id=1,
                    chunk_index=0,
                    chunk_count=2,
                    timestamp_us=1,
                    keyframe=True,
                    payload=b"\x00\x00\x00\x01" * 50,
                )
            )
        ),
        m(
            media=media(
                fec=rift_pb2.FecPacket(
                    group_id=1,
                    first_packet_id=2,
                    shard_count=4,
                    parity_index=0,
                    parity_count=1,
                    payload=bytes(64),
                    shard_lengths=[64, 64, 64, 64],
                )
            )
        ),
        m(media=media(file_chunk=rift_pb2.FileChunk(file_id=3, chunk_index=0, payload=b"x"))),
    ]
