"""The `wavry host` console: every notice as the line a user reads."""

from __future__ import annotations

import sys
from typing import TextIO

from wavry.host.notices import (
    ClientConnecting,
    ClientJoined,
    ClientLeft,
    ClientMoved,
    ClientRefused,
    ClientStalled,
    HostNotice,
    HostStarted,
    HostStopped,
    InputReleased,
    LatencyWindow,
    Notice,
    Paired,
    PairingAttemptFailed,
    PairingCodeShown,
    PairingRequested,
)

__all__ = ["TRUST_ANY_WARNING", "ConsolePrinter", "format_code"]

TRUST_ANY_WARNING = (
    "WARNING: --trust any accepts every client that connects, without pairing. "
    "Use it only in labs and tests."
)


def format_code(code: str) -> str:
    return f"{code[:3]} {code[3:]}"


class ConsolePrinter:
    """An observer that prints each notice (banner, sessions, pairing) to ``out``."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def __call__(self, n: HostNotice) -> None:
        for line in self.lines(n):
            self.say(line)

    def lines(self, n: HostNotice) -> list[str]:
        if isinstance(n, HostStarted):
            return self._banner(n)
        if isinstance(n, Notice):
            return [n.text]
        if isinstance(n, ClientConnecting):
            return [f"handshake from {n.name or '?'} ({n.wavry_id}) at {n.address}"]
        if isinstance(n, ClientJoined):
            return [f"session {n.peer:08x} accepted for {n.wavry_id}"]
        if isinstance(n, ClientRefused):
            return [f"session {n.peer:08x} rejected: {n.reason}"]
        if isinstance(n, ClientLeft):
            return [f"session {n.peer:08x} ended: {n.reason} ({n.message})"]
        if isinstance(n, ClientMoved):
            return [f"session {n.peer:08x} moved to {n.address}"]
        if isinstance(n, ClientStalled):
            return [f"session {n.peer:08x} stalled ({n.silence_s:.1f} s silent)"]
        if isinstance(n, InputReleased):
            what = [f"{len(n.keys)} key(s)"] if n.keys else []
            what += [f"{len(n.buttons)} button(s)"] if n.buttons else []
            what += ["gamepads"] if n.gamepads else []
            return [f"session {n.peer:08x} released {', '.join(what)}: {n.why}"]
        if isinstance(n, LatencyWindow):
            return [
                f"session {n.peer:08x} end-to-end latency p50 {n.p50_ms:.1f} ms, max "
                f"{n.max_ms:.1f} ms over {n.frames} frames (client reports)"
            ]
        if isinstance(n, PairingCodeShown):
            minutes = max(1, round(n.valid_s / 60))
            return [
                f"Pairing code: {format_code(n.code)}  (valid {minutes} minutes, "
                f"{n.attempts} attempts; enter it on the client)"
            ]
        if isinstance(n, PairingRequested):
            line = f"pairing requested by {n.name or '?'} ({n.wavry_id}) at {n.address}"
            return [line + (f": {n.why_no_code}" if n.why_no_code else "")]
        if isinstance(n, PairingAttemptFailed):
            return [f"wrong pairing code from {n.wavry_id} ({n.attempts_left} left)"]
        if isinstance(n, Paired):
            return [f"paired and trusted: {n.name or '?'} ({n.wavry_id})"]
        if isinstance(n, HostStopped):
            # an error ends `wavry host` with it as its last line (`error: …` on stderr)
            return [] if n.error else ["shutting down"]
        return []

    def _banner(self, n: HostStarted) -> list[str]:
        out = [
            f'Wavry host "{n.name}"',
            f"  Wavry ID: {n.wavry_id}",
            f"  RIFT host listening on udp://{n.listen}",
        ]
        for i, addr in enumerate(n.connect_addresses):
            lead = "  connect with: " if i == 0 else "                "
            out.append(f"{lead}wavry connect {addr}")
        out.append("  (a client shows the host's Wavry ID when it first connects: compare it)")
        if n.trust_any:
            out.append(TRUST_ANY_WARNING)
        else:
            out.append(
                f"  trust: paired devices only ({n.trusted_devices} trusted); unknown clients "
                "must enter a pairing code"
            )
        if n.picture:
            out.append(f"  picture: {n.picture}")
        else:
            if n.picture_problem:
                out.append(f"  picture source unavailable: {n.picture_problem}")
            from wavry.runtime.sources import NO_SOURCE_HELP

            out.append(f"  {NO_SOURCE_HELP}")
        out.append(f"  audio: {n.audio}")
        return out
