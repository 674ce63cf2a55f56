"""File transfer, sans-I/O: sender and receiver wired directly, with loss and hostility."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from wavry.files.transfer import (
    FileReceiver,
    FileSender,
    FileTransfers,
    Outgoing,
    Role,
    SenderState,
    UnsafeFilename,
    parse_next,
    sanitize_filename,
)
from wavry.rift import rift_pb2

St = rift_pb2.FileStatus
KBPS = 80_000.0  # video bitrate: 15 % of it is 1.5 MB/s


def make_file(tmp: Path, size: int, name: str = "data.bin") -> Path:
    p = tmp / "src" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(os.urandom(size))
    return p


def header_of(out: list[Outgoing]) -> rift_pb2.FileHeader:
    return out[0].message.control.file_header


def statuses(out: list[Outgoing]) -> list[rift_pb2.FileStatus]:
    return [o.message.control.file_status for o in out if o.message.HasField("control")]


def run(
    sender: FileSender,
    receiver: FileReceiver,
    now: float,
    *,
    drop: set[int] | None = None,
    corrupt: int | None = None,
    until: float = 60.0,
) -> float:
    """Drive both sides with 10 ms ticks; chunks in `drop` are lost once."""
    drop = set(drop or ())
    for o in receiver.on_header(0, sender.header().control.file_header, now):
        sender.on_status(o.message.control.file_status, now)
    while not sender.done and now < until:
        now += 0.01
        for o in sender.poll(now, KBPS):
            if o.bulk:
                c = o.message.media.file_chunk
                if c.chunk_index in drop:
                    drop.discard(c.chunk_index)
                    continue
                if corrupt is not None and c.chunk_index == corrupt:
                    c.payload = bytes([c.payload[0] ^ 1]) + c.payload[1:]
                replies = receiver.on_chunk(0, c, now)
            else:
                ctl = o.message.control
                if ctl.HasField("file_header"):
                    replies = receiver.on_header(0, ctl.file_header, now)
                else:
                    replies = receiver.on_status(0, ctl.file_status, now)
            for r in replies:
                sender.on_status(r.message.control.file_status, now)
        for _peer, r in receiver.poll(now):
            sender.on_status(r.message.control.file_status, now)
    return now


def test_sanitize() -> None:
    assert sanitize_filename("report.pdf") == "report.pdf"
    assert sanitize_filename(".bashrc") == "bashrc"
    assert sanitize_filename(" .x. ") == "x"
    assert sanitize_filename("a" * 300 + ".txt").endswith(".txt")
    assert len(sanitize_filename("é" * 300 + ".txt").encode()) <= 200
    for bad in ["../etc/passwd", "a/b", "a\\b", "..", "x\x00y", "bell\x07", "", "...", " . "]:
        with pytest.raises(UnsafeFilename):
            sanitize_filename(bad)


def test_parse_next() -> None:
    assert parse_next("next=0") == 0
    assert parse_next("next=123") == 123
    for bad in ["next=-1", "next=01", "resume_from=3", "next=", "next=1 ", "next=99999999999"]:
        assert parse_next(bad) is None


def test_transfer_complete_and_no_overwrite(tmp_path: Path) -> None:
    src = make_file(tmp_path, 200_000)
    out = tmp_path / "out"
    out.mkdir()
    (out / "data.bin").write_bytes(b"existing")
    rx = FileReceiver(out, Role.HOST)
    tx = FileSender(src, 7, 0.0)
    assert tx.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    run(tx, rx, 0.0)
    assert tx.state is SenderState.COMPLETE, tx.message
    assert tx.message == "saved as data (1).bin"
    assert (out / "data (1).bin").read_bytes() == src.read_bytes()
    assert (out / "data.bin").read_bytes() == b"existing"
    assert not list(out.glob("*.part"))
    [res] = rx.take_results()
    assert res.ok and res.path == out / "data (1).bin"


def test_budget_is_share_of_video_bitrate(tmp_path: Path) -> None:
    src = make_file(tmp_path, 2_000_000)
    tx = FileSender(src, 7, 0.0, share=0.15)
    tx.on_status(St(file_id=7, status=St.IN_PROGRESS, message="next=0"), 0.0)
    sent = 0
    for i in range(1, 101):  # one second at 10 ms ticks
        sent += sum(len(o.message.media.file_chunk.payload) for o in tx.poll(i / 100, 8000))
    budget = 0.15 * 8000 * 1000 / 8  # 150 kB/s
    assert budget * 0.9 <= sent <= budget * 1.1


def test_resume_after_gap(tmp_path: Path) -> None:
    src = make_file(tmp_path, 300_000)
    rx = FileReceiver(tmp_path / "out", Role.HOST)
    tx = FileSender(src, 9, 0.0)
    run(tx, rx, 0.0, drop={3, 4, 50, tx.plan.total_chunks - 1})
    assert tx.state is SenderState.COMPLETE, tx.message
    assert (tmp_path / "out" / "data.bin").read_bytes() == src.read_bytes()


def test_resume_on_new_session_keeps_partial(tmp_path: Path) -> None:
    src = make_file(tmp_path, 300_000)
    rx = FileReceiver(tmp_path / "out", Role.HOST)
    tx = FileSender(src, 9, 0.0)
    h = tx.header().control.file_header
    tx.on_status(rx.on_header(0, h, 0.0)[0].message.control.file_status, 0.0)
    half = tx.plan.total_chunks // 2
    t = 0.0
    while tx.next_index < half:
        t += 0.01
        for o in tx.poll(t, KBPS):
            rx.on_chunk(0, o.message.media.file_chunk, t)
    got = tx.next_index
    rx.peer_gone(0)  # the session dies; a new one (peer 5) offers the same file again
    tx2 = FileSender(src, 11, t)
    [reply] = rx.on_header(5, tx2.header().control.file_header, t)
    assert reply.message.control.file_status.message == f"next={got}"
    tx2.on_status(reply.message.control.file_status, t)
    sent = 0
    while not tx2.done:
        t += 0.01
        for o in tx2.poll(t, KBPS):
            sent += 1
            for r in rx.on_chunk(5, o.message.media.file_chunk, t):
                tx2.on_status(r.message.control.file_status, t)
    assert tx2.state is SenderState.COMPLETE
    assert sent == tx.plan.total_chunks - got
    assert (tmp_path / "out" / "data.bin").read_bytes() == src.read_bytes()


def test_corrupted_chunk_is_an_error_and_nothing_kept(tmp_path: Path) -> None:
    src = make_file(tmp_path, 100_000)
    out = tmp_path / "out"
    rx = FileReceiver(out, Role.HOST)
    tx = FileSender(src, 7, 0.0)
    run(tx, rx, 0.0, corrupt=5)
    assert tx.state is SenderState.FAILED
    assert "SHA-256 mismatch" in tx.message
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("filename", "../../.ssh/authorized_keys", "path separator"),
        ("filename", "..", "'..'"),
        ("filename", "evil\nname", "control"),
        ("file_size", 5 * 1024**3, "larger than the limit"),
        ("checksum_sha256", "abc", "SHA-256"),
        ("chunk_size", 0, "chunk size"),
        ("total_chunks", 4, "total_chunks"),
        ("file_id", 8, "wrong role"),
    ],
)
def test_hostile_offers_refused_nothing_written(
    tmp_path: Path, field: str, value: object, why: str
) -> None:
    out = tmp_path / "out"
    rx = FileReceiver(out, Role.HOST)
    h = rift_pb2.FileHeader(
        file_id=7, filename="ok.bin", file_size=2500, checksum_sha256="0" * 64,
        chunk_size=1000, total_chunks=3,
    )  # fmt: skip
    setattr(h, field, value)
    if field == "file_size":
        h.total_chunks = -(-h.file_size // h.chunk_size)
    [reply] = rx.on_header(0, h, 0.0)
    st = reply.message.control.file_status
    assert st.status == St.ERROR and why in st.message
    assert not out.exists() or list(out.iterdir()) == []
    assert (tmp_path.parent / ".ssh").exists() is False


def test_size_cap_is_configurable(tmp_path: Path) -> None:
    src = make_file(tmp_path, 5000)
    rx = FileReceiver(tmp_path / "out", Role.HOST, max_size=4096)
    tx = FileSender(src, 7, 0.0)
    [reply] = rx.on_header(0, tx.header().control.file_header, 0.0)
    assert reply.message.control.file_status.status == St.ERROR


def test_out_of_range_and_oversized_chunks_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for chunk in [
        rift_pb2.FileChunk(file_id=7, chunk_index=3, payload=b"x" * 500),
        rift_pb2.FileChunk(file_id=7, chunk_index=0, payload=b"x" * 1001),
        rift_pb2.FileChunk(file_id=7, chunk_index=2, payload=b"x" * 1000),  # last is 500
    ]:
        rx = FileReceiver(out, Role.HOST)
        h = rift_pb2.FileHeader(
            file_id=7, filename="ok.bin", file_size=2500, checksum_sha256="0" * 64,
            chunk_size=1000, total_chunks=3,
        )  # fmt: skip
        rx.on_header(0, h, 0.0)
        [reply] = rx.on_chunk(0, chunk, 0.1)
        assert reply.message.control.file_status.status == St.ERROR
        assert list(out.iterdir()) == []
    assert rx.on_chunk(0, rift_pb2.FileChunk(file_id=99, chunk_index=0), 0.2) == []
    assert rx.refused_chunks == 1


def test_pause_resume_cancel(tmp_path: Path) -> None:
    src = make_file(tmp_path, 300_000)
    out = tmp_path / "out"
    rx = FileReceiver(out, Role.HOST)
    tx = FileSender(src, 7, 0.0)
    tx.on_status(
        rx.on_header(0, tx.header().control.file_header, 0.0)[0].message.control.file_status, 0.0
    )
    for o in tx.poll(0.01, KBPS):
        rx.on_chunk(0, o.message.media.file_chunk, 0.01)
    [p] = tx.pause()
    rx.on_status(0, p.message.control.file_status, 0.01)
    assert tx.state is SenderState.PAUSED and tx.poll(0.5, KBPS) == []
    assert rx.poll(2.0) == []  # a paused transfer is not nagged
    [r] = tx.resume(2.0)
    rx.on_status(0, r.message.control.file_status, 2.0)
    assert tx.poll(2.01, KBPS)
    [c] = tx.cancel()
    rx.on_status(0, c.message.control.file_status, 2.02)
    assert tx.state is SenderState.CANCELLED
    assert list(out.iterdir()) == []
    [res] = rx.take_results()
    assert not res.ok


def test_empty_file_and_lost_verdict_recovered(tmp_path: Path) -> None:
    src = make_file(tmp_path, 0, "empty.txt")
    rx = FileReceiver(tmp_path / "out", Role.HOST)
    tx = FileSender(src, 7, 0.0)
    h = tx.header().control.file_header
    rx.on_header(0, h, 0.0)  # the COMPLETE is lost
    assert tx.poll(0.5, KBPS) == []
    [again] = tx.poll(1.0, KBPS)  # the header is repeated ...
    [verdict] = rx.on_header(0, again.message.control.file_header, 1.0)  # ... and answered
    tx.on_status(verdict.message.control.file_status, 1.0)
    assert tx.state is SenderState.COMPLETE
    assert (tmp_path / "out" / "empty.txt").read_bytes() == b""


def test_manager_routes_both_directions(tmp_path: Path) -> None:
    src = make_file(tmp_path, 50_000)
    host = FileTransfers(Role.HOST, FileReceiver(tmp_path / "h", Role.HOST))
    client = FileTransfers(Role.CLIENT, FileReceiver(tmp_path / "c", Role.CLIENT))
    _, q_h = host.send_file(src, 0.0)
    _, q_c = client.send_file(src, 0.0)
    t = 0.0
    while (host.sending or client.sending) and t < 10:
        for msgs, to in ((q_h, client), (q_c, host)):
            replies: list[Outgoing] = []
            for o in msgs:
                r = to.handle(o.message, t)
                assert r is not None
                replies.extend(r)
            msgs.clear()
            (q_c if to is client else q_h).extend(replies)
        t += 0.01
        q_h.extend(host.poll(t, KBPS))
        q_c.extend(client.poll(t, KBPS))
    assert (tmp_path / "h" / "data.bin").read_bytes() == src.read_bytes()
    assert (tmp_path / "c" / "data.bin").read_bytes() == src.read_bytes()
    assert host.handle(rift_pb2.Message(input=rift_pb2.InputMessage()), t) is None


def test_close_removes_incomplete_part_files(tmp_path: Path) -> None:
    src = make_file(tmp_path, 100_000)
    out = tmp_path / "out"
    rx = FileReceiver(out, Role.HOST)
    tx = FileSender(src, 7, 0.0)
    st = rx.on_header(0, tx.header().control.file_header, 0.0)[0].message.control.file_status
    tx.on_status(st, 0.0)
    for o in tx.poll(0.01, KBPS):
        rx.on_chunk(0, o.message.media.file_chunk, 0.01)
    assert [p.name for p in out.iterdir()] == ["data.bin.part"]
    rx.close()
    assert list(out.iterdir()) == []


def test_long_transfer_without_statuses_does_not_give_up(tmp_path: Path) -> None:
    src = make_file(tmp_path, 200_000)
    tx = FileSender(src, 7, 0.0)
    tx.on_status(St(file_id=7, status=St.IN_PROGRESS, message="next=0"), 0.0)
    t = 0.0
    while tx.state is SenderState.SENDING:  # 1 kB/s: ~200 s of sending, no status at all
        t += 0.5
        tx.poll(t, 8000 / 150)
    assert t > 60 and tx.state is SenderState.WAITING
    [repeat] = tx.poll(t + 29, 100)  # header repeated while waiting for the verdict
    assert repeat.message.control.HasField("file_header")
    assert tx.state is SenderState.WAITING
    tx.poll(t + 31, 100)
    assert tx.state is SenderState.FAILED and "stopped answering" in tx.message


def test_only_leaving_chunks_need_the_fast_tick(tmp_path: Path) -> None:
    """A host's files feature polls every 10 ms while chunks leave; a file that is offered or
    paused (headers repeat each second, a paused one waits for the receiver) only every 250 ms,
    and a resumed one gets the fast tick back at once."""
    from types import SimpleNamespace
    from typing import Any, cast

    from wavry.host.files import FILE_TICK_S, IDLE_TICK_S, FilesFeature

    clock = [100.0]
    link = SimpleNamespace(now=lambda: clock[0])
    rx_host = FileReceiver(tmp_path / "in", Role.HOST)
    feature = FilesFeature(
        cast(Any, link), lambda _t: None, rx_host, send_files=[], share=0.15, spare=False
    )
    assert feature.next_timer() is None  # nothing to transfer: no ticks at all
    ft = FileTransfers(Role.HOST, rx_host)
    feature.transfers[1] = ft
    tx, _ = ft.send_file(make_file(tmp_path, 300_000), clock[0])
    assert not ft.pacing and feature.next_timer() == pytest.approx(100.0 + IDLE_TICK_S)
    rx = FileReceiver(tmp_path / "out", Role.CLIENT)
    [accept] = rx.on_header(0, tx.header().control.file_header, clock[0])
    tx.on_status(accept.message.control.file_status, clock[0])
    assert ft.pacing and feature.next_timer() == pytest.approx(100.0 + FILE_TICK_S)  # pulled in
    clock[0] = 100.01
    feature._tick_at = None  # as on_timer leaves it
    tx.pause()
    assert not ft.pacing and feature.next_timer() == pytest.approx(100.01 + IDLE_TICK_S)
    tx.resume(100.02)
    clock[0] = 100.02
    assert feature.next_timer() == pytest.approx(100.02 + FILE_TICK_S)
