"""Sending one file over a RIFT session (protocol: transfer.py)."""

from __future__ import annotations

import enum
import hashlib
from pathlib import Path
from typing import BinaryIO

from wavry.files.common import (
    BURST_S,
    CLIPBOARD_FILENAME,
    DEFAULT_SHARE,
    GIVE_UP_S,
    HEADER_REPEAT_S,
    SPARE_DECREASE,
    SPARE_GROWTH,
    SPARE_HOLD_S,
    SPARE_MAX_KBPS,
    SPARE_PROBE,
    SPARE_START_KBPS,
    SPARE_STEP_S,
    Outgoing,
    TransferError,
    _Status,
    _status,
    parse_next,
    sha256_file,
)
from wavry.rift import rift_pb2
from wavry.rift.chunking import DEFAULT_MAX_DATAGRAM_SIZE, plan_file_chunks


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
