"""What `wavry doctor`'s probes mean for the user: one line per thing they want to do."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Verdict", "verdict"]


class _Probe(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def detail(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    can: bool
    text: str

    def line(self) -> str:
        return ("can    " if self.can else "cannot ") + self.text


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def verdict(results: Iterable[_Probe], environ: dict[str, str] | None = None) -> list[Verdict]:
    env = os.environ if environ is None else environ
    by = {r.name: r for r in results}

    def ok(name: str) -> bool:
        r = by.get(name)
        return r is not None and r.status == "ok"

    def why(name: str) -> str:
        r = by.get(name)
        return _first_line(r.detail) if r is not None else "not probed"

    out: list[Verdict] = []
    sources = []
    if ok("x11"):
        sources.append("X11 (--display :N)")
    if ok("wayland") or ok("wayland-path"):
        sources.append("Wayland (--source wayland)")
    if ok("virtual"):
        sources.append("a private virtual display (--virtual)")
    if ok("synthetic"):
        sources.append("the test pattern (--source synthetic)")
    out.append(Verdict(bool(sources), "host: " + (", ".join(sources) or "no picture source")))
    for name, what in (("x11", "host this X11 screen"), ("wayland-path", "host a Wayland desktop")):
        if name in by and not ok(name):
            out.append(Verdict(False, f"{what}: {why(name)}"))

    software = [n for n in ("libx264", "libx265", "libsvtav1") if ok(n)]
    hardware = [
        n
        for n in by
        if ok(n) and any(k in n for k in ("nvenc", "qsv", "vaapi", "vah264", "nvh264"))
    ]
    enc = ", ".join(hardware + software) or "none"
    out.append(Verdict(bool(software or hardware), f"encode video with: {enc}"))
    if not hardware:
        out.append(Verdict(False, "encode in hardware: no GPU encoder answered (software is used)"))

    decoders = [n.removeprefix("decoder-").upper() for n in ("decoder-h264", "decoder-hevc",
                                                               "decoder-av1") if ok(n)]  # fmt: skip
    out.append(
        Verdict(
            bool(decoders),
            f"connect headless (--headless): decode {', '.join(decoders) or 'nothing'}",
        )
    )
    has_display = bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    out.append(
        Verdict(
            has_display,
            "connect in a window"
            + ("" if has_display else ": no display here (DISPLAY/WAYLAND_DISPLAY unset)"),
        )
    )

    injectors = [label for name, label in (("xtest", "XTest"), ("uinput", "uinput"),
                                           ("input-portal", "the RemoteDesktop portal"),
                                           ("mutter", "Mutter")) if ok(name)]  # fmt: skip
    if injectors:
        out.append(
            Verdict(True, f"apply a client's keyboard and mouse with {', '.join(injectors)}")
        )
    else:
        out.append(Verdict(False, f"apply a client's keyboard and mouse: {why('xtest')}"))
    out.append(
        Verdict(ok("uinput"), "inject gamepads" + ("" if ok("uinput") else f": {why('uinput')}"))
    )
    audio = ok("audio-server") and ok("audio-opus")
    out.append(Verdict(audio, "stream audio" + ("" if audio else f": {why('audio-server')}")))
    out.append(
        Verdict(
            ok("clipboard"),
            "sync the clipboard" + ("" if ok("clipboard") else f": {why('clipboard')}"),
        )
    )
    net = ok("udp-bind")
    out.append(Verdict(net, "open a UDP socket" + ("" if net else f": {why('udp-bind')}")))
    return out
