"""The features' one view of the sessions: :class:`SessionLink` wraps the sans-I/O
``HostEndpoint`` and its asyncio ``HostServer``, so no feature reaches into the core's types.

Everything here runs on the event loop, except :meth:`SessionLink.send_frame_from_thread` and
:class:`BacklogGate`, which the encode thread calls. Every call into the core holds the server's
lock (``HostServer.lock``): the encode thread hands its frames to the core directly, without
waiting for the loop (RIFT's sans-I/O core is single-threaded, so both sides take turns).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from wavry.files.transfer import path_is_clean
from wavry.net.host import HostServer
from wavry.rift import rift_pb2
from wavry.rift.events import DisconnectReason
from wavry.rift.host import HostEndpoint, HostSession, HostSessionState
from wavry.runtime.messages import AppEvent, encode

__all__ = ["BacklogGate", "SessionLink"]


class SessionLink:
    def __init__(self, endpoint: HostEndpoint, server: HostServer) -> None:
        self.endpoint = endpoint
        self.server = server
        #: called after every flush (the runtime re-arms the features' timer)
        self.after_flush: Callable[[], None] = lambda: None

    def now(self) -> float:
        """The core's monotonic clock (seconds): every ``now`` a feature gets comes from here."""
        return self.server.clock()

    def _session(self, peer: int) -> HostSession | None:
        s = self.endpoint.sessions.get(peer)
        return s if s is not None and s.state is HostSessionState.ACTIVE else None

    # ---- sending ----------------------------------------------------------------------

    def send(self, peer: int, event: AppEvent) -> bool:
        """Send an application event to an accepted session (False: it is gone)."""
        return self.send_message(peer, encode(event))

    def send_message(self, peer: int, message: rift_pb2.Message) -> bool:
        """A message the feature builds itself (files); False when the session is gone."""
        with self.server.lock:
            if self._session(peer) is None:
                return False
            self.endpoint.send_message(peer, message, self.now())
            return True

    def send_bulk(self, peer: int, message: rift_pb2.Message) -> bool:
        """A bulk message (a file chunk): it waits until the video of the session has left."""
        with self.server.lock:
            if self._session(peer) is None:
                return False
            self.endpoint.send_bulk(peer, message, self.now())
            return True

    def send_frame(
        self,
        peer: int,
        data: bytes,
        *,
        keyframe: bool,
        timestamp_us: int,
        capture_us: int,
        encode_us: int,
    ) -> bool:
        """(loop) One encoded frame to a session whose datagrams leave from the loop (a
        browser's carrier, a relayed route: see `sends_from_thread`); False when it is gone."""
        with self.server.lock:
            if self._session(peer) is None:
                return False
            self.endpoint.send_frame(
                peer,
                data,
                self.now(),
                keyframe=keyframe,
                timestamp_us=timestamp_us,
                capture_us=capture_us,
                encode_us=encode_us,
                on_batch=self.server.send_output,  # first chunks leave while sealing goes on
            )
            return True

    def sends_from_thread(self, peer: int) -> bool:
        """(any thread) Whether this session's frames go out from the encode thread
        (`send_frame_from_thread`): a plain UDP peer. The others go through the loop."""
        return self.server.sends_from_thread(peer)

    def send_frame_from_thread(
        self,
        peers: Iterable[int],
        data: bytes,
        *,
        keyframe: bool,
        timestamp_us: int,
        capture_us: int,
        encode_us: int,
    ) -> list[int]:
        """(encode thread) One encoded frame to each of these sessions, straight into the
        transport: its first datagrams are on the wire before this returns, whatever the loop is
        doing (``HostServer.send_frame_threadsafe``). Returns the sessions it went to; the
        others are gone (or not accepted)."""
        sent = []
        for peer in peers:
            fid = self.server.send_frame_threadsafe(
                peer,
                data,
                keyframe=keyframe,
                timestamp_us=timestamp_us,
                capture_us=capture_us,
                encode_us=encode_us,
            )
            if fid is not None:
                sent.append(peer)
        return sent

    def flush(self) -> None:
        """Send what the core has ready (after sending outside an event or timer)."""
        self.server.flush()
        self.after_flush()

    def close_session(self, peer: int, message: str) -> None:
        with self.server.lock:
            self.endpoint.close_session(peer, DisconnectReason.USER, message)
            self.flush()

    # ---- facts about a session ----------------------------------------------------------

    def accepted(self, peer: int) -> bool:
        with self.server.lock:
            return self._session(peer) is not None

    def last_heard(self, peer: int) -> float | None:
        """When the last authentic datagram of the session arrived (None: no session)."""
        with self.server.lock:
            s = self.endpoint.sessions.get(peer)
            return None if s is None else s.last_rx

    def max_plaintext(self, peer: int) -> int:
        """The largest message that fits one datagram of this session (0: no session)."""
        with self.server.lock:
            s = self._session(peer)
            return 0 if s is None else s.channel.max_plaintext

    @property
    def max_datagram(self) -> int:
        return self.endpoint.config.transport.max_datagram

    def datagram_size(self, peer: int) -> int:
        """This session's maximum datagram size: smaller than the host's on a carrier with
        smaller datagrams (WebTransport, RIFT.md §11)."""
        with self.server.lock:
            s = self.endpoint.sessions.get(peer)
            return self.max_datagram if s is None else s.transport.config.max_datagram

    def target_bitrate_kbps(self, peer: int) -> int:
        with self.server.lock:
            s = self._session(peer)
            return 0 if s is None else int(s.transport.decision.target_bitrate_kbps)

    def path_clean(self, peer: int) -> bool:
        """Congestion control's verdict that the path has spare room (files may use it)."""
        with self.server.lock:
            s = self._session(peer)
            return s is not None and path_is_clean(s.transport.decision)

    def rtt_ms(self, peer: int) -> float | None:
        with self.server.lock:
            s = self._session(peer)
            rtt = None if s is None else s.transport.decision.smoothed_rtt_s
        return None if rtt is None else rtt * 1000

    def media_backlog_s(self, peers: Iterable[int]) -> float:
        """How long the media queued for these sessions needs to leave (the longest)."""
        with self.server.lock:
            now = self.now()
            return max((self.endpoint.media_backlog_s(p, now) for p in peers), default=0.0)

    def should_skip_frame(self, peers: Iterable[int]) -> bool:
        """The core's one backlog decision (``HostEndpoint.should_skip_frame``) for the next
        frame: skip it while the media queued for any of these sessions needs more than half a
        frame interval to leave. Each backlogged session counts the skip
        (``frames_skipped_backlog``): call it once per frame the encoder would otherwise
        encode."""
        with self.server.lock:
            return self.endpoint.should_skip_frame(self.now(), list(peers))


