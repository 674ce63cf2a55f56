"""`wavry connect --events-json FILE|-`: a running session as JSON lines, for programs that drive
the client (the desktop app), and their answers on stdin.

One JSON object per line, each with a ``type``:

- ``hello`` {version}: first line;
- ``state`` {state, detail}: connecting, streaming, stalled, reconnecting, closed;
- ``say`` {text}: a line the terminal would show;
- ``connected`` {host_name, host_id, address, codec, width, height, fps, handshake_ms};
- ``stats`` {…}: once a second, the last second (:func:`stats_event`);
- ``ask_pairing_code`` {address, host_message, attempt, error}: the host asks for its pairing
  code; answer ``{"type": "pairing_code", "code": "123456"}`` (``null``: give up);
- ``ask_identity`` {address, pinned, presented}: the host at a pinned address shows another
  identity; answer ``{"type": "identity", "trust": true}`` only after the user confirmed (the
  old pin is forgotten and the new identity pinned), ``false`` to give up;
- ``error`` {message}: the session could not be set up or failed;
- ``ended`` {ended, summary}: the end, with the ``--stats-json`` summary.

Answers come on stdin, one JSON object per line; ``{"type": "stop"}`` or the end of stdin ends
the session (a driver that goes away takes its stream with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from typing import Any

__all__ = [
    "PROTOCOL_VERSION",
    "EventChannel",
    "answer_line",
    "event_line",
    "parse_line",
    "run_with_events",
    "stats_fields",
]

PROTOCOL_VERSION = 1
MAX_LINE = 1 << 20


def event_line(kind: str, **fields: Any) -> str:
    """One event as a line of JSON (newline included)."""
    return json.dumps({"type": kind, **fields}, separators=(",", ":"), default=str) + "\n"


def answer_line(kind: str, **fields: Any) -> bytes:
    """One answer for the session's stdin."""
    return event_line(kind, **fields).encode("utf-8")


