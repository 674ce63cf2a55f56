"""What a hostile peer's offers may cost the file receiver (docs/security.md, issue 21 item 6
"file receiver memory exhaustion", item 5 "Files"): chunk size range, one bit per chunk, every
transfer counted (clipboard text too), idle timeouts, a cumulative disk budget, finished
transfers forgotten, symlinks in the output directory, offsets beyond the file."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from wavry.files.common import (
    CLIPBOARD_FILENAME,
    CLIPBOARD_IDLE_S,
    DISK_RESERVE_BYTES,
    FINISHED_MEMORY,
    IDLE_TIMEOUT_S,
    MIN_CHUNK_SIZE,
    RESUME_KEEP_S,
)
from wavry.files.transfer import FileReceiver, FileSender, Role
from wavry.rift import rift_pb2

St = rift_pb2.FileStatus
HUGE_DISK = 1 << 50


def offer(file_id: int, size: int, chunk: int, name: str = "f.bin") -> rift_pb2.FileHeader:
    return rift_pb2.FileHeader(
        file_id=file_id, filename=name, file_size=size, checksum_sha256="0" * 64,
        chunk_size=chunk, total_chunks=-(-size // chunk),
    )  # fmt: skip


def status(out: list) -> rift_pb2.FileStatus:  # type: ignore[type-arg]
    return out[-1].message.control.file_status


@pytest.mark.parametrize("chunk", [1, 64, MIN_CHUNK_SIZE - 1, 65508])
def test_chunk_sizes_outside_the_range_are_refused(tmp_path: Path, chunk: int) -> None:
    rx = FileReceiver(tmp_path, Role.HOST, free_space=lambda _: HUGE_DISK)
    st = status(rx.on_header(0, offer(7, 10_000, chunk), 0.0))
    assert st.status == St.ERROR and "chunk size" in st.message
    assert list(tmp_path.iterdir()) == []


def test_a_huge_offer_costs_one_bit_per_chunk(tmp_path: Path) -> None:
    # The finding: a 1 GiB offer with chunk_size=1 took the receiver from 22 to 1,046 MiB.
    rx = FileReceiver(tmp_path, Role.HOST, free_space=lambda _: HUGE_DISK)
    size = 4 * 1024**3  # the largest file accepted by default, in the smallest chunks
    tracemalloc.start()
    try:
        st = status(rx.on_header(0, offer(7, size, MIN_CHUNK_SIZE), 0.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert st.status == St.IN_PROGRESS
    assert peak < 1.5 * size // MIN_CHUNK_SIZE // 8 + 200_000, peak  # ~1 MiB of bits


def test_clipboard_text_counts_against_max_incoming_and_expires(tmp_path: Path) -> None:
    # The finding: 300 unfinished clipboard-as-file offers bypassed max_incoming (+302 MiB).
    rx = FileReceiver(tmp_path, Role.HOST, clipboard_max=1 << 20, max_incoming=8)
    accepted = 0
    for i in range(300):
        h = offer(2 * i + 1, 1 << 20, 1200, CLIPBOARD_FILENAME)
        accepted += status(rx.on_header(0, h, 0.0)).status == St.IN_PROGRESS
    assert accepted == 8
    files = offer(1001, 5000, 1000)
    assert "too many" in status(rx.on_header(0, files, 0.0)).message  # files share the bound
    out = rx.poll(CLIPBOARD_IDLE_S + 0.1)
    given_up = [o for _, o in out if o.message.control.file_status.status == St.ERROR]
    assert len(given_up) == 8 and not rx.incoming
    assert status(rx.on_header(0, offer(1003, 5000, 1000), 40.0)).status == St.IN_PROGRESS


def test_idle_transfers_are_given_up_paused_ones_later(tmp_path: Path) -> None:
    rx = FileReceiver(tmp_path, Role.HOST)
    rx.on_header(0, offer(1, 5000, 1000, "a.bin"), 0.0)
    rx.on_header(0, offer(3, 5000, 1000, "b.bin"), 0.0)
    rx.on_status(0, rift_pb2.FileStatus(file_id=3, status=St.PENDING, message="paused"), 0.0)
    rx.poll(IDLE_TIMEOUT_S - 1)
    assert len(rx.incoming) == 2
    out = rx.poll(IDLE_TIMEOUT_S + 1)
    assert [o.message.control.file_status.file_id for _, o in out] == [1]
    assert [t.file_id for t in rx.incoming.values()] == [3]
    rx.poll(RESUME_KEEP_S + 1)
    assert not rx.incoming
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_disk_budget_counts_every_transfer_in_progress(tmp_path: Path) -> None:
    free = 10 * 1024**3
    rx = FileReceiver(tmp_path, Role.HOST, free_space=lambda _: free)
    size = 4 * 1024**3 - 1
    assert status(rx.on_header(0, offer(1, size, 1200, "a"), 0.0)).status == St.IN_PROGRESS
    assert status(rx.on_header(0, offer(3, size, 1200, "b"), 0.0)).status == St.IN_PROGRESS
    # each fits the free space alone; the third does not fit what the first two will need
    st = status(rx.on_header(0, offer(5, size, 1200, "c"), 0.0))
    assert st.status == St.ERROR and "disk space" in st.message
    assert free - 2 * size - DISK_RESERVE_BYTES < size


def test_finished_transfers_are_forgotten(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"z" * 3000)
    rx = FileReceiver(tmp_path / "out", Role.HOST)
    for n in range(FINISHED_MEMORY + 50):
        tx = FileSender(src, 2 * n + 1, 0.0)
        for o in rx.on_header(0, tx.header().control.file_header, 0.0):
            tx.on_status(o.message.control.file_status, 0.0)
        for o in tx.poll(1.0, 1e6):
            if o.bulk:
                rx.on_chunk(0, o.message.media.file_chunk, 1.0)
        for f in (tmp_path / "out").iterdir():
            f.unlink()
    assert not rx.incoming
    assert len(rx._finished) == FINISHED_MEMORY


def test_symlinks_in_the_output_directory_are_never_followed(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"keep me")
    (out / "doc.txt").symlink_to(victim)  # the final name
    (out / "doc.txt.part").symlink_to(outside / "planted")  # the part name
    data = b"hello " * 500
    src = tmp_path / "doc.txt"
    src.write_bytes(data)
    rx = FileReceiver(out, Role.HOST)
    tx = FileSender(src, 7, 0.0)
    for o in rx.on_header(0, tx.header().control.file_header, 0.0):
        tx.on_status(o.message.control.file_status, 0.0)
    results = []
    for o in tx.poll(1.0, 1e6):
        if o.bulk:
            results += rx.on_chunk(0, o.message.media.file_chunk, 1.0)
    assert status(results).status == St.COMPLETE
    assert victim.read_bytes() == b"keep me" and not (outside / "planted").exists()
    saved = out / "doc (1).txt"
    assert saved.read_bytes() == data and not saved.is_symlink()


def test_offsets_beyond_the_file(tmp_path: Path) -> None:
    rx = FileReceiver(tmp_path, Role.HOST)
    rx.on_header(0, offer(7, 2500, 1000), 0.0)
    bad = rift_pb2.FileChunk(file_id=7, chunk_index=2**32 - 1, payload=b"x" * 500)
    assert status(rx.on_chunk(0, bad, 0.1)).status == St.ERROR
    assert list(tmp_path.iterdir()) == []
    # a sender told to resume beyond the end of its file fails cleanly, sends nothing more
    src = tmp_path / "s.bin"
    src.write_bytes(os.urandom(3000))
    tx = FileSender(src, 8, 0.0)
    st = rift_pb2.FileStatus(file_id=8, status=St.IN_PROGRESS, message="next=999999")
    tx.on_status(st, 0.0)
    assert tx.done and not [o for o in tx.poll(1.0, 1e6) if o.bulk]
    assert hashlib.sha256(src.read_bytes()).hexdigest() == tx.sha256
