"""`wavry doctor`: what works on this machine, and the exact remedy for what does not.

Reuses the media/input backend probes (`wavry.media.probes.all_probes`; encoders are opened for
real and encode a test frame) and adds decoders, the input portal, audio, clipboard and network
probes. Every probe is isolated: one that raises is reported with status ``error``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from wavry.platform.probe import ProbeResult

__all__ = ["DoctorProbe", "render_table", "run_doctor", "to_json"]

Status = Literal["ok", "unavailable", "error"]

_DSCP_EF_TOS = 0xB8  # DSCP 46 (expedited forwarding) << 2

# Remedies for probes whose backend gave none (every unavailable probe gets one).
_FALLBACK_REMEDY = {
    "synthetic": "install numpy in the wavry environment (pip install numpy)",
    "virtual": "install Xvfb (apt install xvfb) and FFmpeg with x11grab",
    "x11": "run on an X11 session and pass --display :N (or set DISPLAY)",
    "wayland": "use --source x11 (XWayland/X11 session) or --virtual WxH",
    "xtest": "run on an X11 session with the XTEST extension and pass --display :N",
}


@dataclass(frozen=True, slots=True)
class DoctorProbe:
    name: str
    status: Status
    detail: str
    remedy: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "remedy": self.remedy}  # fmt: skip


_UINPUT_ACCESS = (
    'grant access: echo \'KERNEL=="uinput", GROUP="input", MODE="0660", '
    'OPTIONS+="static_node=uinput"\' | sudo tee /etc/udev/rules.d/99-wavry-uinput.rules && '
    "sudo udevadm control --reload && sudo udevadm trigger && sudo usermod -aG input $USER "
    "(then log in again)"
)


def _from_result(r: ProbeResult) -> DoctorProbe:
    if r.ok:
        return DoctorProbe(r.name, "ok", r.detail, "")
    remedy = r.remedy or _FALLBACK_REMEDY.get(r.name, "see docs/configuration.md")
    if r.name == "uinput" and "does not exist" in r.detail:
        remedy = (
            "load it: sudo modprobe uinput && echo uinput | sudo tee "
            f"/etc/modules-load.d/uinput.conf; {_UINPUT_ACCESS}"
        )
    elif r.name == "uinput":
        remedy = _UINPUT_ACCESS
    return DoctorProbe(r.name, "unavailable", r.detail, remedy)


def _run(cmd: list[str], timeout: float = 3.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


# ---------------------------------------------------------------------------- probes


def probe_decoders() -> list[ProbeResult]:
    import av

    out = []
    for codec, name in (("h264", "h264"), ("hevc", "hevc"), ("av1", "libdav1d")):
        try:
            av.CodecContext.create(name, "r")
        except (av.FFmpegError, ValueError) as exc:
            # FFmpeg's own AV1 decoder is the fallback when dav1d is missing
            if codec == "av1":
                try:
                    av.CodecContext.create("av1", "r")
                    out.append(ProbeResult("decoder-av1", True, "FFmpeg av1 decoder"))
                    continue
                except (av.FFmpegError, ValueError):
                    pass
            out.append(
                ProbeResult(
                    f"decoder-{codec}",
                    False,
                    f"no {name} decoder in PyAV's FFmpeg: {exc}",
                    "reinstall the PyAV wheel (pip install --force-reinstall av), which bundles "
                    "FFmpeg with h264/hevc/dav1d",
                )
            )
            continue
        out.append(ProbeResult(f"decoder-{codec}", True, f"{name} decoder available"))
    out.append(probe_hw_decode())
    return out


def probe_hw_decode() -> ProbeResult:
    """Hardware H.264 decode (`wavry connect --hwdecode auto`): which device, or why none."""
    import logging

    from wavry.media.decode import Decoder

    logging.getLogger("wavry.decode").disabled = True  # the probe reports the reason itself
    try:
        info = Decoder("h264", hwaccel="auto").describe()
    finally:
        logging.getLogger("wavry.decode").disabled = False
    if info["device"] != "software":
        return ProbeResult("decoder-hw", True, f"h264 on {info['device']} (--hwdecode auto)")
    return ProbeResult(
        "decoder-hw",
        False,
        f"no hardware h264 decode: {info['fallback_reason']}",
        "a GPU with its driver (NVIDIA: CUDA; Intel/AMD: VA-API /dev/dri) is needed; "
        "software decode is used meanwhile",
    )


def probe_input_portal() -> ProbeResult:
    name = "input-portal"
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS") and not os.path.exists(
        f"/run/user/{os.getuid()}/bus"
    ):
        return ProbeResult(
            name,
            False,
            "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset)",
            "run inside a desktop session (or `dbus-run-session -- wavry host ...`) with "
            "xdg-desktop-portal and a RemoteDesktop backend (xdg-desktop-portal-gnome/-kde)",
        )
    gdbus = shutil.which("gdbus")
    if gdbus is None:
        return ProbeResult(
            name, False, "gdbus not found", "apt install libglib2.0-bin (provides gdbus)"
        )
    r = _run([gdbus, "introspect", "--session", "--dest", "org.freedesktop.portal.Desktop",
              "--object-path", "/org/freedesktop/portal/desktop"])  # fmt: skip
    if r.returncode != 0:
        return ProbeResult(
            name,
            False,
            f"xdg-desktop-portal not reachable: {(r.stderr or r.stdout).strip()[:160]}",
            "apt install xdg-desktop-portal xdg-desktop-portal-gnome (or -kde) and log in to "
            "a desktop session",
        )
    if "org.freedesktop.portal.RemoteDesktop" not in r.stdout:
        return ProbeResult(
            name,
            False,
            "the portal has no RemoteDesktop interface",
            "install a portal backend with RemoteDesktop: xdg-desktop-portal-gnome or -kde",
        )
    return ProbeResult(name, True, "xdg-desktop-portal RemoteDesktop available")


def probe_audio() -> list[ProbeResult]:
    out = []
    pactl, pwcli = shutil.which("pactl"), shutil.which("pw-cli")
    if pactl is None and pwcli is None:
        out.append(
            ProbeResult(
                "audio-server",
                False,
                "neither pactl (PulseAudio/pipewire-pulse) nor pw-cli (PipeWire) is installed",
                "apt install pipewire pipewire-pulse wireplumber pulseaudio-utils, then "
                "systemctl --user enable --now pipewire pipewire-pulse wireplumber",
            )
        )
    elif pactl is not None:
        r = _run([pactl, "info"])
        if r.returncode == 0:
            server = next(
                (ln.split(":", 1)[1].strip() for ln in r.stdout.splitlines()
                 if ln.startswith("Server Name")), "?",
            )  # fmt: skip
            out.append(ProbeResult("audio-server", True, f"pactl reaches {server}"))
        else:
            out.append(
                ProbeResult(
                    "audio-server",
                    False,
                    f"pactl is installed but no sound server answers: {r.stderr.strip()[:120]}",
                    "systemctl --user start pipewire pipewire-pulse wireplumber "
                    "(or `pulseaudio --start`)",
                )
            )
    else:
        r = _run([str(pwcli), "info", "0"])
        ok = r.returncode == 0
        out.append(
            ProbeResult(
                "audio-server",
                ok,
                "pw-cli reaches PipeWire" if ok else "pw-cli cannot reach PipeWire",
                "" if ok else "systemctl --user start pipewire wireplumber",
            )
        )
    # open the system-mix capture and the default output for a moment (each says what to fix)
    from wavry.platform.audio_probe import probe_capture, probe_playback

    out += [probe_capture(), probe_playback()]
    import av

    if "libopus" in av.codecs_available:
        out.append(ProbeResult("audio-opus", True, "libopus encoder/decoder in PyAV"))
    else:
        out.append(
            ProbeResult(
                "audio-opus",
                False,
                "PyAV's FFmpeg has no libopus",
                "pip install --force-reinstall av (the PyAV wheels bundle libopus)",
            )
        )
    return out


def probe_clipboard(display: str | None = None) -> ProbeResult:
    name = "clipboard"
    if os.environ.get("WAYLAND_DISPLAY") and not (display or os.environ.get("DISPLAY")):
        from wavry.platform import wlclipboard
        from wavry.platform.mutter import probe_mutter

        if probe_mutter().ok:
            return ProbeResult(
                name, True, "GNOME clipboard through Mutter's remote-desktop session, change-driven"
            )

        return wlclipboard.probe()  # change-driven (data-control) or polling, and why
    dname = display or os.environ.get("DISPLAY")
    if not dname:
        return ProbeResult(
            name,
            False,
            "no X display (DISPLAY unset) and no Wayland session",
            "run in a desktop session or pass --display :N (X11 CLIPBOARD selection)",
        )
    from wavry.platform.xdisplay import XDisplayError, open_display

    try:
        d = open_display(dname, None)
    except XDisplayError as exc:
        return ProbeResult(name, False, str(exc), "check DISPLAY and XAUTHORITY")
    try:
        atom = d.intern_atom("CLIPBOARD")
        owner = d.get_selection_owner(atom)
        fixes = d.query_extension("XFIXES") is not None
    finally:
        d.close()
    owner_text = "an owner" if owner else "no owner yet"
    how = "XFIXES selection events" if fixes else "polling (no XFIXES)"
    return ProbeResult(name, True, f"X11 CLIPBOARD selection on {dname} ({owner_text}); {how}")


def probe_network() -> list[ProbeResult]:
    out = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("0.0.0.0", 0))
            port = s.getsockname()[1]
        out.append(ProbeResult("udp-bind", True, f"bound a UDP socket (port {port})"))
    except OSError as exc:
        out.append(
            ProbeResult(
                "udp-bind",
                False,
                f"cannot bind UDP: {exc.strerror or exc}",
                "allow UDP sockets for this user/container (check seccomp/AppArmor policy) and "
                "open UDP 47800 in the firewall (e.g. sudo ufw allow 47800/udp)",
            )
        )
        return out
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, _DSCP_EF_TOS)
            tos = s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS)
        if tos == _DSCP_EF_TOS:
            out.append(ProbeResult("dscp", True, "IP_TOS DSCP EF (46) can be set on UDP"))
        else:
            out.append(
                ProbeResult(
                    "dscp",
                    False,
                    f"IP_TOS read back as {tos:#x}",
                    "no action needed for LAN use; routers may still re-mark DSCP",
                )
            )
    except OSError as exc:
        out.append(
            ProbeResult(
                "dscp",
                False,
                f"cannot set IP_TOS: {exc.strerror or exc}",
                "no action needed for LAN use; run outside restrictive sandboxes to mark DSCP",
            )
        )
    return out


def probe_port_mapping() -> ProbeResult:
    """A router that maps ports over UPnP-IGD (one more direct candidate; docs/connecting.md)."""
    from wavry.connectivity.portmap import probe_igd

    status = probe_igd(1000)
    if status.found:
        return ProbeResult(
            "port-mapping",
            True,
            f"{status.detail}; `wavry host --gateway` maps its port there (removed on exit)",
        )
    return ProbeResult(
        "port-mapping",
        False,
        f"no UPnP-IGD port mapping: {status.detail}",
        "optional: enable UPnP (IGD) on the router, or forward UDP 47800 to this machine; "
        "without it connections still punch through the NAT or use a relay",
    )


def probe_protocol_core() -> ProbeResult:
    """Whether the protocol core runs compiled (src/wavry/native.py): plain Python works, at
    about twice the CPU per datagram."""
    from wavry import native

    line = native.status()
    if native.compiled():
        return ProbeResult("protocol-core", True, line)
    if os.environ.get("WAVRY_PURE") == "1":
        remedy = "unset WAVRY_PURE to run the compiled core"
    else:
        remedy = (
            "optional: build it with `python -m wavry.native` in wavry's environment (needs "
            "gcc, python3-dev, mypy; docs/install.md)"
        )
    return ProbeResult("protocol-core", False, line, remedy)


def _wayland_probes() -> list[ProbeResult]:
    """Which Wayland path this desktop offers, and what the others need."""
    from wavry.platform.screencast import doctor_probes

    return doctor_probes()


def _guard(name: str, fn: Callable[[], list[ProbeResult]]) -> list[DoctorProbe]:
    try:
        return [_from_result(r) for r in fn()]
    except Exception as exc:  # a probe that breaks is a finding, not a crash
        return [
            DoctorProbe(
                name,
                "error",
                f"the probe itself failed: {type(exc).__name__}: {exc}",
                "report this with the output of `wavry doctor --json`",
            )
        ]


def _system_packages() -> list[ProbeResult]:
    from wavry.syspackages import probes

    return probes()


def run_doctor(display: str | None = None) -> list[DoctorProbe]:
    from wavry.media import probes

    groups: list[tuple[str, Callable[[], list[ProbeResult]]]] = [
        ("capture", lambda: probes.capture_probes(display)),
        ("encoders", probes.encoder_probes),
        ("decoders", probe_decoders),
        ("input", lambda: probes.input_probes(display)),
        ("input-portal", lambda: [probe_input_portal()]),
        ("wayland", _wayland_probes),
        ("audio", probe_audio),
        ("clipboard", lambda: [probe_clipboard(display)]),
        ("network", probe_network),
        ("port-mapping", lambda: [probe_port_mapping()]),
        ("protocol-core", lambda: [probe_protocol_core()]),
        ("system-packages", _system_packages),
    ]
    out: list[DoctorProbe] = []
    for name, fn in groups:
        out.extend(_guard(name, fn))
    return out


def to_json(results: list[DoctorProbe]) -> dict[str, Any]:
    from wavry.doctor_verdict import verdict

    return {
        "probes": [r.as_dict() for r in results],
        "verdict": [{"can": v.can, "text": v.text} for v in verdict(results)],
    }


def render_table(results: list[DoctorProbe]) -> str:
    """The probes as a table (multi-line details stay in their cell), then what they mean."""
    from wavry.doctor_verdict import verdict

    width = max(len(r.name) for r in results)
    pad = " " * (width + 2 + 11 + 2)

    def cell(text: str) -> str:
        return ("\n" + pad).join(line.rstrip() for line in text.strip().splitlines() or [""])

    lines = [f"{'probe':<{width}}  {'status':<11}  detail", "-" * (width + 2 + 11 + 2 + 40)]
    for r in results:
        lines.append(f"{r.name:<{width}}  {r.status:<11}  {cell(r.detail)}")
        if r.status != "ok" and r.remedy:
            lines.append(f"{pad}{cell('fix: ' + r.remedy)}")
    ok = sum(r.status == "ok" for r in results)
    lines.append(f"{ok}/{len(results)} probes ok")
    lines.append("")
    lines.append("This machine:")
    lines.extend(f"  {v.line()}" for v in verdict(results))
    return "\n".join(lines)