class BacklogGate:
    """Whether the encoder skips a frame because the frames before it are still leaving.

    Drop, never queue: a frame not encoded breaks no reference chain, one dropped after encoding
    does. After every sent frame the encode thread notes until when the send queue stays longer
    than half a frame interval (:meth:`update`); before encoding it checks that time
    (:meth:`should_skip`). Only while the queue is that long does it ask the core, which decides
    against the queue as it is then and counts the skip in each backlogged session's
    ``frames_skipped_backlog``; ``skipped`` counts the frames really not encoded. Both run on
    the encode thread, under the server's lock where they reach the core.
    """

    def __init__(
        self,
        link: SessionLink,
        viewers: Callable[[], Iterable[int]],
        fps: Callable[[], float],
    ) -> None:
        self._link = link
        self._viewers = viewers
        self._fps = fps
        self._open_at = 0.0  # time.monotonic() from which frames are encoded without asking
        self.skipped = 0  # frames the encoder skipped because of the backlog

    def _threshold_s(self) -> float:
        return 0.5 / max(1.0, self._fps())

    def update(self) -> None:
        """After a frame was sent: until when is the queue too long?"""
        backlog = self._link.media_backlog_s(self._viewers())
        self._open_at = time.monotonic() + backlog - self._threshold_s()

    def should_skip(self) -> bool:
        """Skip the frame about to be encoded? The core decides (and counts) against the queue
        now."""
        if time.monotonic() >= self._open_at:
            return False
        skip = self._link.should_skip_frame(self._viewers())
        if skip:
            self.skipped += 1
        else:
            self._open_at = 0.0
        return skip
