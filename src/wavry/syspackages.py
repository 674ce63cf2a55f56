"""The system packages a pip-installed Wavry still needs, and the command that adds them.

`pip`/`pipx` bring the Python side (PyAV bundles FFmpeg, pysdl2-dll bundles SDL); what only the
distribution provides — Xvfb, GStreamer with its PipeWire plugin, PipeWire, the portal, the
clipboard and audio tools, the headers PyGObject compiles against — is checked here, each by
what Wavry actually runs or loads, and named with the package of Debian/Ubuntu, Fedora or Arch.
`wavry doctor` shows one line per need and one command for everything missing.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wavry.platform.probe import ProbeResult

__all__ = ["FAMILIES", "Need", "Probe", "distro_family", "install_command", "probes"]

# family -> install command prefix
FAMILIES = {
    "debian": "sudo apt install",
    "fedora": "sudo dnf install",
    "arch": "sudo pacman -S --needed",
}
FAMILY_NAMES = {"debian": "Debian/Ubuntu", "fedora": "Fedora", "arch": "Arch"}
_LIKE = {
    "debian": "debian", "ubuntu": "debian", "linuxmint": "debian", "pop": "debian",
    "raspbian": "debian", "fedora": "fedora", "rhel": "fedora", "centos": "fedora",
    "rocky": "fedora", "almalinux": "fedora", "arch": "arch", "manjaro": "arch",
    "endeavouros": "arch",
}  # fmt: skip
_TYPELIB_DIRS = ("/usr/lib/girepository-1.0", "/usr/lib64/girepository-1.0",
                 "/usr/lib/x86_64-linux-gnu/girepository-1.0",
                 "/usr/lib/aarch64-linux-gnu/girepository-1.0")  # fmt: skip
_PORTAL = ("/usr/libexec/xdg-desktop-portal", "/usr/lib/xdg-desktop-portal")
_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
             "/usr/local/lib")  # fmt: skip


@dataclass
class Probe:
    """How the checks look at the machine (replaceable in tests)."""

    which: Callable[[str], str | None] = shutil.which
    exists: Callable[[str], bool] = lambda p: Path(p).exists()
    module: Callable[[str], bool] = lambda m: importlib.util.find_spec(m) is not None
    run_ok: Callable[[list[str]], bool] = field(default=lambda cmd: _run_ok(cmd))
    os_release: Callable[[], str] = lambda: _read("/etc/os-release")


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _run_ok(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass(frozen=True)
class Need:
    name: str
    purpose: str
    packages: dict[str, tuple[str, ...]]
    missing: Callable[[Probe], list[str]]  # what is absent, in words; empty = satisfied


def _exes(*names: str) -> Callable[[Probe], list[str]]:
    return lambda p: [n for n in names if p.which(n) is None]


def _gstreamer(p: Probe) -> list[str]:
    out = [] if p.which("gst-inspect-1.0") else ["gst-inspect-1.0"]
    if not any(p.exists(f"{d}/Gst-1.0.typelib") for d in _TYPELIB_DIRS):
        out.append("the Gst-1.0 introspection data")
    if not any(p.exists(f"{d}/GstVideo-1.0.typelib") for d in _TYPELIB_DIRS):
        out.append("the GstVideo-1.0 introspection data")
    if not out and not p.run_ok(["gst-inspect-1.0", "pipewiresrc"]):
        out.append("the pipewiresrc element")
    return out


def _portal(p: Probe) -> list[str]:
    return [] if any(p.exists(x) for x in _PORTAL) else ["xdg-desktop-portal"]


def _libyuv(p: Probe) -> list[str]:
    found = any(p.exists(f"{d}/{n}") for d in _LIB_DIRS for n in ("libyuv.so.0", "libyuv.so"))
    return [] if found else ["libyuv"]


def _pygobject(p: Probe) -> list[str]:
    if p.module("gi"):
        return []
    out = [] if p.which("pkg-config") else ["pkg-config"]
    if not out:
        for mod in ("gobject-introspection-1.0", "cairo"):
            if not p.run_ok(["pkg-config", "--exists", mod]):
                out.append(f"{mod} headers")
    include = sysconfig.get_paths().get("include", "")
    if not p.exists(f"{include}/Python.h"):
        out.append("Python.h")
    if p.which("cc") is None and p.which("gcc") is None:
        out.append("a C compiler")
    return out


NEEDS = (
    Need("xvfb", "virtual displays (wavry host --virtual)",
         {"debian": ("xvfb", "xauth"), "fedora": ("xorg-x11-server-Xvfb", "xorg-x11-xauth"),
          "arch": ("xorg-server-xvfb", "xorg-xauth")}, _exes("Xvfb")),
    Need("gstreamer", "Wayland capture and hardware encoding (GStreamer with PipeWire)",
         {"debian": ("gstreamer1.0-tools", "gstreamer1.0-plugins-base", "gstreamer1.0-plugins-good",
                     "gstreamer1.0-plugins-bad", "gstreamer1.0-pipewire", "gir1.2-gstreamer-1.0",
                     "gir1.2-gst-plugins-base-1.0"),
          "fedora": ("gstreamer1", "gstreamer1-plugins-base", "gstreamer1-plugins-good",
                     "gstreamer1-plugins-bad-free", "pipewire-gstreamer"),
          "arch": ("gstreamer", "gst-plugins-base", "gst-plugins-good", "gst-plugins-bad",
                   "gst-plugin-pipewire")}, _gstreamer),
    Need("pipewire", "screen and audio capture on Wayland (PipeWire)",
         {"debian": ("pipewire", "pipewire-bin", "wireplumber"),
          "fedora": ("pipewire", "pipewire-utils", "wireplumber"),
          "arch": ("pipewire", "wireplumber")}, _exes("pipewire", "pw-cli")),
    Need("audio-tools", "audio capture and the microphone (pactl, parec)",
         {"debian": ("pulseaudio-utils",), "fedora": ("pulseaudio-utils",), "arch": ("libpulse",)},
         _exes("pactl", "parec")),
    Need("portal", "Wayland screen sharing and input (xdg-desktop-portal with your desktop's "
         "backend: -gnome, -kde or -wlr)",
         {"debian": ("xdg-desktop-portal",), "fedora": ("xdg-desktop-portal",),
          "arch": ("xdg-desktop-portal",)}, _portal),
    Need("dbus-tools", "the input portal probe (gdbus)",
         {"debian": ("libglib2.0-bin",), "fedora": ("glib2",), "arch": ("glib2",)},
         _exes("gdbus")),
    Need("wl-clipboard", "the clipboard on Wayland (wl-copy, wl-paste)",
         {"debian": ("wl-clipboard",), "fedora": ("wl-clipboard",), "arch": ("wl-clipboard",)},
         _exes("wl-copy", "wl-paste")),
    Need("libyuv", "fast colour conversion before encoding (without it: FFmpeg's, slower)",
         {"debian": ("libyuv0",), "fedora": ("libyuv",), "arch": ("libyuv",)}, _libyuv),
    Need("pygobject-build", "installing the `wayland` extra (PyGObject compiles on install)",
         {"debian": ("libgirepository1.0-dev", "libcairo2-dev", "pkg-config", "python3-dev", "gcc"),
          "fedora": ("gobject-introspection-devel", "cairo-gobject-devel", "pkgconf-pkg-config",
                     "python3-devel", "gcc"),
          "arch": ("gobject-introspection", "cairo", "pkgconf", "base-devel")}, _pygobject),
)  # fmt: skip


def distro_family(os_release: str) -> str | None:
    """debian / fedora / arch from /etc/os-release (ID, then ID_LIKE), None when unknown."""
    fields: dict[str, str] = {}
    for line in os_release.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("\"'")
    for candidate in [fields.get("ID", ""), *fields.get("ID_LIKE", "").split()]:
        if candidate.lower() in _LIKE:
            return _LIKE[candidate.lower()]
    return None


def install_command(family: str | None, packages: dict[str, list[str]]) -> str:
    """The command for ``family``; for an unknown distribution, the command of each family."""
    if family is not None:
        return f"{FAMILIES[family]} {' '.join(packages[family])}"
    return "; ".join(f"{FAMILY_NAMES[f]}: {FAMILIES[f]} {' '.join(packages[f])}" for f in FAMILIES)


def probes(probe: Probe | None = None) -> list[ProbeResult]:
    """One result per need (``pkg-NAME``), then ``system-packages``: everything in one command."""
    p = probe or Probe()
    family = distro_family(p.os_release())
    out: list[ProbeResult] = []
    wanted: dict[str, list[str]] = {f: [] for f in FAMILIES}
    for need in NEEDS:
        absent = need.missing(p)
        if not absent:
            out.append(ProbeResult(f"pkg-{need.name}", True, f"present, for {need.purpose}"))
            continue
        for f in FAMILIES:
            wanted[f] += [x for x in need.packages[f] if x not in wanted[f]]
        one = {f: list(need.packages[f]) for f in FAMILIES}
        out.append(ProbeResult(f"pkg-{need.name}", False,
                               f"missing {', '.join(absent)}: needed for {need.purpose}",
                               install_command(family, one)))  # fmt: skip
    where = FAMILY_NAMES.get(family or "", "an unrecognised distribution")
    if wanted["debian"]:
        out.append(ProbeResult("system-packages", False,
                               f"{where}: system packages missing for some features (above)",
                               install_command(family, wanted)))  # fmt: skip
    else:
        out.append(ProbeResult("system-packages", True, f"{where}: every system package present"))
    return out
