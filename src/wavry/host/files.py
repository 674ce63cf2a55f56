"""Files both ways (docs/files.md): ``--send-file`` offered to every session, files from a client
saved, and clipboard text too large for one datagram carried as a file.

Only file messages reach this feature (the router routes by event type: a key press is never
offered here first). Senders are paced on a 10 ms tick while a transfer is under way, and by
nothing at all while none is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from wavry.files.transfer import (
    CLIPBOARD_FILENAME,
    FILE_TICK_S,
    IDLE_TICK_S,
    FileReceiver,
    FileTransfers,
    Outgoing,
    Role,
    SenderState,
    SpareCapacity,
    TransferError,
    sha256_file,
)
from wavry.host.link import SessionLink
from wavry.host.routing import HostFeature, PeerInfo, RoutedEvent
from wavry.runtime.messages import FileMessage

__all__ = ["FILE_TICK_S", "IDLE_TICK_S", "FilesFeature"]

PROGRESS_EVERY_S = 1.0

#: (peer, ok, text, why): clipboard text that arrived over the file path
ClipboardResult = Callable[[int, bool, str | None, str], None]


class FilesFeature(HostFeature):
    name = "files"
    handles = (FileMessage,)

    def __init__(
        self,
        link: SessionLink,
        say: Callable[[str], None],
        receiver: FileReceiver,
        *,
        send_files: list[Path],
        share: float,
        spare: bool,
        on_clipboard: ClipboardResult | None = None,
    ) -> None:
        self.link = link
        self.say = say
        self.receiver = receiver
        self.send_files = list(send_files)
        self.share = share
        self.spare = spare
        self.on_clipboard = on_clipboard
        self.transfers: dict[int, FileTransfers] = {}
        self._reported: set[int] = set()
        self._digests: dict[tuple[str, int, int], str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._progress_at = 0.0
        self._tick_at: float | None = None

    # ---- lifecycle --------------------------------------------------------------------

    def on_accepted(self, peer: PeerInfo, now: float) -> None:
        ft = FileTransfers(
            Role.HOST,
            self.receiver,
            share=self.share,
            max_datagram_size=self.link.datagram_size(peer.peer),
            peer=peer.peer,
            spare=SpareCapacity(enabled=self.spare),
        )
        self.transfers[peer.peer] = ft
        if self.send_files:
            task = asyncio.get_running_loop().create_task(self._offer_files(peer.peer, ft))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def on_gone(self, peer: int, reason: str, now: float) -> None:
        self.transfers.pop(peer, None)
        self.receiver.peer_gone(peer)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.receiver.close()

    # ---- sending ----------------------------------------------------------------------

    async def _offer_files(self, peer: int, ft: FileTransfers) -> None:
        """Offer every --send-file to a new session; digests are computed in a thread (once per
        file version) so the event loop keeps streaming."""
        loop = asyncio.get_running_loop()
        for path in self.send_files:
            try:
                st = path.stat()
                key = (str(path), st.st_size, st.st_mtime_ns)
                digest = self._digests.get(key)
                if digest is None:
                    digest = await loop.run_in_executor(None, sha256_file, path)
                    self._digests[key] = digest
                if self.transfers.get(peer) is not ft:
                    return  # the session ended meanwhile
                sender, out = ft.send_file(path, self.link.now(), digest)
            except (OSError, TransferError) as exc:
                self.say(f"session {peer:08x} cannot send {path}: {exc}")
                continue
            self.say(f"session {peer:08x} offering {sender.name} ({sender.size} bytes)")
            self._send(peer, out)
            self.link.flush()

    def send_clipboard(self, peer: int, text: str) -> bool:
        """Offer clipboard text as a file (too large for one ClipboardMessage)."""
        ft = self.transfers.get(peer)
        if ft is None:
            return False
        try:
            _sender, out = ft.send_clipboard(text, self.link.now())
        except TransferError:
            return False
        self._send(peer, out)
        return True

    def _send(self, peer: int, out: list[Outgoing]) -> None:
        for o in out:
            if o.bulk:
                self.link.send_bulk(peer, o.message)
            else:
                self.link.send_message(peer, o.message)

    # ---- receiving --------------------------------------------------------------------

    def on_event(self, peer: int, event: RoutedEvent, now: float) -> bool:
        if not isinstance(event, FileMessage):
            return False
        ft = self.transfers.get(peer)
        if ft is not None:
            replies = ft.handle(event.message, now)
            if replies:
                self._send(peer, replies)
            self._report_sent(peer, ft)  # the peer's status may have finished a transfer
        self._report_received()
        return True

    def _report_received(self) -> None:
        for peer, text in self.receiver.take_notices():
            self.say(f"session {peer:08x} {text}")
        for r in self.receiver.take_results():
            if r.name == CLIPBOARD_FILENAME:
                if self.on_clipboard is not None:
                    self.on_clipboard(r.peer, r.ok, r.text, r.message)
            elif r.ok:
                self.say(f"session {r.peer:08x} received {r.name} -> {r.path}")
            else:
                self.say(f"session {r.peer:08x} file {r.name or '?'} not saved: {r.message}")

    # ---- pacing -----------------------------------------------------------------------

    def _tick_s(self) -> float | None:
        """How often to poll: fast while chunks leave or arrive, slowly while a file is only
        offered, waiting for its verdict or paused (header repeats, give-up), never when idle."""
        transfers = self.transfers.values()
        incoming = self.receiver.incoming.values()
        if any(ft.pacing for ft in transfers) or any(
            not (t.done or t.paused or t.peer_gone) for t in incoming
        ):
            return FILE_TICK_S
        if any(ft.sending for ft in transfers):
            return IDLE_TICK_S
        return None

    def next_timer(self) -> float | None:
        tick = self._tick_s()
        if tick is None:
            self._tick_at = None
        else:
            soonest = self.link.now() + tick
            if self._tick_at is None or self._tick_at > soonest:
                self._tick_at = soonest  # e.g. a paused file resumed: the fast tick at once
        return self._tick_at

    def on_timer(self, now: float) -> None:
        self._tick_at = None  # next_timer: now + the tick that the transfers need
        for peer, ft in list(self.transfers.items()):
            if not self.link.accepted(peer):
                continue
            out = ft.poll(now, self.link.target_bitrate_kbps(peer), self.link.path_clean(peer))
            if out:
                self._send(peer, out)
            self._report_sent(peer, ft)
        if now >= self._progress_at:
            self._progress_at = now + PROGRESS_EVERY_S
            for peer, ft in self.transfers.items():
                for sender in ft.senders.values():
                    if sender.state is SenderState.SENDING and not sender.is_clipboard:
                        self.say(
                            f"session {peer:08x} sending {sender.name}: "
                            f"{sender.progress * 100:.0f} %"
                        )
        self._report_received()

    def _report_sent(self, peer: int, ft: FileTransfers) -> None:
        for sender in ft.senders.values():
            if not sender.done or sender.file_id in self._reported:
                continue
            self._reported.add(sender.file_id)
            if sender.is_clipboard:
                if sender.state is not SenderState.COMPLETE:
                    self.say(
                        f"session {peer:08x} clipboard ({sender.size} bytes) not synced: "
                        f"{sender.message}"
                    )
                continue
            verb = "sent" if sender.state is SenderState.COMPLETE else sender.state.value
            self.say(f"session {peer:08x} {verb} {sender.name}: {sender.message}")
