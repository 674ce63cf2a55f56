"""File transfer over a RIFT session (sans-I/O except for the files themselves).

Protocol (see docs/files.md):

* the sender offers a file with ``FileHeader`` (priority lane) and waits;
* the receiver accepts with ``FileStatus{IN_PROGRESS, "next=<N>"}`` (send chunks from index N
  on; N > 0 when it resumes a partial file) or refuses with ``FileStatus{ERROR, "<reason>"}``;
* the sender sends ``FileChunk``s from N on, rate-limited to a floor of ``share`` × video
  bitrate plus the spare capacity the congestion signals allow (:class:`SpareCapacity`), on the
  bulk lane, which only sends while no video datagram is waiting;
* whenever the receiver misses chunks (a gap that transport repair did not fill) it asks again
  with ``IN_PROGRESS "next=<first missing>"``; the sender rewinds to that chunk;
* at the end the receiver verifies SHA-256 and answers ``COMPLETE "saved as <name>"`` or
  ``ERROR``; the file is written to ``<name>.part`` and renamed atomically, never overwriting;
* the sender may send ``PENDING "paused"``, ``IN_PROGRESS "resumed"`` and ``ERROR "cancelled"``;
* while waiting for an answer the sender repeats its ``FileHeader`` every second: the receiver
  answers a repeated header with its current status (this also recovers lost statuses).

File ids carry the role of the side that allocated them in the lowest bit (host: 0, client: 1),
so a ``FileStatus`` is unambiguous when both sides send files at once.

Clipboard text too large for one ``ClipboardMessage`` (docs/spec/RIFT.md §1: only video and file
chunks
are split) travels as a file named :data:`CLIPBOARD_FILENAME`; a receiver with a clipboard sink
keeps it in memory (≤ ``clipboard_max`` bytes, UTF-8) and hands it to the clipboard instead of
writing it to disk (docs/protocol-notes.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wavry.files.common import (  # re-exported: this is the module others import
    ADOPT_IDLE_S,
    BURST_S,
    CLEAN_LOSS,
    CLEAN_QUEUE_MS,
    CLIPBOARD_FILENAME,
    DEFAULT_CLIPBOARD_MAX,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_SHARE,
    FILE_TICK_S,
    GIVE_UP_S,
    HEADER_REPEAT_S,
    IDLE_TICK_S,
    MAX_CHUNK_SIZE,
    MAX_FILENAME_BYTES,
    MAX_INCOMING,
    SPARE_DECREASE,
    SPARE_GROWTH,
    SPARE_HOLD_S,
    SPARE_MAX_KBPS,
    SPARE_PROBE,
    SPARE_START_KBPS,
    SPARE_STEP_S,
    STALL_S,
    WRITEBACK_BYTES,
    Outgoing,
    Role,
    TransferError,
    UnsafeFilename,
    _Status,
    _status,
    default_download_dir,
    format_next,
    new_file_id,
    parse_next,
    sanitize_filename,
    sha256_file,
)
from wavry.files.receiver import FileReceiver, ReceiveResult
from wavry.files.sender import FileSender, SenderState, SpareCapacity
from wavry.rift import rift_pb2
from wavry.rift.chunking import DEFAULT_MAX_DATAGRAM_SIZE

__all__ = [
    "ADOPT_IDLE_S",
    "BURST_S",
    "CLEAN_LOSS",
    "CLEAN_QUEUE_MS",
    "CLIPBOARD_FILENAME",
    "DEFAULT_CLIPBOARD_MAX",
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_SHARE",
    "FILE_TICK_S",
    "GIVE_UP_S",
    "HEADER_REPEAT_S",
    "IDLE_TICK_S",
    "MAX_CHUNK_SIZE",
    "MAX_FILENAME_BYTES",
    "MAX_INCOMING",
    "SPARE_DECREASE",
    "SPARE_GROWTH",
    "SPARE_HOLD_S",
    "SPARE_MAX_KBPS",
    "SPARE_PROBE",
    "SPARE_START_KBPS",
    "SPARE_STEP_S",
    "STALL_S",
    "WRITEBACK_BYTES",
    "FileReceiver",
    "FileSender",
    "FileTransfers",
    "Outgoing",
    "ReceiveResult",
    "Role",
    "SenderState",
    "SpareCapacity",
    "TransferError",
    "UnsafeFilename",
    "_Status",
    "_status",
    "default_download_dir",
    "format_next",
    "new_file_id",
    "parse_next",
    "path_is_clean",
    "sanitize_filename",
    "sha256_file",
]


class FileTransfers:
    """Both directions for one side of one session: routes file messages, paces senders."""

    def __init__(
        self,
        role: Role,
        receiver: FileReceiver | None,
        *,
        share: float = DEFAULT_SHARE,
        max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
        peer: int = 0,
        spare: SpareCapacity | None = None,
    ) -> None:
        self.role = role
        self.receiver = receiver
        self.share = share
        self.max_datagram_size = max_datagram_size
        self.peer = peer
        self.senders: dict[int, FileSender] = {}
        self.spare = spare if spare is not None else SpareCapacity()
        self._rewinds = 0

    def send_file(
        self, path: Path, now: float, sha256: str | None = None
    ) -> tuple[FileSender, list[Outgoing]]:
        file_id = new_file_id(self.role)
        while file_id in self.senders:
            file_id = new_file_id(self.role)
        s = FileSender(
            path,
            file_id,
            now,
            share=self.share,
            max_datagram_size=self.max_datagram_size,
            sha256=sha256,
        )
        self.senders[file_id] = s
        return s, s.offer(now)

    def send_clipboard(self, text: str, now: float) -> tuple[FileSender, list[Outgoing]]:
        """Offer clipboard text too large for one ``ClipboardMessage`` as a
        :data:`CLIPBOARD_FILENAME` file (kept in memory on both sides)."""
        file_id = new_file_id(self.role)
        while file_id in self.senders:
            file_id = new_file_id(self.role)
        s = FileSender(
            Path(CLIPBOARD_FILENAME),
            file_id,
            now,
            share=self.share,
            max_datagram_size=self.max_datagram_size,
            name=CLIPBOARD_FILENAME,
            data=text.encode("utf-8"),
        )
        # a newer copy supersedes an unfinished older one; finished ones are forgotten (copies
        # can be frequent in a long session)
        out: list[Outgoing] = []
        for fid, old in list(self.senders.items()):
            if old.is_clipboard:
                if not old.done:
                    out += old.cancel("superseded by a newer clipboard copy")
                elif old.finished_at is not None and now - old.finished_at > 5.0:
                    del self.senders[fid]
        self.senders[file_id] = s
        return s, out + s.offer(now)

    def handle(self, msg: rift_pb2.Message, now: float) -> list[Outgoing] | None:
        """The replies to a file message, or None when ``msg`` is not about files."""
        kind = msg.WhichOneof("content")
        if kind == "media" and msg.media.WhichOneof("content") == "file_chunk":
            if self.receiver is None:
                return []
            return self.receiver.on_chunk(self.peer, msg.media.file_chunk, now)
        if kind != "control":
            return None
        which = msg.control.WhichOneof("content")
        if which == "file_header":
            h = msg.control.file_header
            if self.receiver is None:
                return [Outgoing(_status(h.file_id, _Status.ERROR, "refused: not accepting files"))]
            return self.receiver.on_header(self.peer, h, now)
        if which == "file_status":
            st = msg.control.file_status
            if st.file_id & 1 == int(self.role):
                sender = self.senders.get(st.file_id)
                return sender.on_status(st, now) if sender is not None else []
            if self.receiver is None:
                return []
            return self.receiver.on_status(self.peer, st, now)
        return None

    def poll(
        self, now: float, video_bitrate_kbps: float, path_clean: bool | None = None
    ) -> list[Outgoing]:
        """Due messages of every transfer. ``path_clean`` is the session's congestion signal for
        :class:`SpareCapacity` (None: no signal, files stay at the floor); a receiver asking for
        chunks again counts as congestion too."""
        out: list[Outgoing] = []
        rewinds = sum(s.rewinds for s in self.senders.values())
        if rewinds != self._rewinds:
            self._rewinds = rewinds
            self.spare.congested(now)
        spare = 0.0
        if path_clean is not None and self.sending:
            spare = self.spare.update(now, path_clean)
        elif not self.sending:
            self.spare.kbps = 0.0  # the next transfer probes the path afresh
        active = [s for s in self.senders.values() if s.state is SenderState.SENDING]
        share = spare / len(active) if active else 0.0
        for s in self.senders.values():
            out.extend(s.poll(now, video_bitrate_kbps, share))
        if self.receiver is not None:
            out.extend(o for peer, o in self.receiver.poll(now) if peer == self.peer)
        return out

    @property
    def sending(self) -> bool:
        return any(not s.done for s in self.senders.values())

    @property
    def pacing(self) -> bool:
        """A file's chunks are leaving (its token bucket needs the fast tick). Offered, waiting
        and paused senders only repeat headers and give up, on a slow tick; a paused one does
        nothing until the receiver resumes it."""
        return any(s.state is SenderState.SENDING for s in self.senders.values())


def path_is_clean(delta: Any) -> bool:
    """The congestion signal for :class:`SpareCapacity` from a session's DELTA controller
    (``wavry.rift.delta.DeltaController``): STABLE, queueing delay under ``CLEAN_QUEUE_MS`` and
    loss under ``CLEAN_LOSS``."""
    from wavry.rift.delta import DeltaState

    return bool(
        delta.state is DeltaState.STABLE
        and delta.queue_delay_ms < CLEAN_QUEUE_MS
        and delta.loss_fraction < CLEAN_LOSS
    )
