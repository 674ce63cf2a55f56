"""The audio feature: the host's sound played here, our microphone sent there (back-end:
:class:`wavry.media.audio_session.ClientAudio`, injected)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from wavry.runtime.features import Feature
from wavry.runtime.messages import AppEvent, AudioData

__all__ = ["AudioFeature"]


class AudioFeature(Feature):
    name = "audio"
    handles = (AudioData,)

    def __init__(
        self,
        audio: Any,  # ClientAudio
        send: Callable[[AppEvent], None],
        clock_offset: Callable[[], float | None],
        record: Callable[[AudioData], None] | None = None,
    ) -> None:
        self.audio = audio
        self._send = send
        self._offset = clock_offset
        self._record = record

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.audio.start(loop, self._send_mic)

    def _send_mic(self, timestamp_us: int, packet: bytes) -> None:
        self._send(AudioData(timestamp_us, packet))

    def on_event(self, peer: int, event: AppEvent, now: float) -> bool:
        assert isinstance(event, AudioData)
        self.audio.on_packet(event.timestamp_us, event.payload, self._offset())
        if self._record is not None:
            self._record(event)
        return True

    def video_timestamp(self, timestamp_us: int) -> None:
        """The latest frame's capture time (for the A/V offset of the next packets)."""
        self.audio.video_ts_us = timestamp_us

    def overlay_lines(self) -> list[str]:
        return list(self.audio.overlay_lines())

    def summary(self) -> dict[str, Any]:
        return dict(self.audio.summary())

    def close(self) -> None:
        self.audio.close()
