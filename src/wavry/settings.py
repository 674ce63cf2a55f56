"""Typed settings of `wavry host`, `wavry connect` and `wavry desktop` (config file →
`WAVRY_*` → flags).

The CLI and the desktop app both fill these models through :func:`wavry.config.load`; the
runtimes take the validated values. Field names are the flags' names with ``_`` for ``-``
(docs/cli.md). The gateway and relay have their own models in their packages.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wavry.config import CommandSettings
from wavry.net.addr import AddressError, parse_hostport

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_WEB_PORT",
    "CaptureMode",
    "CodecName",
    "ConnectSettings",
    "DesktopSettings",
    "HostSettings",
    "NetworkMode",
    "RecentConnection",
    "SourceName",
    "TrustMode",
    "parse_size",
]

from wavry.settings_types import (
    DEFAULT_PORT,
    DEFAULT_WEB_PORT,
    GIB,
    CaptureMode,
    CodecName,
    SourceName,
    TrustMode,
)

_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' → (1280, 720): even, 64..8192 pixels each way."""
    m = _SIZE.match(text)
    if m is None:
        raise ValueError(f"must look like 1280x720, got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if not (64 <= w <= 8192 and 64 <= h <= 8192) or w % 2 or h % 2:
        raise ValueError(f"must be even and between 64 and 8192 pixels, got {text!r}")
    return w, h


def _check_size(value: str | None) -> str | None:
    if value is not None:
        parse_size(value)
    return value


def _check_gateway(value: str | None, allow_off: bool) -> str | None:
    """A gateway base URL (http(s)://HOST[:PORT][/PATH]), or "off" where that means none."""
    if value is None or (allow_off and value == "off"):
        return value
    from wavry.controlplane.devicelogin import canonical_base_url

    try:
        canonical_base_url(value)
    except ValueError as exc:
        raise ValueError(f"{exc}{' (or off)' if allow_off else ''}") from None
    return value.strip().rstrip("/")


class _Shared(CommandSettings):
    """Settings `host` and `connect` both have (one definition each)."""

    file_out_dir: Path | None = None
    file_share: float = Field(default=0.15, ge=0.01, le=1.0)
    file_spare: bool = True
    max_file_size_bytes: int = Field(default=4 * GIB, ge=0)
    clipboard_max_bytes: int = Field(default=1 << 20, ge=0)
    record: bool = False
    record_dir: Path | None = None
    send_file: list[Path] = Field(default_factory=list)
    fps: int | None = Field(default=None, ge=1, le=240)
    bitrate_kbps: int | None = Field(default=None, ge=200, le=500_000)
    max_bitrate_kbps: int | None = Field(default=None, ge=200, le=1_000_000)

    @model_validator(mode="after")
    def _bitrates_agree(self) -> _Shared:
        lo, hi = self.bitrate_kbps, self.max_bitrate_kbps
        if lo is not None and hi is not None and hi < lo:
            raise ValueError(
                f"--max-bitrate-kbps ({hi}) is below --bitrate-kbps ({lo}): the start bitrate "
                "must not exceed the ceiling"
            )
        return self


class HostSettings(_Shared):
    section = "host"

    listen: str = f"0.0.0.0:{DEFAULT_PORT}"
    trust: TrustMode = TrustMode.paired
    pair: bool = False
    name: str = ""
    source: SourceName | None = None
    display: str | None = None
    monitor: int | None = Field(default=None, ge=0)
    virtual: bool = False
    size: str | None = None
    run: str | None = None
    capture: CaptureMode = CaptureMode.change
    codec: CodecName = CodecName.h264
    audio: str | None = None
    mic: bool = True
    audio_frame_ms: int = 10
    #: the gateway to be online at (docs/connecting.md): a URL, "off", or None = the one
    #: `wavry login` saved (off when not signed in)
    gateway: str | None = None
    mdns: bool = True  # advertise on the LAN (_wavry._udp.local.)
    upnp: bool = True  # ask the router for a port mapping while online at a gateway

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str | None) -> str | None:
        return _check_gateway(value, allow_off=True)

    #: browser clients (docs/browser.md): ADDR:PORT, "" = the --listen address, port 47801
    web: str | None = None

    @field_validator("web")
    @classmethod
    def _web(cls, value: str | None) -> str | None:
        if value:
            try:
                parse_hostport(value, DEFAULT_WEB_PORT)
            except AddressError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        try:
            parse_hostport(value, DEFAULT_PORT)
        except AddressError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("size")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        return _check_size(value)

    @field_validator("audio_frame_ms")
    @classmethod
    def _frame(cls, value: int) -> int:
        if value not in (5, 10):
            raise ValueError(f"must be 5 or 10, got {value}")
        return value

    @field_validator("audio")
    @classmethod
    def _audio(cls, value: str | None) -> str | None:
        if value is not None:
            from wavry.platform.audio import AudioSpec

            AudioSpec.parse(value)  # ValueError with the reason
        return value

    @field_validator("display")
    @classmethod
    def _display(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[\w.\-]*:\d+(\.\d+)?$", value):
            raise ValueError(f"an X display looks like :0 or host:0.0, got {value!r}")
        return value

    @property
    def listen_addr(self) -> tuple[str, int]:
        return parse_hostport(self.listen, DEFAULT_PORT)

    @property
    def web_addr(self) -> tuple[str, int] | None:
        if self.web is None:
            return None
        if self.web:
            return parse_hostport(self.web, DEFAULT_WEB_PORT)
        return self.listen_addr[0], DEFAULT_WEB_PORT

    @property
    def size_pixels(self) -> tuple[int, int] | None:
        return parse_size(self.size) if self.size else None


class ConnectSettings(_Shared):
    section = "connect"

    headless: bool = False
    seconds: float | None = Field(default=None, gt=0)
    stats_json: str | None = None
    snapshot: Path | None = None
    fullscreen: bool = False
    vsync: bool = False
    pair_code: str | None = None
    host_id: str | None = None
    timeout_seconds: float = Field(default=10.0, ge=0.5)
    live_stats: bool = True
    monitor: int | None = Field(default=None, ge=0)
    resolution: str | None = None
    audio: bool = True
    mic: str = "off"
    hwdecode: str | None = None
    #: the gateway to look a host name up at (default: the one `wavry login` saved)
    gateway: str | None = None

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str | None) -> str | None:
        return _check_gateway(value, allow_off=False)

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str | None) -> str | None:
        return _check_size(value)

    @field_validator("mic")
    @classmethod
    def _mic(cls, value: str) -> str:
        if value in ("off", "default") or (value.startswith("source:") and len(value) > 7):
            return value
        raise ValueError(f"must be off, default or source:NAME, got {value!r}")

    @property
    def resolution_pixels(self) -> tuple[int, int] | None:
        return parse_size(self.resolution) if self.resolution else None


class NetworkMode(StrEnum):
    lan = "lan"  # this network only: LAN discovery and addresses
    gateway = "gateway"  # also a gateway (accounts, reach by name)


class CloseAction(StrEnum):
    ask = "ask"  # closing the window while sharing asks
    tray = "tray"  # keep sharing in the tray
    quit = "quit"  # stop sharing and quit


class RecentConnection(BaseModel):
    """A computer the desktop app connected to: what to give `wavry connect` again."""

    model_config = ConfigDict(extra="forbid")

    target: str  # HOST[:PORT], or an account host's name
    name: str = ""
    wavry_id: str = ""
    at: float = 0.0  # time.time() of the last connection


class DesktopSettings(CommandSettings):
    """App-only settings of `wavry desktop` (``[desktop]``); what it shares and how it connects
    are the ``[host]`` and ``[connect]`` tables the CLI reads too."""

    section = "desktop"

    set_up: bool = False  # the first-run choices were made
    network: NetworkMode = NetworkMode.lan
    gateway_url: str = ""
    close_while_sharing: CloseAction = CloseAction.ask
    recent: list[RecentConnection] = Field(default_factory=list, max_length=20)