def parse_line(raw: bytes | str) -> dict[str, Any] | None:
    """A line read from the other side: the object, or None for anything else (a blank line,
    a stray print, a line too long) — a bad line never ends the session."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_LINE:
            return None
        raw = raw.decode("utf-8", "replace")
    raw = raw.strip()
    if not raw.startswith("{"):
        return None
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return None
    return obj


class EventChannel:
    """The session's side: events to ``out`` (one line each, flushed), answers read from ``inp``
    on a thread of its own. A driver that closes the pipe ends the session."""

    def __init__(self, out: Any, inp: Any | None) -> None:
        self.out = out
        self.inp = inp
        self.runtime: Any = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._gone = False
        self._connected_sent = False

    # ---- writing ----------------------------------------------------------------------------

    def emit(self, kind: str, **fields: Any) -> None:
        line = event_line(kind, **fields)
        with self._lock:
            if self._gone:
                return
            try:
                self.out.write(line)
                self.out.flush()
            except (BrokenPipeError, OSError, ValueError):  # the driver went away
                self._gone = True
                self._stop()

    def _stop(self) -> None:
        if self.runtime is not None:
            self.runtime.stop()

    # ---- the runtime's callbacks ------------------------------------------------------------

    def callbacks(self) -> Any:
        from wavry.client.runtime import ClientCallbacks
        from wavry.runtime.session import Prompts

        return ClientCallbacks(
            say=lambda text: self.emit("say", text=text),
            on_state=self._on_state,
            on_stats=self._on_stats,
            prompts=Prompts(pairing_code=self._ask_code, identity_changed=self._ask_identity),
        )

    def _on_state(self, state: str, detail: str) -> None:
        if state == "streaming" and not self._connected_sent:
            self._connected_sent = True
            self._connected()
        self.emit("state", state=state, detail=detail)

    def _connected(self) -> None:
        from wavry.rift import rift_pb2

        est = getattr(self.runtime, "est", None)
        if est is None:
            return
        ack = est.ack
        self.emit(
            "connected",
            host_name=est.host_name,
            host_id=est.host_id,
            address=est.address,
            codec=rift_pb2.Codec.Name(ack.selected_codec),
            width=ack.stream_resolution.width,
            height=ack.stream_resolution.height,
            fps=ack.fps,
            handshake_ms=round(est.handshake_ms, 2),
        )

    def _on_stats(self, figures: Any) -> None:
        self.emit("stats", **stats_fields(figures, self.runtime, time.monotonic()))

    async def _ask(self, kind: str, answer: str, **fields: Any) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._answers[answer] = future
        self.emit(kind, **fields)
        try:
            return await future
        finally:
            self._answers.pop(answer, None)

    async def _ask_code(self, prompt: Any) -> str | None:
        reply = await self._ask(
            "ask_pairing_code", "pairing_code", address=prompt.address,
            host_message=prompt.host_message, attempt=prompt.attempt, error=prompt.error,
        )  # fmt: skip
        code = reply.get("code")
        return str(code) if isinstance(code, str) and code else None

    async def _ask_identity(self, change: Any) -> bool:
        reply = await self._ask(
            "ask_identity", "identity", address=change.address, pinned=change.pinned,
            presented=change.presented,
        )  # fmt: skip
        return reply.get("trust") is True

    # ---- reading the answers ----------------------------------------------------------------

    def attach(self, runtime: Any, loop: asyncio.AbstractEventLoop) -> None:
        """Serve ``runtime``: answers and "stop" from ``inp`` (the end of it stops the session)."""
        self.runtime = runtime
        self._loop = loop
        self.emit("hello", version=PROTOCOL_VERSION)
        if self.inp is not None:
            threading.Thread(target=self._read, name="wavry-events-in", daemon=True).start()

    def _read(self) -> None:
        assert self.inp is not None
        try:
            for raw in self.inp:
                msg = parse_line(raw)
                if msg is not None:
                    self._on_loop(self._answer, msg)
        except (OSError, ValueError):
            pass
        self._on_loop(self._answer, {"type": "stop"})  # the driver is gone

    def _on_loop(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to stop
                loop.call_soon_threadsafe(fn, *args)

    def _answer(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "stop":
            for future in self._answers.values():
                if not future.done():
                    future.set_result({})
            self._stop()
            return
        waiting = self._answers.get(kind)
        if waiting is not None and not waiting.done():
            waiting.set_result(msg)


async def run_with_events(opts: Any, channel: EventChannel) -> Any:
    """`wavry connect --events-json`: the client runtime with the channel's callbacks; stopped by
    a "stop" answer, the end of stdin, SIGINT or SIGTERM (the summary still comes out)."""
    import signal

    from wavry.client.runtime import ClientRuntime

    rt = ClientRuntime(opts, channel.callbacks())
    loop = asyncio.get_running_loop()
    channel.attach(rt, loop)
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(sig, rt.stop, "interrupted")
            handled.append(sig)
    try:
        return await rt.run()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def stats_fields(figures: Any, runtime: Any, now: float) -> dict[str, Any]:
    """A ``stats`` event: the live figures of the last second, the per-stage times of the
    frames shown in it (p50), FEC repairs so far and the path."""
    from wavry.client.stats import STAGES
    from wavry.percentile import percentile

    out: dict[str, Any] = {
        "t": round(now, 3),
        "frames_shown": figures.frames_shown,
        "frames_dropped": figures.frames_dropped,
        "e2e_p50_ms": _round(figures.e2e_p50_ms),
        "e2e_p95_ms": _round(figures.e2e_p95_ms),
        "bitrate_kbps": round(figures.bitrate_kbps, 1),
        "loss_pct": _round(figures.loss_pct),
        "rtt_ms": _round(figures.rtt_ms),
        "state": figures.state,
        "congestion": figures.congestion,
    }
    stats = getattr(runtime, "stats", None)
    if stats is not None:
        recent = stats.recent(now, figures.span_s)
        out["stages_ms"] = {
            s: _round(percentile([f.stage(s) for f in recent], 0.5)) for s in STAGES
        }
        out["fec_recovered"] = stats.fec_recovered
    paths = getattr(runtime, "paths", None)
    kind = getattr(paths, "kind", None)
    if kind is not None:
        out["path"] = getattr(kind, "value", str(kind))
        changes = getattr(paths, "changes", [])
        out["relay"] = changes[-1].relay_id if changes else None
    elif getattr(runtime, "est", None) is not None:
        out["path"] = "direct"  # dialled by address: the one path there is
    return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)
