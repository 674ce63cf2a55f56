"""What a host runtime is asked to do: :class:`HostOptions`, from the validated settings of
`wavry host` (docs/cli.md) or filled in directly by the desktop app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wavry.connectivity.services import ConnectivityOptions, saved_gateway
from wavry.files.transfer import DEFAULT_CLIPBOARD_MAX, DEFAULT_MAX_FILE_SIZE, DEFAULT_SHARE
from wavry.settings import CaptureMode, HostSettings, SourceName, TrustMode

__all__ = ["HostOptions", "OptionsError", "options_from_settings"]

DEFAULT_SIZE = (1280, 720)


class OptionsError(ValueError):
    """Options that contradict each other; the message says which and what to do."""


@dataclass(slots=True)
class HostOptions:
    listen: tuple[str, int] = ("0.0.0.0", 47800)
    trust_any: bool = False
    pair: bool = False
    name: str = ""
    config_dir: Path | None = None
    source: str | None = None  # synthetic | x11 | wayland | virtual; None = detect
    codec: str = "h264"
    bitrate_kbps: int = 8000
    max_bitrate_kbps: int | None = None  # DELTA's ceiling; None = 2 × bitrate_kbps
    fps: int = 60
    width: int = DEFAULT_SIZE[0]  # synthetic source size
    height: int = DEFAULT_SIZE[1]
    display: str | None = None
    monitor: int | None = None
    #: the virtual display's size; None with source "virtual": the first client's size
    virtual: tuple[int, int] | None = None
    run: str | None = None
    capture_on_change: bool = True  # X11: capture when the screen changes (else a fixed clock)
    file_out_dir: Path | None = None  # None: default_download_dir()
    send_files: list[Path] = field(default_factory=list)
    file_share: float = DEFAULT_SHARE
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    file_spare: bool = True  # files may use spare path capacity beyond file_share
    clipboard_max: int = DEFAULT_CLIPBOARD_MAX
    record: bool = False
    record_dir: Path | None = None  # None: default_record_dir()
    audio: str | None = None  # --audio system|source:NAME|app:NAME|off; None: system if a
    # PipeWire/Pulse server answers, else off
    audio_frame_ms: int = 10  # Opus frame: 5 or 10 ms
    mic: bool = True  # play a client's microphone on this machine
    #: presence at a gateway, LAN advertisement, port mapping (wavry.connectivity)
    connectivity: ConnectivityOptions = field(default_factory=ConnectivityOptions)
    web: tuple[str, int] | None = None  # browser clients (--web; wavry.web, docs/browser.md)

    @property
    def follows_client_size(self) -> bool:
        """A virtual display without a size: it takes the first client's size."""
        return self.source == "virtual" and self.virtual is None


def options_from_settings(s: HostSettings, config_dir: Path | None = None) -> HostOptions:
    """The runtime's options from validated settings (docs/cli.md). Raises OptionsError for
    settings that contradict each other."""
    source = s.source.value if s.source is not None else None
    if s.display is not None:
        # --display names an X display to capture: X11 (a virtual display has its own)
        if s.virtual or source not in (None, SourceName.x11.value):
            other = "--virtual" if s.virtual else f"--source {source}"
            raise OptionsError(
                f"--display {s.display} names an X display to capture and cannot go with "
                f"{other}: drop one of them"
            )
        source = SourceName.x11.value
    if s.virtual and source != SourceName.wayland.value:
        if source not in (None, SourceName.virtual.value):
            raise OptionsError(f"--virtual cannot go with --source {source}: drop one of them")
        source = SourceName.virtual.value
    size = s.size_pixels
    # --source wayland --virtual: a GNOME virtual monitor (Mutter RecordVirtual) at --size
    if source == SourceName.virtual.value:
        virtual = size
    elif s.virtual:
        virtual = size or DEFAULT_SIZE
    else:
        virtual = None
    width, height = size or DEFAULT_SIZE
    bitrate = s.bitrate_kbps or 8000
    return HostOptions(
        listen=s.listen_addr,
        trust_any=s.trust is TrustMode.any,
        pair=s.pair,
        name=s.name,
        config_dir=config_dir,
        source=source,
        codec=s.codec.value,
        bitrate_kbps=bitrate,
        max_bitrate_kbps=s.max_bitrate_kbps,
        fps=s.fps or 60,
        width=width,
        height=height,
        display=s.display,
        monitor=s.monitor,
        virtual=virtual,
        run=s.run,
        capture_on_change=s.capture is CaptureMode.change,
        file_out_dir=s.file_out_dir,
        send_files=list(s.send_file),
        file_share=s.file_share,
        max_file_size=s.max_file_size_bytes,
        file_spare=s.file_spare,
        clipboard_max=s.clipboard_max_bytes,
        record=s.record,
        record_dir=s.record_dir,
        audio=s.audio,
        audio_frame_ms=s.audio_frame_ms,
        mic=s.mic,
        web=s.web_addr,
        connectivity=ConnectivityOptions(
            gateway=saved_gateway()
            if s.gateway is None
            else None
            if s.gateway == "off"
            else s.gateway,
            name=s.name,
            mdns=s.mdns,
            upnp=s.upnp,
        ),
    )
