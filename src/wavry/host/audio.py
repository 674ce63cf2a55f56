"""Audio: this machine's sound to every session (Opus on the priority lane, captured only while
a session is accepted), and each client's microphone played here (unless ``mic`` is off)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from wavry.host.link import SessionLink
from wavry.host.routing import HostFeature, PeerInfo, RoutedEvent
from wavry.media.audio_session import HostAudio
from wavry.runtime.messages import AudioData

__all__ = ["AudioFeature", "AudioTap"]

AudioTap = Callable[[int, bytes], None]  # (timestamp_us, Opus packet): recording


class AudioFeature(HostFeature):
    name = "audio"
    handles = (AudioData,)

    def __init__(self, audio: HostAudio, link: SessionLink, *, mic: bool = True) -> None:
        self.audio = audio
        self.link = link
        self.mic = mic
        self.viewers: set[int] = set()
        self.taps: list[AudioTap] = []

    def on_accepted(self, peer: PeerInfo, now: float) -> None:
        self.viewers.add(peer.peer)
        self.audio.start(asyncio.get_running_loop(), self._send)

    def _send(self, timestamp_us: int, packet: bytes) -> None:
        """One Opus packet to every session on the priority lane (never behind video)."""
        event = AudioData(timestamp_us, packet)
        for peer in list(self.viewers):
            if not self.link.send(peer, event):
                self.viewers.discard(peer)
        self.link.flush()
        for tap in self.taps:
            tap(timestamp_us, packet)

    def on_event(self, peer: int, event: RoutedEvent, now: float) -> bool:
        if isinstance(event, AudioData) and self.mic:
            self.audio.on_client_audio(peer, event.payload)  # the client's microphone
        return True

    def on_gone(self, peer: int, reason: str, now: float) -> None:
        self.viewers.discard(peer)
        self.audio.client_gone(peer)
        if not self.viewers:
            self.audio.stop()

    async def stop(self) -> None:
        """Stop capturing and playing (in a worker thread: the devices take a moment)."""
        self.viewers.clear()
        await asyncio.get_running_loop().run_in_executor(None, self.audio.close)
