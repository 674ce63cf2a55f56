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

import contextlib
import enum
import hashlib
import io
import os
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from wavry.rift import rift_pb2
from wavry.rift.chunking import DEFAULT_MAX_DATAGRAM_SIZE, plan_file_chunks

__all__ = [
    "CLIPBOARD_FILENAME",
    "DEFAULT_CLIPBOARD_MAX",
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_SHARE",
    "FileReceiver",
    "FileSender",
    "FileTransfers",
    "Outgoing",
    "Role",
    "SenderState",
    "SpareCapacity",
    "TransferError",
    "UnsafeFilename",
    "default_download_dir",
    "format_next",
    "parse_next",
    "path_is_clean",
    "sanitize_filename",
    "sha256_file",
]

DEFAULT_MAX_FILE_SIZE = 4 * 1024**3
DEFAULT_SHARE = 0.15
CLIPBOARD_FILENAME = ".wavry-clipboard.txt"
"""Reserved offer name: the content is clipboard text (UTF-8), not a file for the disk."""
DEFAULT_CLIPBOARD_MAX = 1 << 20
WRITEBACK_BYTES = 16 << 20  # start writeback of received data every this many bytes
# Spare capacity for file data beyond the floor (see SpareCapacity)
SPARE_START_KBPS = 2_000.0
SPARE_GROWTH = 1.3  # per SPARE_STEP_S while the path is clean, below the last back-off
SPARE_PROBE = 1.05  # per SPARE_STEP_S above it
SPARE_DECREASE = 0.7  # on a congestion sign (at most once per SPARE_HOLD_S)
SPARE_STEP_S = 0.1
SPARE_HOLD_S = 0.3  # no growth (and no further decrease) for this long after a congestion sign
SPARE_MAX_KBPS = 800_000.0  # 100 MB/s: more than a loopback session's CPU can seal anyway
CLEAN_QUEUE_MS = 10.0  # DELTA's queueing-delay estimate below this: no standing queue
CLEAN_LOSS = 0.01
MAX_FILENAME_BYTES = 200
MAX_CHUNK_SIZE = 65507
MAX_INCOMING = 8
HEADER_REPEAT_S = 1.0
GIVE_UP_S = 30.0
STALL_S = 0.5
BURST_S = 0.02
ADOPT_IDLE_S = 2.0

