"""The files feature: ``--send-file`` and dropped files to the host, files and large clipboard
text from it, pause/resume/cancel, and when file data yields to video.

The client has no congestion controller of its own for the uplink; :class:`FileCongestionSigns`
(pure, fake-clock tested) turns what it sees into the "path clean" signal ``FileTransfers``
wants: the host cutting the video bitrate (often the files' own doing on a shared CPU or link:
docs/benchmarks.md shows video on-time falling from 0.99 to 0.81 when it is ignored) and the
Ping RTT growing ``rtt_backoff_ms`` above its minimum; chunk gaps count inside FileTransfers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavry.files.transfer import (
    CLIPBOARD_FILENAME,
    FILE_TICK_S,
    IDLE_TICK_S,
    FileReceiver,
    FileSender,
    FileTransfers,
    Outgoing,
    Role,
    SenderState,
    SpareCapacity,
    TransferError,
    default_download_dir,
    sha256_file,
)
from wavry.rift import rift_pb2
from wavry.runtime.features import Feature, PeerInfo
from wavry.runtime.messages import AppEvent, FileMessage

__all__ = ["FileCongestionSigns", "FilesFeature"]


@dataclass(slots=True)
class FileCongestionSigns:
    """Congestion signs for client → host file data; ``clean(now)`` once none for ``quiet_s``."""

    rtt_backoff_ms: float = 50.0
    quiet_s: float = 0.3
    backoff_on_bitrate_cut: bool = True
    min_rtt_ms: float = float("inf")
    last_sign_at: float = -1e9
    counts: dict[str, int] = field(default_factory=lambda: {"bitrate cut": 0, "rtt": 0})
    _target_kbps: int | None = None

    def on_rtt(self, rtt_ms: float, now: float) -> None:
        self.min_rtt_ms = min(self.min_rtt_ms, rtt_ms)
        if rtt_ms > self.min_rtt_ms + self.rtt_backoff_ms:  # a queue (or a busy host)
            self.last_sign_at = now
            self.counts["rtt"] += 1

    def on_target(self, kbps: int, now: float) -> None:
        old = self._target_kbps
        if old is not None and kbps < 0.9 * old:
            if self.backoff_on_bitrate_cut:
                self.last_sign_at = now
            self.counts["bitrate cut"] += 1
        self._target_kbps = kbps

    def clean(self, now: float) -> bool:
        return now - self.last_sign_at >= self.quiet_s


class FilesFeature(Feature):
    name = "files"
    handles = (FileMessage,)

    def __init__(
        self,
        *,
        out_dir: Path | None,
        max_size: int,
        share: float,
        spare: bool,
        max_datagram: int,
        send_message: Callable[[rift_pb2.Message], None],
        send_bulk: Callable[[rift_pb2.Message], None],
        flush: Callable[[], None],
        say: Callable[[str], None],
        bitrate_kbps: Callable[[], int],
        on_clipboard: Callable[[str], None],
        send_files: list[Path] | None = None,
    ) -> None:
        receiver = FileReceiver(out_dir or default_download_dir(), Role.CLIENT, max_size=max_size)
        self.files = FileTransfers(
            Role.CLIENT,
            receiver,
            share=share,
            max_datagram_size=max_datagram,
            spare=SpareCapacity(enabled=spare),
        )
        self._send_message = send_message
        self._send_bulk = send_bulk
        self._flush = flush
        self._say = say
        self._bitrate = bitrate_kbps
        self._on_clipboard = on_clipboard
        self.signs = FileCongestionSigns()
        self.failed = 0
        self.to_send = list(send_files or [])
        self.offering = bool(self.to_send)
        self._reported: set[int] = set()
        self._progress_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._now = 0.0
        self._next = 0.0

    @property
    def receiver(self) -> FileReceiver:
        assert self.files.receiver is not None
        return self.files.receiver

    @property
    def busy(self) -> bool:
        """Outgoing files still offered or sending."""
        return self.offering or self.files.sending

    # ---- sending ----------------------------------------------------------------------

    def _out(self, out: list[Outgoing]) -> None:
        for o in out:
            try:
                if o.bulk:
                    self._send_bulk(o.message)
                else:
                    self._send_message(o.message)
            except RuntimeError:  # the session is being re-established
                return
        self._flush()

    def start_offers(self) -> None:
        """Offer every ``--send-file`` (hashed in a thread: the loop keeps receiving video)."""
        self._spawn(self._offer_all())

    async def _offer_all(self) -> None:
        try:
            for path in self.to_send:
                await self._offer(path, f"cannot send {path}", "")
        finally:
            self.offering = False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _offer(self, path: Path, failed: str, how: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            digest = await loop.run_in_executor(None, sha256_file, path)
            sender, out = self.files.send_file(path, self._now, digest)
        except TransferError as exc:
            self._say(f"{failed}: {exc}")
            self.failed += 1
            return
        self._say(f"offering {sender.name} ({sender.size} bytes) to the host{how}")
        self._out(out)

    def send_dropped(self, path: Path) -> None:
        """A file dropped on the window: offered like a --send-file."""
        self._spawn(
            self._offer(path, f"cannot send dropped file {path}", " (dropped on the window)")
        )

    def send_clipboard(self, text: str) -> None:
        """Clipboard text too large for one datagram: the reserved file name."""
        try:
            _sender, out = self.files.send_clipboard(text, self._now)
        except (TransferError, ValueError):
            return
        self._out(out)

    def toggle_pause(self) -> None:
        """Pause every outgoing transfer that is sending; if none is, resume the paused ones."""
        active = [s for s in self.files.senders.values() if s.state is SenderState.SENDING]
        out: list[Outgoing] = []
        if active:
            for s in active:
                out += s.pause()
            self._say(f"paused {len(active)} file transfer(s) (Ctrl+Alt+Shift+P resumes)")
        else:
            paused = [s for s in self.files.senders.values() if s.state is SenderState.PAUSED]
            for s in paused:
                out += s.resume(self._now)
            if paused:
                self._say(f"resumed {len(paused)} file transfer(s)")
        self._out(out)

    def cancel(self) -> None:
        """Cancel every outgoing transfer that has not finished (the host drops the .part)."""
        cancelled = [s for s in self.files.senders.values() if not s.done]
        out: list[Outgoing] = []
        for s in cancelled:
            out += s.cancel("cancelled by the user")
        if cancelled:
            self._say(f"cancelled {len(cancelled)} file transfer(s)")
        self._out(out)

    def overlay_lines(self) -> list[str]:
        return [
            f"sending {s.name}: {s.progress * 100:.0f} %"
            for s in self.files.senders.values()
            if not s.done and not s.is_clipboard
        ]

    def _report(self, s: FileSender) -> None:
        if s.file_id in self._reported:
            return
        self._reported.add(s.file_id)
        if s.is_clipboard:
            if s.state is not SenderState.COMPLETE:
                self._say(f"clipboard ({s.size} bytes) not synced: {s.message}")
            return
        if s.state is SenderState.COMPLETE:
            self._say(f"sent {s.name}: 100 %, host {s.message}")
        else:
            self.failed += 1
            self._say(f"sending {s.name} failed: {s.message}")

    # ---- feature lifecycle --------------------------------------------------------------

    def on_event(self, peer: int, event: AppEvent, now: float) -> bool:
        assert isinstance(event, FileMessage)
        self._now = now
        replies = self.files.handle(event.message, now)
        if replies is None:
            return False
        if replies:
            self._out(replies)
        self._next = now  # a transfer moves: tick soon
        return True

    def on_accepted(self, peer: PeerInfo, now: float) -> None:
        self._now = now
        if not peer.extra.get("reconnected"):
            return
        self.receiver.peer_gone(0)  # the host's offers continue as new transfers
        for s in self.files.senders.values():  # resume: the host keeps our partial files
            self._out(s.reoffer(now))

    def next_timer(self) -> float | None:
        return self._next

    def on_timer(self, now: float) -> None:
        self._now = now
        active = self.files.pacing or self.offering  # paused or waiting: the slow tick
        self._next = now + (FILE_TICK_S if active else IDLE_TICK_S)
        kbps = self._bitrate()
        out = self.files.poll(now, kbps, self.signs.clean(now))
        if out:
            self._out(out)
        progress = now >= self._progress_at
        for s in self.files.senders.values():
            if s.done:
                self._report(s)
            elif not s.is_clipboard and s.state is SenderState.SENDING and progress:
                limit = (s.share * kbps + self.files.spare.kbps) / 8000  # MB/s
                c = self.signs.counts
                self._say(
                    f"sending {s.name}: {s.progress * 100:.0f} % ({s.bytes_sent} bytes; "
                    f"limit {limit:.1f} MB/s; {self.files.spare.backoffs} back-offs; signs: "
                    f"{c['bitrate cut']} bitrate cuts, {c['rtt']} RTT, {s.rewinds} gaps)"
                )
        if progress:
            self._progress_at = now + 1.0
        for _peer, text in self.receiver.take_notices():
            self._say(text)
        for r in self.receiver.take_results():
            if r.name == CLIPBOARD_FILENAME:
                if r.ok and r.text is not None:
                    self._on_clipboard(r.text)
                elif not r.ok:
                    self._say(f"clipboard from the host not applied: {r.message}")
            elif r.ok:
                self._say(f"received {r.name} -> {r.path}")
            else:
                self._say(f"file {r.name or '?'} from the host not saved: {r.message}")

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.receiver.close()
