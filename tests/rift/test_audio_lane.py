"""Audio rides the priority lane: it overtakes paced video without making the receiver NACK the
video datagrams it skipped (they are not lost, only still in the sender's pacer)."""

from __future__ import annotations

from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.testing.loopback import Loopback

T0 = 1_700_000_000.0


def test_audio_overtaking_paced_video_triggers_no_nack() -> None:
    host = HostEndpoint(Identity.generate(), HostConfig(trust_any=True, initial_bitrate_kbps=500))
    client = ClientSession(Identity.generate(), ClientConfig())
    lb = Loopback(client, host)
    client.connect(T0)
    lb.pump(T0)
    alias = next(iter(host.sessions))
    now = T0 + 0.01
    audio_ids: list[int] = []
    for i in range(10):  # a paced 30 kB keyframe, audio every 10 ms on top of it
        if i == 0:
            host.send_frame(alias, b"\x07" * 30_000, now, keyframe=True, timestamp_us=1)
        pkt = rift_pb2.AudioPacket(timestamp_us=int(now * 1e6), payload=b"\xfc" + bytes(40))
        audio_ids.append(
            host.send_message(alias, rift_pb2.Message(media=rift_pb2.MediaMessage(audio=pkt)), now)
        )
        now = lb.run_until(now, now + 0.01, step=0.002)
    now = lb.run_until(now, now + 0.5, step=0.005)
    got = [
        e.message.media.audio
        for e in lb.client_events
        if isinstance(e, ev.MessageReceived) and e.message.HasField("media")
    ]
    assert len(got) == 10  # every audio packet arrived (ahead of the rest of the frame)
    tr = client.transport
    assert tr is not None
    assert tr.stats.frames_completed == 1  # and the video frame completed
    assert tr.stats.nacks_sent == 0  # without a single spurious NACK
    assert host.sessions[alias].transport.stats.retransmitted == 0
