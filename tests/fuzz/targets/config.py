"""The configuration file (docs/cli.md, src/wavry/config.py): any bytes as config.toml, read
for every command's settings; a bad file is one ConfigError, never anything else."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from wavry.config import ConfigError, load
from wavry.settings import ConnectSettings, HostSettings

_PATH = Path(tempfile.mkdtemp(prefix="wavry-fuzz-config-")) / "config.toml"
_CLASSES: list[type] = [HostSettings, ConnectSettings]
try:
    from wavry.gateway.settings import GatewaySettings

    if hasattr(GatewaySettings, "section"):
        _CLASSES.append(GatewaySettings)
except ImportError:  # the gateway's extras are not installed
    pass


def seeds() -> list[bytes]:
    return [
        b'[host]\nfps = 30\nbitrate_kbps = 4000\ntrust = "paired"\n',
        b'[connect]\nheadless = true\nmax_size = "1280x720"\n',
        b"[host]\nfps = 1000\n",
        b"[host]\nno_such = 1\n",
        b"host = 3\n",
        b'[gateway]\nbind = "127.0.0.1:8080"\n',
    ]


def test_one_input(data: bytes) -> None:
    _PATH.write_bytes(data)
    for cls in _CLASSES:
        with contextlib.suppress(ConfigError):
            load(cls, _PATH)
