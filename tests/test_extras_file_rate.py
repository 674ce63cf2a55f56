"""File data beside video: the spare-capacity scavenger, the video-first bulk lane in the transport,
and the receiver's running SHA-256 (no read-back of a large file at the end)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from wavry.files.transfer import (
    SPARE_DECREASE,
    SPARE_HOLD_S,
    SPARE_PROBE,
    SPARE_START_KBPS,
    FileReceiver,
    FileSender,
    FileTransfers,
    Role,
    SenderState,
    SpareCapacity,
)
from wavry.rift import rift_pb2
from wavry.rift.channel import SecureChannel
from wavry.rift.framing import TransportDatagram, parse_datagram
from wavry.rift.transport import HostTransport, TransportConfig


def test_spare_capacity_grows_on_a_clean_path_and_halves_on_congestion() -> None:
    sc = SpareCapacity(max_kbps=100_000)
    now = 0.0
    rates = []
    for _ in range(40):
        now += 0.1
        rates.append(sc.update(now, True))
    assert rates[0] == SPARE_START_KBPS
    assert rates == sorted(rates) and rates[-1] == 100_000  # slow start up to the cap
    sc.update(now + 0.01, False)
    cut = 100_000 * SPARE_DECREASE
    assert sc.kbps == cut and sc.backoffs == 1
    sc.update(now + 0.02, False)  # the same congestion episode: no second cut
    assert sc.kbps == cut
    assert sc.update(now + 0.1, True) == cut  # held
    later = now + 0.02 + SPARE_HOLD_S + 0.01
    assert sc.update(later, True) > cut  # probing again, slowly above the last back-off
    assert sc.update(later + 0.1, True) <= cut * SPARE_PROBE**2 + 1e-6


def test_spare_capacity_disabled_keeps_the_floor() -> None:
    sc = SpareCapacity(enabled=False)
    assert all(sc.update(t / 10, True) == 0.0 for t in range(1, 30))


def test_sender_rate_is_floor_plus_spare(tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(4_000_000))
    s = FileSender(src, 3, 0.0, share=0.15)
    s.on_status(rift_pb2.FileStatus(file_id=3, status=1, message="next=0"), 0.0)
    sent = 0
    now = 0.0
    for _ in range(100):  # 1 s at 8 Mbit/s video: 15 % floor = 150 kB, + 16 Mbit/s spare = 2 MB
        now += 0.01
        sent += sum(len(o.message.media.file_chunk.payload) for o in s.poll(now, 8000, 16_000))
    assert 2_000_000 <= sent <= 2_200_000, sent
    s2 = FileSender(src, 5, 0.0, share=0.15)
    s2.on_status(rift_pb2.FileStatus(file_id=5, status=1, message="next=0"), 0.0)
    sent2 = sum(
        len(o.message.media.file_chunk.payload)
        for i in range(1, 101)
        for o in s2.poll(i / 100, 8000)
    )
    assert 140_000 <= sent2 <= 160_000, sent2  # the floor alone


def test_a_receiver_gap_is_a_congestion_sign(tmp_path: Path) -> None:
    src = tmp_path / "g.bin"
    src.write_bytes(os.urandom(500_000))
    ft = FileTransfers(Role.CLIENT, None)
    s, _ = ft.send_file(src, 0.0)
    s.on_status(rift_pb2.FileStatus(file_id=s.file_id, status=1, message="next=0"), 0.0)
    now = 0.0
    for _ in range(30):
        now += 0.01
        ft.poll(now, 8000, True)
    assert ft.spare.kbps > 0
    before = ft.spare.kbps
    s.on_status(rift_pb2.FileStatus(file_id=s.file_id, status=1, message="next=1"), now)
    assert s.rewinds == 1
    ft.poll(now + 0.01, 8000, True)
    assert ft.spare.kbps <= before * SPARE_DECREASE


def _transport() -> HostTransport:
    key = os.urandom(32)
    ch = SecureChannel(0x1234, key, key, 1400)
    return HostTransport(ch, TransportConfig(fec=False), 0.0)


def test_bulk_waits_while_video_is_queued_and_keeps_packet_order() -> None:
    tr = _transport()
    now = 1.0
    tr.send_frame(os.urandom(200_000), now, keyframe=True, timestamp_us=1)  # ~150 datagrams
    first = tr.take_output(now)
    assert tr.media.pacer.queued_datagrams > 0  # paced: most of the frame still waits
    chunk = rift_pb2.Message(
        media=rift_pb2.MediaMessage(file_chunk=rift_pb2.FileChunk(file_id=1, payload=b"x" * 1000))
    )
    for _ in range(20):
        tr.send_bulk(chunk, now)
    assert tr.bulk_pending == 20  # nothing of the file goes ahead of the frame
    out = list(first)
    t = now
    while tr.media.pacer.queued_datagrams or tr.bulk_pending:
        t += 0.001
        out += tr.take_output(t)
    kinds = []
    for d in out:
        dgram = parse_datagram(d)
        assert isinstance(dgram, TransportDatagram)
        msg = tr.channel.open(dgram)
        assert msg is not None
        kinds.append((dgram.packet_id, msg.media.WhichOneof("content")))
    ids = [pid for pid, _ in kinds]
    assert ids == sorted(ids)  # sent in packet-id order: no reordering for NACK to misread
    first_file = next(i for i, (_, k) in enumerate(kinds) if k == "file_chunk")
    assert all(k == "video" for _, k in kinds[:first_file])
    assert all(k == "file_chunk" for _, k in kinds[first_file:])
    assert sum(1 for _, k in kinds if k == "file_chunk") == 20


def test_receiver_hashes_as_chunks_arrive_even_out_of_order(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    s = FileSender(src, 7, 0.0)
    r = FileReceiver(tmp_path / "out", Role.HOST)
    [reply] = r.on_header(0, s.header().control.file_header, 0.0)
    s.on_status(reply.message.control.file_status, 0.0)
    chunks = [o.message.media.file_chunk for o in s.poll(1.0, 0, 1e9) if o.bulk]
    order = list(range(len(chunks)))
    order[3], order[10] = order[10], order[3]  # a reordering
    out = []
    t = next(iter(r.incoming.values()))
    for i in order:
        out += r.on_chunk(0, chunks[i], 1.0)
    assert t.done and t.hashed == len(chunks)
    assert not r.incoming  # a finished transfer is forgotten (its verdict is remembered)
    assert out[-1].message.control.file_status.status == rift_pb2.FileStatus.COMPLETE
    assert hashlib.sha256((tmp_path / "out" / "src.bin").read_bytes()).digest() == (
        hashlib.sha256(data).digest()
    )
    assert s.state is SenderState.WAITING
