"""The app writes the same config.toml the CLI reads: its tables are kept (comments, order),
a bad value changes nothing, and `wavry host`/`connect` read what the app wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wavry.config import ConfigError, load
from wavry.desktop.prefs import MAX_RECENT, Prefs
from wavry.settings import ConnectSettings, DesktopSettings, HostSettings

ORIGINAL = """# written by hand
[gateway]
listen = "0.0.0.0:8080"  # the public port

[host]
fps = 30
name = "den"  # shown to clients
"""


def test_writing_a_table_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "wavry" / "config.toml"
    path.parent.mkdir()
    path.write_text(ORIGINAL)
    prefs = Prefs(path)
    prefs.save(HostSettings, {"codec": "hevc", "fps": 60})
    prefs.save(ConnectSettings, {"fullscreen": True})
    prefs.save(DesktopSettings, {"network": "gateway", "gateway_url": "https://gw.example.org"})
    text = path.read_text()
    assert text.startswith('# written by hand\n[gateway]\nlisten = "0.0.0.0:8080"  # the public')
    assert 'name = "den"  # shown to clients' in text
    assert load(HostSettings, path).codec.value == "hevc"
    assert load(HostSettings, path).fps == 60
    assert load(ConnectSettings, path).fullscreen is True
    # None removes a key: the default applies again
    prefs.save(HostSettings, {"name": None})
    assert load(HostSettings, path).name == ""
    assert "den" not in path.read_text()


def test_a_bad_value_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(ORIGINAL)
    with pytest.raises(ConfigError, match=r"\[host\] fps: .*less than or equal to 240"):
        Prefs(path).save(HostSettings, {"fps": 1000})
    with pytest.raises(ConfigError, match=r"\[connect\] mic"):
        Prefs(path).save(ConnectSettings, {"mic": "loud"})
    assert path.read_text() == ORIGINAL


def test_recent_connections_newest_first_without_repeats(tmp_path: Path) -> None:
    prefs = Prefs(tmp_path / "config.toml")
    for i in range(MAX_RECENT + 3):
        prefs.remember(f"10.0.0.{i}:47800", f"pc{i}")
    prefs.remember("10.0.0.2:47800", "pc2", "x" * 43)
    recent = prefs.desktop().recent
    assert len(recent) == MAX_RECENT
    assert [r.target for r in recent[:2]] == ["10.0.0.2:47800", f"10.0.0.{MAX_RECENT + 2}:47800"]
    assert recent[0].wavry_id == "x" * 43
    assert sum(r.target == "10.0.0.2:47800" for r in recent) == 1
    prefs.forget_recent("10.0.0.2:47800")
    assert "10.0.0.2:47800" not in [r.target for r in prefs.desktop().recent]


def test_a_broken_desktop_table_is_reported_and_the_app_uses_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[desktop]\nnetwork = "carrier-pigeon"\n')
    prefs = Prefs(path)
    assert prefs.desktop().network.value == "lan"
    assert "network" in prefs.problem


def test_the_cli_reads_what_the_app_wrote(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prefs = Prefs(home / "wavry" / "config.toml")
    prefs.save(HostSettings, {"listen": "127.0.0.1:0", "fps": 1000 // 40})
    code = "from wavry.config import load; from wavry.settings import HostSettings as H;" \
           "s = load(H); print(s.fps, s.listen)"  # fmt: skip
    env = dict(os.environ, XDG_CONFIG_HOME=str(home))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["25", "127.0.0.1:0"], out.stderr
