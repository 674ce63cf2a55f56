"""Setting a host up from its options: the picture source and what hangs off it (input
injection, clipboard, monitor list), and the session core's configuration."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wavry.host.options import HostOptions
from wavry.media.types import Capture, CaptureError
from wavry.platform.clipboard import open_clipboard
from wavry.platform.input import InjectionError
from wavry.rift import rift_pb2
from wavry.rift.config import HostConfig
from wavry.runtime.injection import InjectorSink, injector_for
from wavry.runtime.sources import SourceError, detect_source, open_source, source_size

__all__ = ["HostError", "PictureSource", "host_config", "open_picture"]

CODECS: dict[str, int] = {"h264": rift_pb2.H264, "hevc": rift_pb2.HEVC, "av1": rift_pb2.AV1}


class HostError(Exception):
    """The host cannot run as asked; the message says why and what to do."""


@dataclass(slots=True)
class PictureSource:
    """The chosen picture source (or none, with the reason) and its capture back-end."""

    name: str  # synthetic | x11 | virtual | wayland | "" (none)
    reason: str  # why this source was chosen
    capture: Capture | None
    size: tuple[int, int]
    display: str | None = None
    follow_client: bool = False
    problem: str = ""  # why there is no picture ("" when there is one)

    def describe(self, fps: int) -> str:
        if self.capture is None:
            return ""
        w, h = self.size
        size = "at the client's size" if self.follow_client else f"{w}x{h}@{fps}"
        change = "on change" if getattr(self.capture, "want_on_change", False) else ""
        if self.name in ("x11", "virtual") and not change:
            change = "every frame interval"
        how = f", captured {change}" if change else ""
        return f"{self.name} {size} ({self.reason}{how})"

    def monitors(self) -> list[rift_pb2.MonitorInfo]:
        w, h = self.size
        if self.name == "x11":
            from wavry.media.x11 import list_monitors

            try:
                return [
                    rift_pb2.MonitorInfo(id=m.id, name=m.name, width=m.width, height=m.height)
                    for m in list_monitors(self.display)
                ]
            except CaptureError:
                pass
        return [rift_pb2.MonitorInfo(id=0, name=self.name or "screen", width=w, height=h)]

    def open_injector(self, capture: Capture) -> tuple[InjectorSink | None, str]:
        """The injector for the started capture, or None and what the user should know."""
        try:
            sink = injector_for(self.name, capture, self.display)
        except InjectionError as exc:
            return None, f"input from clients cannot be applied: {exc}"
        if sink is None:
            return None, "input from clients is ignored: the synthetic source has no desktop"
        return sink, ""

    def clipboard_opener(self, capture: Capture) -> tuple[Any, str]:
        """(opener, where) for the picture's display; (None, "") when it has no clipboard."""
        wayland = None
        if self.name == "virtual":
            env = capture.env()  # type: ignore[attr-defined]
            display, auth = env["DISPLAY"], env.get("XAUTHORITY")
        elif self.name == "wayland":
            display, auth = None, None
            wayland = os.environ.get("WAYLAND_DISPLAY")
        elif self.name == "x11":
            display, auth = self.display or os.environ.get("DISPLAY"), None
        else:
            return None, ""

        def opener(
            changed: Callable[[str], None], too_large: Callable[[int], None], limit: int
        ) -> Any:
            return open_clipboard(
                changed,
                display=display,
                auth=auth,
                wayland_display=wayland,
                max_bytes=limit,
                on_too_large=too_large,
            )

        return opener, str(display or wayland)

    def close(self) -> None:
        close = getattr(self.capture, "close", None)
        if close is not None:
            close()


def open_picture(opts: HostOptions, capture: Capture | None = None) -> PictureSource:
    """The picture source the options ask for (``capture``: use this back-end instead).

    Raises HostError when a source asked for explicitly cannot be used; a source that was only
    detected and fails leaves the host without a picture (it still answers sessions and says
    why)."""
    if capture is not None:
        return PictureSource(capture.name, "given by the application", capture, capture.size)
    choice = detect_source(opts.source, opts.virtual)
    if choice is None:
        return PictureSource("", "", None, (opts.width, opts.height))
    try:
        cap = open_source(
            choice.name,
            width=opts.width,
            height=opts.height,
            fps=opts.fps,
            display=opts.display,
            monitor=opts.monitor,
            virtual=opts.virtual,
            run=opts.run,
            on_change=opts.capture_on_change,
        )
        size = source_size(cap)
    except SourceError as exc:
        if opts.source is not None or opts.virtual is not None:
            raise HostError(str(exc)) from exc  # asked for explicitly: a clear error
        return PictureSource(
            "", "", None, (opts.width, opts.height), problem=f"{exc} ({choice.reason})"
        )
    reason = choice.reason
    if choice.name == "x11" and opts.display:
        reason = f"--display {opts.display}"
    return PictureSource(
        choice.name,
        reason,
        cap,
        size,
        display=opts.display,
        follow_client=opts.follows_client_size,
    )


def host_config(opts: HostOptions, name: str, picture: PictureSource) -> HostConfig:
    """The session core's configuration: codecs in preference order, stream size and rate,
    bitrate range."""
    if opts.codec not in CODECS:
        raise HostError(f"unknown codec {opts.codec!r} (h264, hevc, av1)")
    preferred = CODECS[opts.codec]
    codecs = [preferred] + [c for c in CODECS.values() if c != preferred]
    width, height = picture.size
    config = HostConfig(
        name=name,
        trust_any=opts.trust_any,
        codecs=codecs,
        width=width,
        height=height,
        fps=opts.fps,
        initial_bitrate_kbps=opts.bitrate_kbps,
        follow_client_size=picture.follow_client,
    )
    config.transport.initial_bitrate_kbps = opts.bitrate_kbps
    # DELTA may raise the bitrate when the path allows, up to a ceiling that still makes
    # sense for the picture (more only costs encode/decode time and latency).
    config.transport.max_bitrate_kbps = opts.max_bitrate_kbps or 2 * opts.bitrate_kbps
    config.transport.fps = opts.fps
    return config
