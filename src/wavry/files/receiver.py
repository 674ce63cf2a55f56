"""Receiving files over a RIFT session into a directory (protocol: transfer.py)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from wavry.files.common import (
    _SHA,
    ADOPT_IDLE_S,
    CLIPBOARD_FILENAME,
    CLIPBOARD_IDLE_S,
    DEFAULT_MAX_FILE_SIZE,
    DISK_RESERVE_BYTES,
    FINISHED_MEMORY,
    IDLE_TIMEOUT_S,
    MAX_CHUNK_SIZE,
    MAX_INCOMING,
    MIN_CHUNK_SIZE,
    RESUME_KEEP_S,
    STALL_S,
    WRITEBACK_BYTES,
    ChunkSet,
    Outgoing,
    Role,
    UnsafeFilename,
    _Status,
    _status,
    format_next,
    sanitize_filename,
)
from wavry.rift import rift_pb2


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
    have: ChunkSet
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

    @property
    def remaining_bytes(self) -> int:
        return max(0, self.size - self.received * self.chunk_size)

    def idle_limit(self) -> float:
        if self.clipboard:
            return CLIPBOARD_IDLE_S
        return RESUME_KEEP_S if self.paused or self.peer_gone else IDLE_TIMEOUT_S

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
        self.incoming: dict[tuple[int, int], _Incoming] = {}  # in progress (or paused)
        self._finished: OrderedDict[tuple[int, int], rift_pb2.Message] = OrderedDict()
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
        if self._busy():
            return [self._refuse(peer, h.file_id, "refused: too many transfers at once")]
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            # every transfer in progress will need its remaining bytes too (cumulative budget)
            promised = sum(t.remaining_bytes for t in self.incoming.values() if not t.clipboard)
            needed = h.file_size + promised + DISK_RESERVE_BYTES
            if self._free_space(self.out_dir) < needed:
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
            have=ChunkSet(h.total_chunks),
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
        if self._busy():  # clipboard text counts like any transfer (memory instead of disk)
            return [self._refuse(peer, h.file_id, "refused: too many transfers at once", True)]
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
            have=ChunkSet(h.total_chunks),
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
        if not MIN_CHUNK_SIZE <= h.chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(
                f"chunk size {h.chunk_size} outside {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE}"
            )
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
                # O_EXCL never follows or reuses a symlink planted under that name
                fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:
                continue
            return part, os.fdopen(fd, "r+b")
        raise OSError(0, "no free file name")

    def _busy(self) -> bool:
        return sum(1 for t in self.incoming.values() if not t.done) >= self.max_incoming

    def _remember(self, key: tuple[int, int], verdict: rift_pb2.Message) -> None:
        """The answer to repeated offers of a finished transfer (the last FINISHED_MEMORY)."""
        self._finished[key] = verdict
        self._finished.move_to_end(key)
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)

    def _refuse(self, peer: int, file_id: int, message: str, clipboard: bool = False) -> Outgoing:
        msg = _status(file_id, _Status.ERROR, message)
        self._remember((peer, file_id), msg)
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
        if c.chunk_index in t.have:
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
        t.have.add(c.chunk_index)
        t.received += 1
        while t.first_missing < t.total and t.first_missing in t.have:
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
            self._remember((peer, t.file_id), _status(t.file_id, _Status.ERROR, "cancelled"))
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
        """Ask again for missing chunks when nothing has arrived for a while; give up
        transfers idle for too long (``IDLE_TIMEOUT_S``, paused or orphaned ``RESUME_KEEP_S``,
        clipboard text ``CLIPBOARD_IDLE_S``)."""
        out: list[tuple[int, Outgoing]] = []
        for t in list(self.incoming.values()):
            if t.done:
                continue
            idle = now - t.last_chunk_at
            if idle >= t.idle_limit():
                reason = f"given up: nothing arrived for {idle:.0f} s"
                if t.peer_gone:
                    self._discard(t, reason)
                else:
                    out.extend((t.peer, o) for o in self._abort(t, reason))
                continue
            if t.paused or t.peer_gone:
                continue
            if now - t.last_chunk_at >= STALL_S and now - t.asked_at >= STALL_S:
                out.append((t.peer, Outgoing(self._ask(t, now))))
        return out

    def close(self) -> None:
        """The process ends: incomplete ``.part`` files are removed (resume needs this process)."""
        for t in list(self.incoming.values()):
            if not t.done:
                self._finish(t)
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
        self._finish(t)
        t.saved_as = final
        msg = _status(t.file_id, _Status.COMPLETE, f"saved as {final.name}")
        self._remember((t.peer, t.file_id), msg)
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
        self._finish(t)
        msg = _status(t.file_id, _Status.COMPLETE, "clipboard updated")
        self._remember((t.peer, t.file_id), msg)
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
                # fails if `final` exists (a symlink too): no overwrite, no race
                os.link(t.part, final, follow_symlinks=False)
            except FileExistsError:
                continue
            os.unlink(t.part)
            return final
        raise OSError(0, "no free file name")

    def _abort(self, t: _Incoming, reason: str) -> list[Outgoing]:
        self._discard(t, reason)
        msg = _status(t.file_id, _Status.ERROR, reason)
        self._remember((t.peer, t.file_id), msg)
        return [Outgoing(msg)]

    def _finish(self, t: _Incoming) -> None:
        """Done: forget it (its verdict is remembered for repeated offers)."""
        t.done = True
        if self.incoming.get((t.peer, t.file_id)) is t:
            del self.incoming[(t.peer, t.file_id)]

    def _discard(self, t: _Incoming, reason: str) -> None:
        self._finish(t)
        if t.handle is not None:
            t.handle.close()
            t.handle = None
        if not t.clipboard:
            with contextlib.suppress(OSError):
                t.part.unlink()
        self._results.append(ReceiveResult(t.peer, t.file_id, t.name, False, None, reason))
