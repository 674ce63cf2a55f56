"""Audio inside a Wavry session: what `wavry host` and `wavry connect` plug in.

Host (:class:`HostAudio`): captures the ``--audio`` choice while a viewer is connected and hands
each Opus packet to the runtime (which sends it as ``MediaMessage.audio`` on the priority lane,
never behind video); packets that reach the event loop late are dropped. Microphone packets from
a client are played into a virtual microphone (``wavry_mic`` null sink + ``wavry_mic_source``),
created with the first packet and unloaded when the last mic session ends.

Client (:class:`ClientAudio`): plays the host's audio (≤ 20 ms buffering, oldest dropped when
late) and, with ``--mic``, captures the default source and sends it to the host.

Nothing here ends a session: every audio failure is one clear line and the video goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from wavry.media.audio import AudioPlayer, AudioSender
from wavry.percentile import percentile
from wavry.platform.audio import AudioError, AudioSpec, VirtualMic, open_capture_target, server_info

__all__ = ["ClientAudio", "HostAudio", "default_audio_spec"]

LATE_S = 0.06  # a captured packet older than this when the loop gets to it is dropped
AUDIO_HELP = "see `wavry doctor` (audio-capture / audio-playback) for the fix"

Say = Callable[[str], None]
SendAudio = Callable[[int, bytes], None]  # (timestamp_us, opus packet)


def default_audio_spec(env: dict[str, str] | None = None) -> tuple[AudioSpec, str]:
    """``system`` when a Pulse/PipeWire server answers, else ``off`` with the reason."""
    try:
        info = server_info(env)
    except AudioError as exc:
        return AudioSpec("off"), f"no PipeWire/PulseAudio server answers ({exc})"
    return AudioSpec("system"), info.get("Server Name", "sound server")


def _post(loop: asyncio.AbstractEventLoop | None, fn: Callable[..., object], *args: object) -> None:
    """Run ``fn(*args)`` on ``loop`` from another thread (nothing if the loop is gone)."""
    if loop is not None:
        with contextlib.suppress(RuntimeError):  # loop closed
            loop.call_soon_threadsafe(fn, *args)


def _pct(values: list[float], q: float) -> float | None:
    p = percentile(values, q)
    return None if p is None else round(p, 2)


class HostAudio:
    def __init__(
        self,
        spec: AudioSpec,
        say: Say,
        *,
        frame_ms: int = 10,
        env: dict[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.say = say
        self.frame_ms = frame_ms
        self.env = env
        self.sender: AudioSender | None = None
        self.failed = False
        self.late_dropped = 0
        self.sent = 0
        self.mic: VirtualMic | None = None
        self.mic_players: dict[int, AudioPlayer] = {}
        self._mic_failed: set[int] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._send: SendAudio | None = None

    # ---- host → client -------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop, send: SendAudio) -> None:
        """Start capturing (idempotent); a failure is said once and the session goes on."""
        self._loop, self._send = loop, send
        if self.sender is not None and self.sender.stats.error:
            self.stop()  # it ended (e.g. the application quit): a new viewer retries
        if self.sender is not None or self.spec.kind == "off":
            return
        try:
            target = open_capture_target(self.spec, self.env)
            self.sender = AudioSender(
                target,
                self._on_packet,
                frame_ms=self.frame_ms,
                env=self.env,
                on_error=self._on_error,
            ).start()
        except (AudioError, OSError, ValueError) as exc:
            self.sender = None
            self.failed = True
            self.say(f"  audio capture unavailable ({self.spec}): {exc}; video continues")
            return
        self.failed = False
        self.say(f"  audio: {target.description}, Opus 48 kHz stereo {self.frame_ms} ms frames")

    def _on_packet(self, ts_us: int, packet: bytes) -> None:  # capture thread
        loop = self._loop
        if loop is None:
            return
        _post(loop, self._deliver, ts_us, packet)

    def _deliver(self, ts_us: int, packet: bytes) -> None:
        if time.time() - ts_us / 1e6 > LATE_S:
            self.late_dropped += 1  # the loop was busy: late audio is dropped, not queued
            return
        if self._send is not None:
            self.sent += 1
            self._send(ts_us, packet)

    def _on_error(self, message: str) -> None:  # capture thread
        self.failed = True
        loop = self._loop
        if loop is not None:
            _post(loop, self.say, f"audio capture stopped: {message}; video continues")

    def stop(self) -> None:
        """Stop capturing (no viewers left)."""
        sender, self.sender = self.sender, None
        if sender is not None:
            sender.stop()

    # ---- client microphone → host ----------------------------------------------------

    def on_client_audio(self, alias: int, packet: bytes) -> None:
        if alias in self._mic_failed:
            return
        player = self.mic_players.get(alias)
        if player is None:
            try:
                if self.mic is None:
                    self.mic = VirtualMic(self.env).load()
                    self.say(
                        f"  microphone from clients → virtual source {self.mic.source} "
                        f"(record from it on this host)"
                    )
                player = AudioPlayer(
                    self.mic.sink,
                    env=self.env,
                    stream_name=f"wavry mic {alias:08x}",
                    on_error=lambda m: self._mic_error(alias, m),
                ).start()
            except (AudioError, OSError) as exc:
                self._mic_failed.add(alias)
                self.say(f"session {alias:08x} microphone ignored: {exc}")
                self._unload_mic_if_idle()
                return
            self.mic_players[alias] = player
            self.say(f"session {alias:08x} microphone stream started")
        player.push(packet)

    def _mic_error(self, alias: int, message: str) -> None:  # player thread
        self._mic_failed.add(alias)
        loop = self._loop
        if loop is not None:
            _post(loop, self.say, f"session {alias:08x} microphone: {message}")

    def client_gone(self, alias: int) -> None:
        self._mic_failed.discard(alias)
        player = self.mic_players.pop(alias, None)
        if player is not None:
            player.stop()
            st = player.stats
            self.say(
                f"session {alias:08x} microphone ended: {st.packets} packets, "
                f"{st.written_bytes / 192:.0f} ms played, {st.dropped_ms:.0f} ms dropped late"
            )
        self._unload_mic_if_idle()

    def _unload_mic_if_idle(self) -> None:
        if self.mic is not None and not self.mic_players:
            self.mic.unload()
            self.mic = None

    def close(self) -> None:
        self.stop()
        for alias in list(self.mic_players):
            self.client_gone(alias)
        self._unload_mic_if_idle()


class ClientAudio:
    """Plays the host's audio; with ``mic`` captures the default source for the host."""

    def __init__(
        self,
        say: Say,
        *,
        play: bool = True,
        mic: bool = False,
        frame_ms: int = 10,
        env: dict[str, str] | None = None,
        max_buffer_ms: float = 20.0,
    ) -> None:
        self.say = say
        self.play = play
        self.mic = mic
        self.frame_ms = frame_ms
        self.env = env
        self.max_buffer_ms = max_buffer_ms
        self.player: AudioPlayer | None = None
        self.sender: AudioSender | None = None
        self.packets = 0
        self.bytes = 0
        self.ignored = 0
        self.error = ""
        self.mic_error = ""
        self.mic_sent = 0
        self.video_ts_us: int | None = None
        self.av_offsets: list[float] = []
        self.arrival_ms: list[float] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._send: SendAudio | None = None
        self._closed = False

    def start(self, loop: asyncio.AbstractEventLoop, send_mic: SendAudio) -> None:
        self._loop, self._send = loop, send_mic
        if not self.mic:
            return
        try:
            target = open_capture_target(AudioSpec("mic"), self.env)
            self.sender = AudioSender(
                target,
                self._on_mic_packet,
                frame_ms=self.frame_ms,
                env=self.env,
                on_error=self._on_mic_error,
                stream_name="wavry microphone",
            ).start()
        except (AudioError, OSError, ValueError) as exc:
            self.mic_error = str(exc)
            self.say(f"microphone unavailable: {exc}; the session continues without it")
            return
        self.say(f"microphone: {target.description} → host")

    def _on_mic_packet(self, ts_us: int, packet: bytes) -> None:  # capture thread
        if self._loop is None:
            return
        _post(self._loop, self._send_mic, ts_us, packet)

    def _send_mic(self, ts_us: int, packet: bytes) -> None:
        if time.time() - ts_us / 1e6 > LATE_S or self._send is None:
            return
        self.mic_sent += 1
        self._send(ts_us, packet)

    def _on_mic_error(self, message: str) -> None:
        self.mic_error = message
        if self._loop is not None:
            _post(self._loop, self.say, f"microphone stopped: {message}")

    def on_packet(self, ts_us: int, packet: bytes, clock_offset_s: float | None) -> None:
        """One AudioPacket from the host (on the event loop)."""
        self.packets += 1
        self.bytes += len(packet)
        if self.video_ts_us is not None and len(self.av_offsets) < 100_000:
            self.av_offsets.append((ts_us - self.video_ts_us) / 1000)
        if clock_offset_s is not None and len(self.arrival_ms) < 100_000:
            # host clock of now minus the first sample's host clock: capture → arrival
            self.arrival_ms.append((time.time() + clock_offset_s) * 1000 - ts_us / 1000)
        if not self.play or self.error or self._closed:
            self.ignored += 1
            return
        if self.player is None:
            try:
                self.player = AudioPlayer(
                    env=self.env,
                    max_buffer_ms=self.max_buffer_ms,
                    on_error=self._on_play_error,
                ).start()
            except (AudioError, OSError) as exc:
                self.error = str(exc)
                self.say(f"audio playback unavailable: {exc}; video continues ({AUDIO_HELP})")
                return
            self.say("playing the host's audio")
        self.player.push(packet)

    def _on_play_error(self, message: str) -> None:  # player thread
        self.error = message
        if self._loop is not None:
            _post(self._loop, self.say, f"audio playback stopped: {message}; video continues")

    def overlay_lines(self) -> list[str]:
        """The stats-overlay line: A/V offset of the latest audio (audio timestamp minus the
        latest presented frame's, both host clock), its arrival delay, and playback trouble."""
        if not self.play or not self.packets:
            return []
        if self.error:
            return [f"audio: stopped ({self.error[:40]})"]
        av = f"A/V {self.av_offsets[-1]:+.0f} ms" if self.av_offsets else "A/V -"
        arrival = f", arrives {self.arrival_ms[-1]:.0f} ms" if self.arrival_ms else ""
        drops = self.player.stats.dropped_packets if self.player is not None else 0
        return [f"audio: {av}{arrival}, drops {drops}"]

    def summary(self) -> dict[str, Any]:
        p = self.player.stats if self.player is not None else None
        buf = p.buffer_ms_samples if p is not None else []
        return {
            "enabled": self.play,
            "packets": self.packets,
            "bytes": self.bytes,
            "drops": p.dropped_packets if p is not None else 0,  # in 10 ms packet equivalents
            "dropped_ms": round(p.dropped_ms, 1) if p is not None else 0.0,
            "drop_events": p.drop_events if p is not None else 0,
            "trimmed_ms": round(p.trimmed_bytes / 192, 1) if p is not None else 0.0,
            "decode_errors": p.decode_errors if p is not None else 0,
            "played_ms": round(p.written_bytes / 4 / 48, 1) if p is not None else 0.0,
            "buffer_ms": {"p50": _pct(buf, 0.5), "max": _pct(buf, 1.0)},
            "av_offset_ms": {
                "p50": _pct(self.av_offsets, 0.5),
                "p95": _pct(self.av_offsets, 0.95),
                "samples": len(self.av_offsets),
            },
            "arrival_delay_ms": {
                "p50": _pct(self.arrival_ms, 0.5),
                "p95": _pct(self.arrival_ms, 0.95),
            },
            "error": self.error or None,
            "mic": {
                "enabled": self.mic,
                "packets_sent": self.mic_sent,
                "error": self.mic_error or None,
            },
        }

    def close(self) -> None:
        """Stop capture and playback (idempotent; the statistics stay readable)."""
        if self.sender is not None:
            self.sender.stop()
            self.sender = None
        if self.player is not None:
            self.player.stop()
        self._closed = True
