"""What the client runtime touches on the machine, as factories it is handed (tests and other
front-ends swap them): decoder, window, audio, recorder, clipboard, and the screen-size probe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wavry.client.options import ConnectOptions
from wavry.media.encode import Codec
from wavry.runtime.session import SessionFailed

__all__ = ["Backends"]


def _decoder(codec: Codec, hwaccel: str | None) -> Any:
    from wavry.media.decode import Decoder

    # one thread: our streams carry one slice per frame, and a second thread only adds waiting
    # when the CPU is busy (p95 17 ms vs 11 ms at 1280×720 with both cores loaded)
    return Decoder(codec, threads=1, hwaccel=hwaccel)


def _window(title: str, w: int, h: int, opts: ConnectOptions) -> Any:
    from wavry.client.window import VideoWindow

    return VideoWindow(title, w, h, fullscreen=opts.fullscreen, vsync=opts.vsync,
                       presenter=opts.presenter)  # fmt: skip


def _audio(say: Callable[[str], None], play: bool, mic: bool) -> Any:
    from wavry.media.audio_session import ClientAudio

    return ClientAudio(say, play=play, mic=mic)


def _recorder(opts: ConnectOptions, say: Callable[[str], None]) -> Any:
    from wavry.media.record import Recorder, default_record_dir

    return Recorder(opts.record_dir or default_record_dir(),
                    on_file=lambda p: say(f"recording saved: {p}"), audio=opts.audio)  # fmt: skip


def _clipboard(*args: Any, **kw: Any) -> Any:
    from wavry.platform.clipboard import open_clipboard

    return open_clipboard(*args, **kw)


def _screen_size() -> tuple[int, int]:
    from wavry.client.sdl import sdl2
    from wavry.client.window import WindowError, init_video

    try:
        size = init_video()
    except WindowError as exc:
        raise SessionFailed(f"{exc}; use --headless to run without a window") from None
    sdl2.SDL_QuitSubSystem(sdl2.SDL_INIT_VIDEO)  # the window thread opens it again, for itself
    return size


@dataclass(slots=True)
class Backends:
    """Factories of everything that touches the machine (tests and other front-ends swap
    them). ``screen`` answers the desktop size (and fails when no display can be opened)."""

    decoder: Callable[[Codec, str | None], Any] = _decoder
    window: Callable[[str, int, int, ConnectOptions], Any] = _window
    audio: Callable[[Callable[[str], None], bool, bool], Any] = _audio
    recorder: Callable[[ConnectOptions, Callable[[str], None]], Any] = _recorder
    clipboard: Callable[..., Any] = _clipboard
    screen: Callable[[], tuple[int, int]] = _screen_size
