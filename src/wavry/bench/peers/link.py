"""The bottleneck path of `wavry bench peers`: servers in one network namespace, viewers in
another, joined by a link of ``rate_kbps`` (tbf, each direction) and ``delay_ms`` one way (each
direction; :mod:`wavry.bench.peers.link_forward` moves the packets).

Namespaces are named ``peers-<pid>-srv`` / ``peers-<pid>-view`` and deleted on exit (and, when
a run was killed, by the next run). Nothing is added to this machine's own namespace. Needs root,
``ip`` and ``tc`` (iproute2) and /dev/net/tun.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from typing import Any

from wavry.bench.netlab.netns import Tbf
from wavry.bench.peers.procs import Proc
from wavry.bench.peers.stage import NotRunnable

__all__ = ["BottleneckLink", "link_missing"]

DEVICE = "peers0"
_NS_RE = re.compile(r"^peers-(\d+)-(srv|view)$")
_SUBNET = "10.97.0"


def _ip(*args: str) -> str:
    try:
        proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotRunnable(f"ip {' '.join(args)}: {exc}") from exc
    if proc.returncode != 0:
        raise NotRunnable(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _tc(*args: str) -> str:
    proc = subprocess.run(["tc", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise NotRunnable(f"tc {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def link_missing() -> str | None:
    """Why the bottleneck cannot be built here, or None."""
    if os.geteuid() != 0:
        return "the bottleneck path needs root (network namespaces, tun, tc)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found (apt-get install iproute2)"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing (no tun support)"
    # root and the tools are not enough (e.g. in a chroot, `ip netns exec` cannot remount /):
    # the lab's own probe makes a namespace, a veth pair and a tbf queue and says what failed
    from wavry.bench.netlab.netns import probe

    ok, why = probe()
    return None if ok else why


def cleanup_stale() -> None:
    """Delete namespaces of earlier runs whose process is gone."""
    with contextlib.suppress(NotRunnable):
        for name in _ip("netns", "list").split():
            m = _NS_RE.match(name)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                with contextlib.suppress(NotRunnable):
                    _ip("netns", "del", name)


class BottleneckLink:
    def __init__(self, rate_kbps: float = 20_000.0, delay_ms: float = 10.0, queue_ms: float = 50):
        self.rate_kbps, self.delay_ms, self.queue_ms = rate_kbps, delay_ms, queue_ms
        pid = os.getpid()
        self.server_ns = f"peers-{pid}-srv"
        self.viewer_ns = f"peers-{pid}-view"
        self.server_addr = f"{_SUBNET}.1"
        self.viewer_addr = f"{_SUBNET}.2"
        self._forwarder: Proc | None = None

    def __enter__(self) -> BottleneckLink:
        why = link_missing()
        if why is not None:
            raise NotRunnable(why)
        cleanup_stale()
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create(self) -> None:
        for ns in (self.server_ns, self.viewer_ns):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        fwd = Proc(
            "link",
            [
                sys.executable,
                "-m",
                "wavry.bench.peers.link_forward",
                *("--server-ns", self.server_ns, "--viewer-ns", self.viewer_ns),
                *("--device", DEVICE, "--delay-ms", str(self.delay_ms)),
            ],
            dict(os.environ),
            stdout_pipe=True,
        )
        self._forwarder = fwd
        assert fwd.popen.stdout is not None
        line = fwd.popen.stdout.readline().strip()
        if line != "ready":
            raise NotRunnable(f"link forwarder: {line or fwd.log_tail()}")
        tbf = Tbf(self.rate_kbps, latency_ms=self.queue_ms)
        for ns, local, remote in (
            (self.server_ns, self.server_addr, self.viewer_addr),
            (self.viewer_ns, self.viewer_addr, self.server_addr),
        ):
            _ip("-n", ns, "addr", "add", local, "peer", remote, "dev", DEVICE)
            _ip("-n", ns, "link", "set", DEVICE, "up", "mtu", "1500")
            _tc("-n", ns, "qdisc", "add", "dev", DEVICE, "root", "tbf", *tbf.tc_args())

    def counters(self) -> dict[str, Any]:
        """Bytes, packets and drops the tbf of each direction has seen so far."""
        out: dict[str, Any] = {}
        for direction, ns in (("to_viewer", self.server_ns), ("to_server", self.viewer_ns)):
            text = _tc("-s", "-n", ns, "qdisc", "show", "dev", DEVICE)
            m = re.search(r"Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)", text)
            if m:
                out[direction] = {
                    "bytes": int(m.group(1)),
                    "packets": int(m.group(2)),
                    "dropped": int(m.group(3)),
                }
        return out

    def settings(self) -> dict[str, Any]:
        return {
            "rate_kbps": self.rate_kbps,
            "delay_ms_each_way": self.delay_ms,
            "tbf_queue_ms": self.queue_ms,
            "how": "tbf on each tun device's egress; a forwarding process adds the delay",
        }

    def close(self) -> None:
        if self._forwarder is not None:
            self._forwarder.stop()
            self._forwarder.remove_log()
            self._forwarder = None
        for ns in (self.server_ns, self.viewer_ns):
            with contextlib.suppress(NotRunnable):
                _ip("netns", "del", ns)
