"""What a client session is asked to do: :class:`ConnectOptions`, from the CLI's settings or
built directly by the desktop app, a web endpoint or a benchmark."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavry.files.transfer import DEFAULT_CLIPBOARD_MAX, DEFAULT_MAX_FILE_SIZE, DEFAULT_SHARE
from wavry.media.encode import Codec
from wavry.rift import rift_pb2
from wavry.rift.config import ClientConfig
from wavry.runtime.session import SessionFailed
from wavry.settings import ConnectSettings

__all__ = ["ConnectOptions", "hello_config", "options_from_settings"]

_RIFT_CODEC = {Codec.H264: rift_pb2.H264, Codec.HEVC: rift_pb2.HEVC, Codec.AV1: rift_pb2.AV1}


@dataclass(slots=True)
class ConnectOptions:
    host: str
    port: int
    headless: bool = False
    seconds: float | None = None
    stats_json: Path | None = None
    snapshot: Path | None = None
    fullscreen: bool = False
    vsync: bool = False
    presenter: str = "auto"  # auto | cpu | gpu (wavry.client.present)
    pair_code: str | None = None
    host_id: str | None = None
    timeout: float = 10.0
    config_dir: Path | None = None
    live_stats: bool = False
    monitor: int | None = None
    send_files: list[Path] = field(default_factory=list)
    file_out_dir: Path | None = None  # None: default_download_dir()
    file_share: float = DEFAULT_SHARE
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    file_spare: bool = True  # files may use spare path capacity beyond file_share
    clipboard_max: int = DEFAULT_CLIPBOARD_MAX
    record: bool = False
    record_dir: Path | None = None  # None: default_record_dir()
    audio: bool = True  # play the host's audio (--no-audio: False)
    mic: bool = False  # --mic: send the default microphone to the host
    hwdecode: str | None = None  # --hwdecode auto|cuda|vaapi|qsv…: hardware decode, else software
    mic_source: str | None = None  # --mic source:NAME: that PipeWire/Pulse source, else default
    resolution: tuple[int, int] | None = None  # largest picture to ask the host for
    fps: int | None = None  # highest frame rate to ask the host for
    bitrate_kbps: int | None = None  # highest bitrate to ask for (when max_bitrate_kbps is not)
    max_bitrate_kbps: int | None = None  # highest bitrate to ask the host for
    #: reach the host through the gateway (wavry.connectivity.dial.GatewayRoute) instead of
    #: host:port; ``label`` names it in messages; ``started_at`` (monotonic) is when `wavry
    #: connect` began (the host lookup counts in time_to_first_frame_ms)
    route: Any = None
    label: str | None = None
    started_at: float | None = None

    @property
    def bitrate_ceiling_kbps(self) -> int:
        """The bitrate the client asks the host not to exceed (0: none of its own)."""
        return self.max_bitrate_kbps or self.bitrate_kbps or 0


def options_from_settings(s: ConnectSettings, host: str, port: int) -> ConnectOptions:
    """The runtime's options from validated settings (docs/cli.md)."""
    return ConnectOptions(
        host=host,
        port=port,
        headless=s.headless,
        seconds=s.seconds,
        stats_json=Path(s.stats_json) if s.stats_json else None,
        snapshot=s.snapshot,
        fullscreen=s.fullscreen,
        vsync=s.vsync,
        pair_code=s.pair_code,
        host_id=s.host_id,
        timeout=s.timeout_seconds,
        live_stats=s.live_stats,
        monitor=s.monitor,
        send_files=list(s.send_file),
        file_out_dir=s.file_out_dir,
        file_share=s.file_share,
        max_file_size=s.max_file_size_bytes,
        file_spare=s.file_spare,
        clipboard_max=s.clipboard_max_bytes,
        record=s.record,
        record_dir=s.record_dir,
        audio=s.audio,
        mic=s.mic != "off",
        mic_source=s.mic.removeprefix("source:") if s.mic.startswith("source:") else None,
        hwdecode=s.hwdecode,
        resolution=s.resolution_pixels,
        fps=s.fps,
        bitrate_kbps=s.bitrate_kbps,
        max_bitrate_kbps=s.max_bitrate_kbps,
    )


def hello_config(opts: ConnectOptions, screen: tuple[int, int]) -> ClientConfig:
    """What the client states in Hello: the codecs it can decode, the largest picture
    (``--resolution``, else its screen; (0, 0) states none) and the frame rate (``--fps``)."""
    from wavry.media.decode import decodable_codecs

    codecs = [int(_RIFT_CODEC[c]) for c in decodable_codecs()]
    if not codecs:
        raise SessionFailed("no video decoder works here (PyAV has no H.264/HEVC/AV1)")
    w, h = opts.resolution or screen
    return ClientConfig(
        name=socket.gethostname(),
        supported_codecs=codecs,
        max_width=w,
        max_height=h,
        max_fps=opts.fps or 0,
    )
