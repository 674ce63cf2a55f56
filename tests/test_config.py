"""One configuration approach: config file → WAVRY_* environment → flags, for every command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wavry.config import ConfigError, load
from wavry.gateway.settings import GatewaySettings
from wavry.relay.settings import RelaySettings
from wavry.settings import ConnectSettings, HostSettings


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for k in list(os.environ):
        if k.startswith("WAVRY_"):
            monkeypatch.delenv(k)
    (tmp_path / "wavry").mkdir()
    return tmp_path / "wavry" / "config.toml"


def test_each_layer_overrides_the_one_before(xdg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg.write_text('[host]\nfps = 30\nname = "den"\n[gateway]\nlisten = "127.0.0.1:3100"\n'
                   '[relay]\nregion = "eu"\n[connect]\nheadless = true\n')  # fmt: skip
    assert load(HostSettings).fps == 30 and load(HostSettings).name == "den"
    assert load(GatewaySettings).listen == "127.0.0.1:3100"
    assert load(RelaySettings).region == "eu"
    assert load(ConnectSettings).headless is True
    monkeypatch.setenv("WAVRY_HOST_FPS", "45")
    monkeypatch.setenv("WAVRY_RELAY_ID", "relay-7")
    assert load(HostSettings).fps == 45 and load(HostSettings).name == "den"
    assert load(RelaySettings).id == "relay-7"
    assert load(HostSettings, fps=50).fps == 50  # a flag wins
    assert load(HostSettings, fps=None).fps == 45  # a flag not given does not


def test_bad_values_name_their_layer(xdg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg.write_text("[host]\nfsp = 30\n")
    with pytest.raises(ConfigError, match=r"config.toml: \[host\] has unknown setting\(s\): fsp"):
        load(HostSettings)
    xdg.write_text("[host]\nfps = 999\n")
    with pytest.raises(ConfigError, match=r"config.toml \[host\] fps: .*less than or equal"):
        load(HostSettings)
    xdg.write_text("")
    monkeypatch.setenv("WAVRY_CONNECT_MIC", "loud")
    with pytest.raises(ConfigError, match=r"WAVRY_CONNECT_MIC: .*off, default or source:NAME"):
        load(ConnectSettings)
    with pytest.raises(ConfigError, match=r"--max-bitrate-kbps \(300\) is below --bitrate-kbps"):
        load(HostSettings, bitrate_kbps=8000, max_bitrate_kbps=300)
    xdg.write_text("[relay\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(RelaySettings)


def test_services_read_the_file_and_report_one_line(xdg: Path) -> None:
    xdg.write_text('[relay]\nlisten = "nonsense"\nid = "r1"\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(xdg.parent.parent)}
    r = subprocess.run([sys.executable, "-m", "wavry", "relay"], env=env, capture_output=True,
                       text=True, timeout=30)  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.startswith("error: --listen") and r.stderr.count("\n") == 1
    xdg.write_text('[gateway]\nlisten = "127.0.0.1:99999"\n')
    r = subprocess.run([sys.executable, "-m", "wavry", "gateway"], env=env, capture_output=True,
                       text=True, timeout=30)  # fmt: skip
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
