"""Network-namespace harness: two namespaces joined by a veth pair, with tbf rate limits.

Everything (addresses 10.77.<n>.1/.2, the veth devices, the qdiscs) lives only inside the
namespaces this module creates; nothing is added to the host's own network namespace. Needs
root (CAP_NET_ADMIN + CAP_SYS_ADMIN), `ip` and `tc`. No netem is assumed: delay and loss belong
to the userspace proxy (impair.py); here the kernel does the rate limiting.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

Side = Literal["a", "b"]
SIDES: tuple[Side, Side] = ("a", "b")
_DEV = {"a": "wva", "b": "wvb"}
_counter = itertools.count(1)
_STALE_RE = re.compile(r"^wv(\d+)n\d+[abp]$")


class NetnsError(RuntimeError):
    """A namespace, link or qdisc command failed."""


@dataclass(frozen=True, slots=True)
class Tbf:
    """Token-bucket filter on a device's egress.

    burst_bytes=None picks max(3200, 4 ms of tokens); give either limit_bytes or latency_ms
    (the queue size in time at the configured rate; default 50 ms).
    """

    rate_kbps: float
    burst_bytes: int | None = None
    limit_bytes: int | None = None
    latency_ms: float = 50.0

    def __post_init__(self) -> None:
        if not self.rate_kbps > 0:
            raise ValueError(f"rate_kbps must be > 0, got {self.rate_kbps!r}")
        if self.burst_bytes is not None and self.burst_bytes < 1600:
            raise ValueError("burst_bytes must be >= 1600 (one full-size frame)")
        if self.limit_bytes is not None and self.limit_bytes <= 0:
            raise ValueError("limit_bytes must be > 0")
        if not self.latency_ms > 0:
            raise ValueError("latency_ms must be > 0")

    @property
    def burst(self) -> int:
        if self.burst_bytes is not None:
            return self.burst_bytes
        return max(3200, int(self.rate_kbps * 1000 / 8 * 0.004))

    def tc_args(self) -> list[str]:
        """Arguments after `tbf` for `tc qdisc add|change|replace`."""
        args = ["rate", f"{round(self.rate_kbps * 1000)}bit", "burst", str(self.burst)]
        if self.limit_bytes is not None:
            return [*args, "limit", str(self.limit_bytes)]
        return [*args, "latency", f"{round(self.latency_ms * 1000)}us"]


def _run(argv: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"{' '.join(argv)}: {exc}") from exc
    if proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join("/run/netns", name)) or os.path.exists(
        os.path.join("/var/run/netns", name)
    )


def probe() -> tuple[bool, str]:
    """Check that namespaces, veth and tbf work here; never raises."""
    if os.name != "posix" or not os.path.isdir("/proc/self/ns"):
        return False, "network namespaces need Linux"
    if os.geteuid() != 0:
        return False, "network namespaces need root (run as root or skip netns tests)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return False, f"`{tool}` not found (install iproute2)"
    name = f"wv{os.getpid()}n{next(_counter)}p"
    try:
        _run(["ip", "netns", "add", name])
    except NetnsError as exc:
        return False, f"cannot create a network namespace: {exc}"
    try:
        _run(["ip", "-n", name, "link", "add", "wva", "type", "veth", "peer", "name", "wvb"])
        _run(["tc", "-n", name, "qdisc", "add", "dev", "wva", "root", "tbf", *Tbf(1000).tc_args()])
    except NetnsError as exc:
        return False, f"veth/tbf unavailable: {exc}"
    finally:
        with contextlib.suppress(NetnsError):
            _run(["ip", "netns", "del", name])
    return True, "ok: namespaces, veth and tbf available"


def cleanup_stale() -> list[str]:
    """Delete namespaces left behind by dead processes of this harness; return their names."""
    try:
        names = _run(["ip", "netns", "list"]).stdout.split()
    except NetnsError:
        return []
    removed = []
    for name in names:
        m = _STALE_RE.match(name)
        if m is None or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        try:
            _run(["ip", "netns", "del", name])
            removed.append(name)
        except NetnsError:
            pass
    return removed


class NetnsPair:
    """Namespaces `a` and `b` joined by veth (10.77.<subnet>.1 in a, .2 in b), tbf on egress.

    Use as a context manager; the namespaces are always deleted on exit.
    """

    def __init__(
        self,
        tbf_a: Tbf | None = None,
        tbf_b: Tbf | None = None,
        *,
        subnet: int | None = None,
        mtu: int = 1500,
    ) -> None:
        k = next(_counter)
        self.subnet = subnet if subnet is not None else (k - 1) % 254 + 1
        if not 0 <= self.subnet <= 255:
            raise ValueError("subnet must be in 0..255")
        pid = os.getpid()
        self.names: dict[Side, str] = {"a": f"wv{pid}n{k}a", "b": f"wv{pid}n{k}b"}
        self.mtu = mtu
        self._tbf: dict[Side, Tbf | None] = {"a": tbf_a, "b": tbf_b}
        self._procs: list[subprocess.Popen[Any]] = []
        self._created = False

    def __enter__(self) -> NetnsPair:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ns(self, side: Side) -> str:
        return self.names[_side(side)]

    def dev(self, side: Side) -> str:
        """Name of the veth end inside `side`'s namespace."""
        return _DEV[_side(side)]

    def addr(self, side: Side) -> str:
        return f"10.77.{self.subnet}.{1 if _side(side) == 'a' else 2}"

    def tbf(self, side: Side) -> Tbf | None:
        return self._tbf[_side(side)]

    def create(self) -> NetnsPair:
        """Create namespaces, veth, addresses and qdiscs; on failure undo everything."""
        if self._created:
            return self
        self._created = True
        try:
            for side in SIDES:
                _run(["ip", "netns", "add", self.names[side]])
            a, b = self.names["a"], self.names["b"]
            mtu = str(self.mtu)
            link = ["link", "add", "wva", "mtu", mtu, "type", "veth"]
            _run(["ip", "-n", a, *link, "peer", "name", "wvb", "mtu", mtu, "netns", b])
            for side in SIDES:
                ns, dev = self.names[side], _DEV[side]
                _run(["ip", "-n", ns, "addr", "add", f"{self.addr(side)}/24", "dev", dev])
                _run(["ip", "-n", ns, "link", "set", "lo", "up"])
                _run(["ip", "-n", ns, "link", "set", dev, "up"])
                cfg = self._tbf[side]
                if cfg is not None:
                    self._qdisc(side, "add", cfg)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Kill processes started with popen() and delete both namespaces (idempotent)."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._procs.clear()
        for name in self.names.values():
            if _netns_exists(name):
                with contextlib.suppress(NetnsError):
                    _run(["ip", "netns", "del", name])
        self._created = False

    def set_tbf(self, side: Side, cfg: Tbf | None) -> None:
        """Install, replace or (None) remove the tbf qdisc on `side`'s egress."""
        side = _side(side)
        if cfg is None:
            if self._tbf[side] is not None:
                _run(["tc", "-n", self.names[side], "qdisc", "del", "dev", _DEV[side], "root"])
        else:
            self._qdisc(side, "replace", cfg)
        self._tbf[side] = cfg

    def set_rate(self, side: Side, kbps: float) -> None:
        """Change the tbf rate mid-run (`tc qdisc change`); adds a tbf if there is none.

        The bucket never shrinks: veth hands tbf whole GSO skbs (several datagrams), and tbf
        queues one whole when it fits the bucket at enqueue time. A smaller bucket afterwards
        can never hold enough tokens for it, and the link stalls until the next change (seen
        as 6 s of silence in capacity-steps at 8 → 4 Mbit/s)."""
        side = _side(side)
        cur = self._tbf[side]
        if cur is None:
            self.set_tbf(side, Tbf(kbps))
            return
        burst = max(cur.burst, Tbf(kbps).burst)
        cfg = replace(cur, rate_kbps=kbps, burst_bytes=burst)
        self._qdisc(side, "change", cfg)
        self._tbf[side] = cfg

    def qdisc_stats(self, side: Side) -> str:
        """`tc -s qdisc show` output for `side`'s veth end."""
        side = _side(side)
        return _run(["tc", "-s", "-n", self.names[side], "qdisc", "show", "dev", _DEV[side]]).stdout

    def command(self, side: Side, argv: Sequence[str]) -> list[str]:
        """The argv that runs `argv` inside `side`'s namespace."""
        return ["ip", "netns", "exec", self.ns(side), *argv]

    def run(
        self,
        side: Side,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in `side`'s namespace and capture its text output."""
        self._require()
        return subprocess.run(
            self.command(side, argv),
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            input=input,
        )

    def popen(self, side: Side, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a command in `side`'s namespace; it is killed on close()."""
        self._require()
        proc: subprocess.Popen[Any] = subprocess.Popen(self.command(side, argv), **kwargs)
        self._procs.append(proc)
        return proc

    def _require(self) -> None:
        if not self._created:
            raise NetnsError("namespaces not created (use `with NetnsPair() as pair:`)")

    def _qdisc(self, side: Side, verb: str, cfg: Tbf) -> None:
        dev = _DEV[side]
        _run(
            ["tc", "-n", self.names[side], "qdisc", verb, "dev", dev, "root", "tbf", *cfg.tc_args()]
        )


def _side(side: str) -> Side:
    if side == "a":
        return "a"
    if side == "b":
        return "b"
    raise ValueError(f"side must be 'a' or 'b', got {side!r}")
