"""`wavry doctor` names the system packages a pip-installed Wavry still lacks, per distribution,
with the command that adds them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wavry import syspackages
from wavry.syspackages import Probe, distro_family

OS_RELEASE = {
    "debian": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n',
    "ubuntu": 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n',
    "fedora": "ID=fedora\nVERSION_ID=41\n",
    "arch": "ID=arch\nBUILD_ID=rolling\n",
    "manjaro": "ID=manjaro\nID_LIKE=arch\n",
    "gentoo": "ID=gentoo\n",
}


def test_distribution_families() -> None:
    got = {k: distro_family(v) for k, v in OS_RELEASE.items()}
    assert got == {
        "debian": "debian",
        "ubuntu": "debian",
        "fedora": "fedora",
        "arch": "arch",
        "manjaro": "arch",
        "gentoo": None,
    }


def bare_machine(os_release: str) -> Probe:
    """A machine with none of the system packages (and no PyGObject)."""
    return Probe(
        which=lambda _n: None,
        exists=lambda _p: False,
        module=lambda _m: False,
        run_ok=lambda _c: False,
        os_release=lambda: os_release,
    )


@pytest.mark.parametrize(
    ("distro", "xvfb", "everything"),
    [
        ("debian", "sudo apt install xvfb xauth", "sudo apt install xvfb xauth gstreamer1.0-tools"),
        (
            "fedora",
            "sudo dnf install xorg-x11-server-Xvfb xorg-x11-xauth",
            "sudo dnf install xorg-x11-server-Xvfb xorg-x11-xauth gstreamer1",
        ),
        (
            "arch",
            "sudo pacman -S --needed xorg-server-xvfb xorg-xauth",
            "sudo pacman -S --needed xorg-server-xvfb xorg-xauth gstreamer",
        ),
    ],
)
def test_missing_packages_are_named_with_the_command(
    distro: str, xvfb: str, everything: str
) -> None:
    results = {r.name: r for r in syspackages.probes(bare_machine(OS_RELEASE[distro]))}
    assert results["pkg-xvfb"].remedy == xvfb and "Xvfb" in results["pkg-xvfb"].detail
    assert not any(r.ok for r in results.values())
    summary = results["system-packages"].remedy
    assert summary.startswith(everything + " "), summary
    pipewire = {
        "debian": "gstreamer1.0-pipewire",
        "fedora": "pipewire-gstreamer",
        "arch": "gst-plugin-pipewire",
    }[distro]
    assert pipewire in summary and pipewire in results["pkg-gstreamer"].remedy
    assert len(summary.split()) == len(set(summary.split())), "a package named twice"


def test_unknown_distribution_gets_every_family_command() -> None:
    results = {r.name: r for r in syspackages.probes(bare_machine(OS_RELEASE["gentoo"]))}
    remedy = results["pkg-wl-clipboard"].remedy
    assert remedy == (
        "Debian/Ubuntu: sudo apt install wl-clipboard; Fedora: sudo dnf install "
        "wl-clipboard; Arch: sudo pacman -S --needed wl-clipboard"
    )


def test_one_missing_tool_on_this_machine() -> None:
    real = Probe()
    hidden = Probe(which=lambda n: None if n == "Xvfb" else real.which(n))
    results = {r.name: r for r in syspackages.probes(hidden)}
    assert not results["pkg-xvfb"].ok
    assert results["pkg-xvfb"].remedy == "sudo apt install xvfb xauth"  # this machine: Debian
    assert results["pkg-wl-clipboard"].ok  # scripts/setup.sh installs it
    assert "xvfb xauth" in results["system-packages"].remedy


def test_doctor_lists_the_system_packages() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "wavry", "doctor", "--json", "-"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    names = {p["name"] for p in json.loads(r.stdout)["probes"]}
    assert {"pkg-xvfb", "pkg-gstreamer", "pkg-pygobject-build", "system-packages"} <= names
