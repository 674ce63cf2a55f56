"""File transfer over a RIFT session (sans-I/O except for the files themselves).

Protocol (see docs/files.md):

* the sender offers a file with ``FileHeader`` (priority lane) and waits;
* the receiver accepts with ``FileStatus{IN_PROGRESS, "next=<N>"}`` (send chunks from index N
  on; N > 0 when it resumes a partial file) or refuses with ``FileStatus{ERROR, "<reason>"}``;
* the sender sends ``FileChunk``s from N on, paced to a share of the video bitrate (bulk lane);
* whenever the receiver misses chunks (a gap that transport repair did not fill) it asks again
  with ``IN_PROGRESS "next=<first missing>"``; the sender rewinds to that chunk;
* at the end the receiver verifies SHA-256 and answers ``COMPLETE "saved as <name>"`` or
  ``ERROR``; the file is written to ``<name>.part`` and renamed atomically, never overwriting;
* the sender may send ``PENDING "paused"``, ``IN_PROGRESS "resumed"`` and ``ERROR "cancelled"``;
* while waiting for an answer the sender repeats its ``FileHeader`` every second: the receiver
  answers a repeated header with its current status (this also recovers lost statuses).

File ids carry the role of the side that allocated them in the lowest bit (host: 0, client: 1),
so a ``FileStatus`` is unambiguous when both sides send files at once.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from wavry.rift import rift_pb2
from wavry.rift.chunking import DEFAULT_MAX_DATAGRAM_SIZE, plan_file_chunks

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_SHARE",
    "FileReceiver",
    "FileSender",
    "FileTransfers",
    "Outgoing",
    "Role",
    "SenderState",
    "TransferError",
    "UnsafeFilename",
    "default_download_dir",
    "format_next",
    "parse_next",
    "sanitize_filename",
    "sha256_file",
]

DEFAULT_MAX_FILE_SIZE = 4 * 1024**3
DEFAULT_SHARE = 0.15
MAX_FILENAME_BYTES = 200
MAX_CHUNK_SIZE = 65507
MAX_INCOMING = 8
HEADER_REPEAT_S = 1.0
GIVE_UP_S = 30.0
STALL_S = 0.5
BURST_S = 0.05
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
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.path = Path(path)
        try:
            st = self.path.stat()
        except OSError as exc:
            raise TransferError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if not self.path.is_file():
            raise TransferError(f"{path} is not a regular file")
        self.file_id = file_id
        self.size = st.st_size
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
    def poll(self, now: float, video_bitrate_kbps: float) -> list[Outgoing]:
        """Chunks (and repeated headers) due at ``now``."""
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
        rate = self.share * max(video_bitrate_kbps, 0.0) * 1000 / 8  # bytes per second
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
        if self._file is None:
            self._file = self.path.open("rb")
        start, end = self.plan.chunk_range(index, self.size)
        self._file.seek(start)
        data = self._file.read(end - start)
        fc = rift_pb2.FileChunk(file_id=self.file_id, chunk_index=index, payload=data)
        return rift_pb2.Message(media=rift_pb2.MediaMessage(file_chunk=fc))

    def _finish(self, state: SenderState, message: str) -> None:
        self.state = state
        self.message = message
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
    ) -> None:
        self.out_dir = Path(out_dir)
        self.role = role
        self.max_size = max_size
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

    def _check_offer(self, h: rift_pb2.FileHeader) -> str:
        if h.file_id & 1 == int(self.role):
            raise ValueError("file id of the wrong role")
        name = sanitize_filename(h.filename)
        if h.file_size > self.max_size:
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

    def _refuse(self, peer: int, file_id: int, message: str) -> Outgoing:
        msg = _status(file_id, _Status.ERROR, message)
        self._finished[(peer, file_id)] = msg
        self._results.append(ReceiveResult(peer, file_id, "", False, None, message))
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
                with contextlib.suppress(OSError):
                    t.part.unlink()

    # ---- the end
    def _verify(self, t: _Incoming) -> list[Outgoing]:
        assert t.handle is not None
        try:
            t.handle.flush()
            os.fsync(t.handle.fileno())
            t.handle.seek(0)
            digest = hashlib.sha256()
            while block := t.handle.read(1 << 20):
                digest.update(block)
        except OSError as exc:
            return self._abort(t, f"cannot read back: {exc.strerror}")
        if digest.hexdigest() != t.sha256:
            return self._abort(t, "SHA-256 mismatch: the received file is corrupt")
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
    ) -> None:
        self.role = role
        self.receiver = receiver
        self.share = share
        self.max_datagram_size = max_datagram_size
        self.peer = peer
        self.senders: dict[int, FileSender] = {}

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

    def poll(self, now: float, video_bitrate_kbps: float) -> list[Outgoing]:
        out: list[Outgoing] = []
        for s in self.senders.values():
            out.extend(s.poll(now, video_bitrate_kbps))
        if self.receiver is not None:
            out.extend(o for peer, o in self.receiver.poll(now) if peer == self.peer)
        return out

    @property
    def sending(self) -> bool:
        return any(not s.done for s in self.senders.values())