_Status = rift_pb2.FileStatus
_NEXT = re.compile(r"^next=(0|[1-9][0-9]{0,9})$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class TransferError(Exception):
    """A file cannot be offered (missing, unreadable, too large)."""


class UnsafeFilename(ValueError):
    """An offered name that must be refused (path traversal, control characters, empty)."""


class Role(enum.IntEnum):
    HOST = 0
    CLIENT = 1


def format_next(index: int) -> str:
    return f"next={index}"


def parse_next(message: str) -> int | None:
    """The chunk index of an ``IN_PROGRESS`` status message ``next=<N>``; None if malformed."""
    m = _NEXT.match(message)
    return int(m.group(1)) if m else None


def sanitize_filename(name: str, max_bytes: int = MAX_FILENAME_BYTES) -> str:
    """A safe local file name for an offered name, or :class:`UnsafeFilename`.

    Refused outright: path separators (``/`` and ``\\``), ``..``, control characters, and names
    that are empty after cleaning. Cleaned: leading dots and spaces (no hidden files), trailing
    dots and spaces, and the length (capped at ``max_bytes`` UTF-8 bytes, extension kept).
    """
    if "/" in name or "\\" in name:
        raise UnsafeFilename("file name contains a path separator")
    if ".." in name:
        raise UnsafeFilename("file name contains '..'")
    if _CONTROL.search(name):
        raise UnsafeFilename("file name contains control characters")
    clean = name.lstrip(". ").rstrip(". ")
    if not clean:
        raise UnsafeFilename("file name is empty")
    if len(clean.encode()) > max_bytes:
        stem, dot, ext = clean.rpartition(".")
        if not dot or len(ext.encode()) > 16:
            stem, ext = clean, ""
        room = max_bytes - len(ext.encode()) - (1 if ext else 0)
        stem = stem.encode()[:room].decode(errors="ignore").rstrip(". ")
        clean = f"{stem}.{ext}" if ext else stem
        if not clean:
            raise UnsafeFilename("file name is empty")
    return clean


def default_download_dir() -> Path:
    """``$XDG_DOWNLOAD_DIR/wavry`` (from the environment or user-dirs.dirs), else
    ``~/Downloads/wavry``."""
    env = os.environ.get("XDG_DOWNLOAD_DIR")
    if not env:
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        with contextlib.suppress(OSError):
            for line in (config / "user-dirs.dirs").read_text().splitlines():
                if line.startswith("XDG_DOWNLOAD_DIR="):
                    env = (
                        line.split("=", 1)[1].strip().strip('"').replace("$HOME", str(Path.home()))
                    )
    base = Path(env) if env else Path.home() / "Downloads"
    return base / "wavry"


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file (blocking: run it in an executor for large files)."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _status(file_id: int, status: int, message: str) -> rift_pb2.Message:
    fs = rift_pb2.FileStatus(file_id=file_id, status=status, message=message)  # type: ignore[arg-type]
    return rift_pb2.Message(control=rift_pb2.ControlMessage(file_status=fs))


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: ``bulk`` ones (file chunks) go on the paced, rate-shared lane."""

    message: rift_pb2.Message
    bulk: bool = False


def new_file_id(role: Role) -> int:
    value = secrets.randbits(31) << 1 | int(role)
    return value if value > 1 else 2 | int(role)


class SpareCapacity:
    """How much *more* than the floor file data may use: a scavenger driven by congestion signals.

    The floor (``share`` × video bitrate, default 15 %) is always allowed, so a transfer never
    stops. On top of it, while the path looks clean (the caller's signal: the session's DELTA
    controller STABLE with no standing queue and no loss; on the client, whose uplink has no
    controller, no bitrate cut from the host and no RTT growth), the spare rate grows every
    ``SPARE_STEP_S``: ×``SPARE_GROWTH`` from ``SPARE_START_KBPS`` up to the rate of the last
    back-off ("slow start"), then ×``SPARE_PROBE`` above it, up to ``max_kbps``. A congestion
    sign — DELTA leaving STABLE, queueing delay or loss, the host lowering the video bitrate, RTT
    growth, or the receiver asking for chunks again (a gap) — cuts it by ×``SPARE_DECREASE`` (at
    most once per ``SPARE_HOLD_S``) and holds growth for ``SPARE_HOLD_S``: file data yields to
    video first,
    then probes again. ``enabled=False`` keeps files at the floor (the strict "share of the video
    bitrate" mode, ``--no-file-spare``).
    """

    def __init__(self, *, enabled: bool = True, max_kbps: float = SPARE_MAX_KBPS) -> None:
        self.enabled = enabled
        self.max_kbps = max_kbps
        self.kbps = 0.0
        self.threshold_kbps = max_kbps  # where slow start ends (last back-off)
        self._hold_until = 0.0
        self._step_at = 0.0
        self.backoffs = 0

    def update(self, now: float, clean: bool) -> float:
        """Feed the current path signal (call every tick); returns the spare rate in kbit/s."""
        if not self.enabled:
            self.kbps = 0.0
            return 0.0
        if not clean:
            self.congested(now)
        elif now >= self._hold_until and now >= self._step_at:
            self._step_at = now + SPARE_STEP_S
            growth = SPARE_GROWTH if self.kbps < self.threshold_kbps else SPARE_PROBE
            self.kbps = min(self.max_kbps, max(SPARE_START_KBPS, self.kbps * growth))
        return self.kbps

    def congested(self, now: float) -> None:
        """A congestion sign: cut the spare rate (once per hold period) and hold growth."""
        if now < self._hold_until:
            return
        if self.kbps > 0:
            self.backoffs += 1
        self.kbps = self.kbps * SPARE_DECREASE if self.kbps > 2 * SPARE_START_KBPS else 0.0
        self.threshold_kbps = max(self.kbps, SPARE_START_KBPS)
        self._hold_until = now + SPARE_HOLD_S


# ---------------------------------------------------------------------------- sending


class SenderState(enum.Enum):
    OFFERED = "offered"
    SENDING = "sending"
    PAUSED = "paused"
    WAITING = "waiting"  # every chunk sent; waiting for the receiver's verdict
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FileSender:
    """One outgoing file: offer, paced chunks, rewind on request, verdict.

    Chunks are read lazily from disk; at most ``share × video bitrate`` bytes per second
    leave (token bucket, ``BURST_S`` deep).
    """

    def __init__(
        self,
        path: Path,
        file_id: int,
        now: float,
        *,
        share: float = DEFAULT_SHARE,
        max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
        name: str | None = None,
        sha256: str | None = None,
        data: bytes | None = None,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.path = Path(path)
        self._data = data  # in-memory content (clipboard text); `path` is then only a label
        if data is None:
            try:
                st = self.path.stat()
            except OSError as exc:
                raise TransferError(f"cannot read {path}: {exc.strerror or exc}") from exc
            if not self.path.is_file():
                raise TransferError(f"{path} is not a regular file")
            size = st.st_size
        else:
            size = len(data)
            if sha256 is None:
                sha256 = hashlib.sha256(data).hexdigest()
        self.file_id = file_id
        self.size = size
        self.share = share
        plan = plan_file_chunks(file_id, self.size, max_datagram_size=max_datagram_size)
        self.plan = plan
        # hashing a large file takes seconds: runtimes pass a digest computed off the event loop
        self.sha256 = sha256 if sha256 is not None else sha256_file(self.path)
        self.name = name or self.path.name
        self.state = SenderState.OFFERED
        self.message = ""  # the receiver's last words (saved name or error)
        self.next_index = 0
        self.bytes_sent = 0
        self.highest_sent = 0  # chunks below this have left at least once
        self.rewinds = 0  # receiver asked for chunks already sent: a gap (a loss signal)
        self.started_at: float | None = None  # first chunk
        self.finished_at: float | None = None
        self._tokens = 0.0
        self._last_tick: float | None = None
        self._last_heard = now
        self._header_at = now  # header is sent by `offer()`
        self._file: BinaryIO | None = None

    # ---- state
    @property
    def done(self) -> bool:
        return self.state in (SenderState.COMPLETE, SenderState.FAILED, SenderState.CANCELLED)

    @property
    def progress(self) -> float:
        if self.plan.total_chunks == 0:
            return 1.0 if self.state is SenderState.COMPLETE else 0.0
        return min(1.0, self.highest_sent / self.plan.total_chunks)

    def header(self) -> rift_pb2.Message:
        h = rift_pb2.FileHeader(
            file_id=self.file_id,
            filename=self.name,
            file_size=self.size,
            checksum_sha256=self.sha256,
            chunk_size=self.plan.chunk_size,
            total_chunks=self.plan.total_chunks,
        )
        return rift_pb2.Message(control=rift_pb2.ControlMessage(file_header=h))

    def offer(self, now: float) -> list[Outgoing]:
        self._header_at = now
        self._last_heard = now
        return [Outgoing(self.header())]

    def reoffer(self, now: float) -> list[Outgoing]:
        """Offer again on a new session (the receiver resumes its partial file)."""
        if self.done:
            return []
        self.state = SenderState.OFFERED
        return self.offer(now)

    # ---- user actions
    def pause(self) -> list[Outgoing]:
        if self.state is not SenderState.SENDING:
            return []
        self.state = SenderState.PAUSED
        return [Outgoing(_status(self.file_id, _Status.PENDING, "paused"))]

    def resume(self, now: float) -> list[Outgoing]:
        if self.state is not SenderState.PAUSED:
            return []
        self.state = SenderState.SENDING
        self._last_tick = now
        self._last_heard = now
        return [Outgoing(_status(self.file_id, _Status.IN_PROGRESS, "resumed"))]

    def cancel(self, reason: str = "cancelled by sender") -> list[Outgoing]:
        if self.done:
            return []
        self._finish(SenderState.CANCELLED, reason)
        return [Outgoing(_status(self.file_id, _Status.ERROR, reason))]

    # ---- from the receiver
    def on_status(self, st: rift_pb2.FileStatus, now: float) -> list[Outgoing]:
        if self.done:
            return []
        self._last_heard = now
        if st.status == _Status.IN_PROGRESS:
            index = parse_next(st.message)
            if index is None or index > self.plan.total_chunks:
                self._finish(SenderState.FAILED, f"receiver sent a bad status {st.message!r}")
                return [Outgoing(_status(self.file_id, _Status.ERROR, "bad status"))]
            if index < self.next_index and self.state in (SenderState.SENDING, SenderState.WAITING):
                self.rewinds += 1
            self.next_index = index
            if self.state in (SenderState.OFFERED, SenderState.WAITING):
                self.state = SenderState.SENDING
                self._last_tick = now
        elif st.status == _Status.COMPLETE:
            self._finish(SenderState.COMPLETE, st.message)
        elif st.status == _Status.ERROR:
            self._finish(SenderState.FAILED, st.message or "refused by the receiver")
        return []

    # ---- time
    @property
    def is_clipboard(self) -> bool:
        return self.name == CLIPBOARD_FILENAME

    def poll(
        self, now: float, video_bitrate_kbps: float, spare_kbps: float = 0.0
    ) -> list[Outgoing]:
        """Chunks (and repeated headers) due at ``now``: at most ``share`` × video bitrate (the
        floor) + ``spare_kbps`` (see :class:`SpareCapacity`)."""
        if self.done:
            return []
        out: list[Outgoing] = []
        if self.state in (SenderState.OFFERED, SenderState.WAITING):
            if now - self._last_heard > GIVE_UP_S:
                self._finish(SenderState.FAILED, "the receiver stopped answering")
                return []
            if now - self._header_at >= HEADER_REPEAT_S:
                self._header_at = now
                out.append(Outgoing(self.header()))
            return out
        if self.state is not SenderState.SENDING:
            return out
        rate = (self.share * max(video_bitrate_kbps, 0.0) + max(spare_kbps, 0.0)) * 1000 / 8
        if self.started_at is None:
            self.started_at = now
        if self._last_tick is not None and now > self._last_tick:
            self._tokens += (now - self._last_tick) * rate
        self._last_tick = now
        self._tokens = min(self._tokens, max(rate * BURST_S, float(self.plan.chunk_size)))
        total = self.plan.total_chunks
        while self.next_index < total and self._tokens > 0:
            chunk = self._read_chunk(self.next_index)
            out.append(Outgoing(chunk, bulk=True))
            n = len(chunk.media.file_chunk.payload)
            self._tokens -= n
            self.bytes_sent += n
            self.next_index += 1
            self.highest_sent = max(self.highest_sent, self.next_index)
        if self.next_index >= total:
            self.state = SenderState.WAITING
            self._header_at = now
            self._last_heard = now  # the verdict is due from now on
            self._close_file()
        return out

    def _read_chunk(self, index: int) -> rift_pb2.Message:
        start, end = self.plan.chunk_range(index, self.size)
        if self._data is not None:
            data = self._data[start:end]
        else:
            if self._file is None:
                self._file = self.path.open("rb")
            self._file.seek(start)
            data = self._file.read(end - start)
        fc = rift_pb2.FileChunk(file_id=self.file_id, chunk_index=index, payload=data)
        return rift_pb2.Message(media=rift_pb2.MediaMessage(file_chunk=fc))

    def _finish(self, state: SenderState, message: str) -> None:
        self.state = state
        self.message = message
        self.finished_at = self._last_heard
        self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# ---------------------------------------------------------------------------- receiving


@dataclass(slots=True)
class _Incoming:
    peer: int
    file_id: int
    name: str  # sanitised offered name
    size: int
    sha256: str
    chunk_size: int
    total: int
    part: Path
    handle: BinaryIO | None
    have: bytearray
    received: int = 0
    first_missing: int = 0
    last_chunk_at: float = 0.0
    asked_at: float = -1e9
    paused: bool = False
    done: bool = False
    verdict: rift_pb2.Message | None = None
    saved_as: Path | None = None
    peer_gone: bool = False
    clipboard: bool = False  # kept in memory (handle is a BytesIO), handed to the clipboard
    digest: Any = None  # running SHA-256 of chunks [0, hashed)
    hashed: int = 0
    written_since_flush: int = 0

    def chunk_len(self, index: int) -> int:
        if index == self.total - 1:
            return self.size - index * self.chunk_size
        return self.chunk_size


@dataclass(frozen=True, slots=True)
class ReceiveResult:
    """A finished incoming transfer (for the runtime to report)."""

    peer: int
    file_id: int
    name: str
    ok: bool
    path: Path | None
    message: str
    text: str | None = None  # clipboard text (CLIPBOARD_FILENAME offers), never written to disk


class FileReceiver:
    """Incoming files from one or more peers into ``out_dir``.

    Every method returns the messages to send back to ``peer``. Finished transfers are
    reported through :meth:`take_results`.
    """

    def __init__(
        self,
        out_dir: Path,
        role: Role,
        *,
        max_size: int = DEFAULT_MAX_FILE_SIZE,
        max_incoming: int = MAX_INCOMING,
        free_space: Callable[[Path], int] | None = None,
        clipboard_max: int = 0,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.role = role
        self.max_size = max_size
        #: > 0: accept CLIPBOARD_FILENAME offers up to this many bytes into memory; 0: refuse them
        self.clipboard_max = clipboard_max
        self.max_incoming = max_incoming
        self._free_space = free_space or (lambda p: shutil.disk_usage(p).free)
        self.incoming: dict[tuple[int, int], _Incoming] = {}
        self._finished: dict[tuple[int, int], rift_pb2.Message] = {}
        self._results: list[ReceiveResult] = []
        self._notices: list[tuple[int, str]] = []
        self.refused_chunks = 0

    def take_results(self) -> list[ReceiveResult]:
        out, self._results = self._results, []
        return out

    def take_notices(self) -> list[tuple[int, str]]:
        """(peer, text) lines worth showing, e.g. a resumed transfer."""
        out, self._notices = self._notices, []
        return out

    # ---- offers
    def on_header(self, peer: int, h: rift_pb2.FileHeader, now: float) -> list[Outgoing]:
        key = (peer, h.file_id)
        if key in self._finished:
            return [Outgoing(self._finished[key])]
        cur = self.incoming.get(key)
        if cur is not None:  # a repeated offer: our current status
            return [Outgoing(self._ask(cur, now))]
        if h.filename == CLIPBOARD_FILENAME:
            return self._on_clipboard_header(peer, h, now)
        try:
            name = self._check_offer(h)
        except UnsafeFilename as exc:
            return [self._refuse(peer, h.file_id, f"refused: {exc}")]
        except ValueError as exc:
            return [self._refuse(peer, h.file_id, f"refused: {exc}")]
        resumed = self._adopt_partial(peer, h, name, now)
        if resumed is not None:
            resumed.last_chunk_at = now
            self._notices.append(
                (peer, f"resuming {name} from chunk {resumed.first_missing} of {resumed.total}")
            )
            return [Outgoing(self._ask(resumed, now))]
        if sum(1 for t in self.incoming.values() if not t.done) >= self.max_incoming:
            return [self._refuse(peer, h.file_id, "refused: too many transfers at once")]
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if self._free_space(self.out_dir) < h.file_size:
                return [self._refuse(peer, h.file_id, "refused: not enough free disk space")]
            part, handle = self._open_part(name)
        except OSError as exc:
            return [self._refuse(peer, h.file_id, f"refused: cannot write: {exc.strerror}")]
        t = _Incoming(
            peer=peer,
            file_id=h.file_id,
            name=name,
            size=h.file_size,
            sha256=h.checksum_sha256,
            chunk_size=h.chunk_size,
            total=h.total_chunks,
            part=part,
            handle=handle,
            have=bytearray(h.total_chunks),
            last_chunk_at=now,
        )
        self.incoming[key] = t
        if t.total == 0:
            return self._verify(t)
        return [Outgoing(self._ask(t, now))]

    def _on_clipboard_header(self, peer: int, h: rift_pb2.FileHeader, now: float) -> list[Outgoing]:
        """Clipboard text sent as a file: checked like any offer, kept in memory."""
        if self.clipboard_max <= 0:
            return [self._refuse(peer, h.file_id, "refused: clipboard sync is off here", True)]
        if h.file_size > self.clipboard_max:
            return [
                self._refuse(
                    peer,
                    h.file_id,
                    f"refused: clipboard text of {h.file_size} bytes is larger than the limit "
                    f"of {self.clipboard_max} bytes",
                    True,
                )
            ]
        try:
            self._check_offer(h, check_name=False)
        except ValueError as exc:
            return [self._refuse(peer, h.file_id, f"refused: {exc}", True)]
        t = _Incoming(
            peer=peer,
            file_id=h.file_id,
            name=CLIPBOARD_FILENAME,
            size=h.file_size,
            sha256=h.checksum_sha256,
            chunk_size=h.chunk_size,
            total=h.total_chunks,
            part=Path(CLIPBOARD_FILENAME),
            handle=io.BytesIO(),
            have=bytearray(h.total_chunks),
            last_chunk_at=now,
            clipboard=True,
        )
        self.incoming[(peer, h.file_id)] = t
        if t.total == 0:
            return self._verify(t)
        return [Outgoing(self._ask(t, now))]

    def _check_offer(self, h: rift_pb2.FileHeader, check_name: bool = True) -> str:
        if h.file_id & 1 == int(self.role):
            raise ValueError("file id of the wrong role")
        name = sanitize_filename(h.filename) if check_name else h.filename
        if check_name and h.file_size > self.max_size:
            raise ValueError(
                f"file of {h.file_size} bytes is larger than the limit of {self.max_size} bytes"
            )
        if not _SHA.match(h.checksum_sha256):
            raise ValueError("checksum is not a SHA-256 hex digest")
        if not 1 <= h.chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size {h.chunk_size} outside 1..{MAX_CHUNK_SIZE}")
        if h.total_chunks != -(-h.file_size // h.chunk_size):
            raise ValueError("total_chunks does not match file_size / chunk_size")
        return name

    def _adopt_partial(
        self, peer: int, h: rift_pb2.FileHeader, name: str, now: float
    ) -> _Incoming | None:
        """A partial file of an earlier session with the same content: continue it (its session
        ended, or nothing arrived for it for ``ADOPT_IDLE_S``: a reconnect that the old session
        has not noticed yet)."""
        for key, t in list(self.incoming.items()):
            if (
                not t.done
                and (t.peer_gone or now - t.last_chunk_at >= ADOPT_IDLE_S)
                and (t.name, t.size, t.sha256, t.chunk_size) == (name, h.file_size,
                                                                  h.checksum_sha256, h.chunk_size)
            ):  # fmt: skip
                del self.incoming[key]
                t.peer, t.file_id, t.peer_gone, t.paused = peer, h.file_id, False, False
                self.incoming[(peer, h.file_id)] = t
                return t
        return None

    def _open_part(self, name: str) -> tuple[Path, BinaryIO]:
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, ext = name, ""
        for n in range(1000):
            base = name if n == 0 else (f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})")
            part = self.out_dir / f"{base}.part"
            if (self.out_dir / base).exists():
                continue
            try:
                fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            return part, os.fdopen(fd, "r+b")
        raise OSError(0, "no free file name")

    def _refuse(self, peer: int, file_id: int, message: str, clipboard: bool = False) -> Outgoing:
        msg = _status(file_id, _Status.ERROR, message)
        self._finished[(peer, file_id)] = msg
        name = CLIPBOARD_FILENAME if clipboard else ""
        self._results.append(ReceiveResult(peer, file_id, name, False, None, message))
        return Outgoing(msg)

    def _ask(self, t: _Incoming, now: float) -> rift_pb2.Message:
        t.asked_at = now
        return _status(t.file_id, _Status.IN_PROGRESS, format_next(t.first_missing))

    # ---- chunks
    def on_chunk(self, peer: int, c: rift_pb2.FileChunk, now: float) -> list[Outgoing]:
        t = self.incoming.get((peer, c.file_id))
        if t is None or t.done:
            self.refused_chunks += 1
            return []
        if c.chunk_index >= t.total:
            return self._abort(t, f"chunk {c.chunk_index} is out of range (0..{t.total - 1})")
        if len(c.payload) != t.chunk_len(c.chunk_index):
            return self._abort(
                t,
                f"chunk {c.chunk_index} has {len(c.payload)} bytes, "
                f"expected {t.chunk_len(c.chunk_index)}",
            )
        t.last_chunk_at = now
        out: list[Outgoing] = []
        if t.have[c.chunk_index]:
            # a duplicate after a rewind: skip the sender past what is already here
            if t.first_missing > c.chunk_index + 1 and now - t.asked_at >= 0.02:
                out.append(Outgoing(self._ask(t, now)))
            return out
        assert t.handle is not None
        try:
            t.handle.seek(c.chunk_index * t.chunk_size)
            t.handle.write(c.payload)
        except OSError as exc:
            return self._abort(t, f"cannot write: {exc.strerror}")
        t.have[c.chunk_index] = 1
        t.received += 1
        while t.first_missing < t.total and t.have[t.first_missing]:
            t.first_missing += 1
        try:
            self._hash_ahead(t, c.chunk_index, c.payload)
        except OSError as exc:
            return self._abort(t, f"cannot read back: {exc.strerror}")
        if t.received == t.total:
            return self._verify(t)
        if c.chunk_index == t.total - 1 and now - t.asked_at >= STALL_S:
            out.append(Outgoing(self._ask(t, now)))  # the tail arrived with gaps before it
        return out

    def on_status(self, peer: int, st: rift_pb2.FileStatus, now: float) -> list[Outgoing]:
        """Pause / resume / cancel from the sender."""
        t = self.incoming.get((peer, st.file_id))
        if t is None or t.done:
            return []
        if st.status == _Status.PENDING:
            t.paused = True
        elif st.status == _Status.IN_PROGRESS:
            t.paused = False
            t.last_chunk_at = now
        elif st.status == _Status.ERROR:
            self._discard(t, st.message or "cancelled by the sender")
            self._finished[(peer, t.file_id)] = _status(t.file_id, _Status.ERROR, "cancelled")
        return []

    def cancel(
        self, peer: int, file_id: int, reason: str = "cancelled by receiver"
    ) -> list[Outgoing]:
        t = self.incoming.get((peer, file_id))
        if t is None or t.done:
            return []
        return self._abort(t, reason)

    def peer_gone(self, peer: int) -> None:
        """The session ended: keep partial files for a later offer of the same content."""
        for t in self.incoming.values():
            if t.peer == peer and not t.done:
                t.peer_gone = True
                t.paused = True

    def poll(self, now: float) -> list[tuple[int, Outgoing]]:
        """Ask again for missing chunks when nothing has arrived for a while."""
        out: list[tuple[int, Outgoing]] = []
        for t in self.incoming.values():
            if t.done or t.paused or t.peer_gone:
                continue
            if now - t.last_chunk_at >= STALL_S and now - t.asked_at >= STALL_S:
                out.append((t.peer, Outgoing(self._ask(t, now))))
        return out

    def close(self) -> None:
        """The process ends: incomplete ``.part`` files are removed (resume needs this process)."""
        for t in self.incoming.values():
            if not t.done:
                t.done = True
                if t.handle is not None:
                    t.handle.close()
                    t.handle = None
                if not t.clipboard:
                    with contextlib.suppress(OSError):
                        t.part.unlink()

    def _hash_ahead(self, t: _Incoming, index: int, payload: bytes) -> None:
        """Keep a running SHA-256 over the contiguous prefix, so the final check needs no read
        back of a large file (which would block the event loop for seconds); chunks that arrived
        out of order are read back from the part file when the prefix reaches them. Also starts
        writeback of what is written every ``WRITEBACK_BYTES`` so the final fsync is short."""
        assert t.handle is not None
        if t.digest is None:
            t.digest = hashlib.sha256()
        while t.hashed < t.first_missing:
            if t.hashed == index:
                t.digest.update(payload)
            else:
                t.handle.seek(t.hashed * t.chunk_size)
                t.digest.update(t.handle.read(t.chunk_len(t.hashed)))
            t.hashed += 1
        t.written_since_flush += len(payload)
        if not t.clipboard and t.written_since_flush >= WRITEBACK_BYTES:
            t.written_since_flush = 0
            with contextlib.suppress(OSError, AttributeError):
                t.handle.flush()
                os.posix_fadvise(t.handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)

    # ---- the end
    def _verify(self, t: _Incoming) -> list[Outgoing]:
        assert t.handle is not None
        try:
            t.handle.flush()
            if not t.clipboard:
                os.fsync(t.handle.fileno())
            digest = t.digest if t.digest is not None else hashlib.sha256()
            while t.hashed < t.total:  # normally nothing left: hashed as chunks arrived
                t.handle.seek(t.hashed * t.chunk_size)
                digest.update(t.handle.read(t.chunk_len(t.hashed)))
                t.hashed += 1
        except OSError as exc:
            return self._abort(t, f"cannot read back: {exc.strerror}")
        if digest.hexdigest() != t.sha256:
            return self._abort(t, "SHA-256 mismatch: the received file is corrupt")
        if t.clipboard:
            return self._deliver_clipboard(t)
        t.handle.close()
        t.handle = None
        try:
            final = self._publish(t)
        except OSError as exc:
            return self._abort(t, f"cannot save: {exc.strerror}")
        t.done = True
        t.saved_as = final
        msg = _status(t.file_id, _Status.COMPLETE, f"saved as {final.name}")
        self._finished[(t.peer, t.file_id)] = msg
        self._results.append(ReceiveResult(t.peer, t.file_id, t.name, True, final, "saved"))
        return [Outgoing(msg)]

    def _deliver_clipboard(self, t: _Incoming) -> list[Outgoing]:
        assert isinstance(t.handle, io.BytesIO)
        raw = t.handle.getvalue()
        t.handle = None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self._abort(t, "refused: clipboard text is not valid UTF-8")
        t.done = True
        msg = _status(t.file_id, _Status.COMPLETE, "clipboard updated")
        self._finished[(t.peer, t.file_id)] = msg
        self._results.append(
            ReceiveResult(t.peer, t.file_id, t.name, True, None, "clipboard", text=text)
        )
        return [Outgoing(msg)]

    def _publish(self, t: _Incoming) -> Path:
        """Rename ``X.part`` to ``X`` (or ``X (n)``) atomically, never replacing a file."""
        name = t.part.name.removesuffix(".part")
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, ext = name, ""
        for n in range(1000):
            base = name if n == 0 else (f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})")
            final = self.out_dir / base
            try:
                os.link(t.part, final)  # fails if `final` exists: no overwrite, no race
            except FileExistsError:
                continue
            os.unlink(t.part)
            return final
        raise OSError(0, "no free file name")

    def _abort(self, t: _Incoming, reason: str) -> list[Outgoing]:
        self._discard(t, reason)
        msg = _status(t.file_id, _Status.ERROR, reason)
        self._finished[(t.peer, t.file_id)] = msg
        return [Outgoing(msg)]

    def _discard(self, t: _Incoming, reason: str) -> None:
        t.done = True
        if t.handle is not None:
            t.handle.close()
            t.handle = None
        if not t.clipboard:
            with contextlib.suppress(OSError):
                t.part.unlink()
        self._results.append(ReceiveResult(t.peer, t.file_id, t.name, False, None, reason))


# ---------------------------------------------------------------------------- both


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
