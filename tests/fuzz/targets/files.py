"""File offers, statuses and chunks (docs/files.md) against both sides of a transfer: a
receiver with a real output directory and a sender with a real file. Input: a sequence of
records (a 2-byte length, then a serialized rift.Message)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from google.protobuf.message import DecodeError

from wavry.files.transfer import FileReceiver, FileTransfers, Role
from wavry.rift import rift_pb2

_ROOT = Path(tempfile.mkdtemp(prefix="wavry-fuzz-files-"))
_SRC = _ROOT / "src.bin"
_SRC.write_bytes(bytes(range(256)) * 20)


def seeds() -> list[bytes]:
    c, m = rift_pb2.ControlMessage, rift_pb2.Message
    msgs = [
        m(control=c(file_header=rift_pb2.FileHeader(
            file_id=3, filename="a.txt", file_size=2000, checksum_sha256="0" * 64,
            chunk_size=1000, total_chunks=2))),
        m(media=rift_pb2.MediaMessage(file_chunk=rift_pb2.FileChunk(
            file_id=3, chunk_index=0, payload=b"x" * 1000))),
        m(control=c(file_status=rift_pb2.FileStatus(file_id=3, status=1, message="next=1"))),
        m(control=c(file_status=rift_pb2.FileStatus(file_id=2, status=1, message="next=0"))),
        m(control=c(file_header=rift_pb2.FileHeader(
            file_id=5, filename=".wavry-clipboard.txt", file_size=5,
            checksum_sha256="0" * 64, chunk_size=1000, total_chunks=1))),
    ]  # fmt: skip
    out = b""
    for msg in msgs:
        raw = msg.SerializeToString()
        out += len(raw).to_bytes(2, "big") + raw
    return [out]


def test_one_input(data: bytes) -> None:
    out_dir = _ROOT / "out"
    shutil.rmtree(out_dir, ignore_errors=True)
    rx = FileReceiver(out_dir, Role.HOST, clipboard_max=4096, free_space=lambda _: 1 << 40)
    ft = FileTransfers(Role.HOST, rx)
    sender, _ = ft.send_file(_SRC, 0.0)
    sender.file_id = 2  # a known id the input can address
    ft.senders = {2: sender}
    i, now = 0, 0.0
    while i + 2 <= len(data):
        n = int.from_bytes(data[i : i + 2], "big")
        raw = data[i + 2 : i + 2 + n]
        i += 2 + n
        now += 0.25
        msg = rift_pb2.Message()
        try:
            msg.ParseFromString(raw)
        except DecodeError:
            continue
        ft.handle(msg, now)
        ft.poll(now, 8000.0)
    rx.close()
    for p in out_dir.rglob("*") if out_dir.exists() else ():
        assert p.parent == out_dir and not p.is_symlink(), p  # nothing outside, no links
