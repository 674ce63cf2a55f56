"""A NAT test bed in network namespaces: an "internet" with the control plane, two home routers
with real Linux NAT (nftables, conntrack), a host behind one and a client behind the other.

```
      host 192.168.1.2 ─┐                                 ┌─ client 192.168.2.2
  lan-client 192.168.1.3┴ router A ── internet ── router B
                 WAN 11.200.1.2    11.200.0.1      WAN 11.200.2.2
                               (gateway, STUN, relay)
```

Each router masquerades its LAN behind its WAN address and drops unsolicited inbound traffic.
Its NAT is one of :class:`NatType`:

- ``port_restricted``: ``masquerade`` keeping the source port (endpoint-independent mapping);
  inbound only as conntrack replies, so filtered by remote address *and* port — what most
  Linux/OpenWrt routers do;
- ``address_restricted``: the same mapping, plus inbound from *any* port of an address the LAN
  host has sent to from that port (an nftables set of (remote address, port) fed from the
  forward path, and a DNAT to the exposed LAN host);
- ``symmetric``: ``masquerade random`` — a new public port for every new destination.

The "internet" uses 11.200.0.0/16, a range that is public (a UPnP router refuses to map ports
behind a private WAN address) but never leaves these namespaces. Connection accounting is on in
the routers, so a test reads from their conntrack which way the bytes really went
(:meth:`NatBed.flows`). :meth:`NatBed.cut_direct` drops traffic between the two
routers in the internet (the control plane stays reachable). Every namespace, link and nftables
table is named ``reach-…`` and removed on close. Needs root, ``ip``, ``nft`` and ``conntrack``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

__all__ = ["SERVICES", "Flow", "NatBed", "NatBedError", "NatType", "Site", "probe"]

Site = Literal["inet", "ra", "rb", "host", "client", "lan"]
PREFIX = "reach-"
SERVICES = "11.200.0.1"
WAN = {"ra": "11.200.1.2", "rb": "11.200.2.2"}
INET_SIDE = {"ra": "11.200.1.1", "rb": "11.200.2.1"}
LAN_NET = {"ra": "192.168.1", "rb": "192.168.2"}
ADDR = {"host": "192.168.1.2", "lan": "192.168.1.3", "client": "192.168.2.2"}
_counter = itertools.count(1)
_STALE = re.compile(r"^reach-(\d+)x\d+-")


class NatBedError(RuntimeError):
    """A namespace, link or nftables command failed."""


class NatType(StrEnum):
    port_restricted = "port_restricted"
    address_restricted = "address_restricted"
    symmetric = "symmetric"
    none = "none"  # routing without NAT (a public address)


def _run(argv: Sequence[str], *, input: str | None = None, check: bool = True) -> str:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, input=input)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NatBedError(f"{' '.join(argv)}: {exc}") from exc
    if check and proc.returncode != 0:
        raise NatBedError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def probe() -> tuple[bool, str]:
    """Whether this machine can build the bed (never raises)."""
    if os.name != "posix" or not os.path.isdir("/proc/self/ns"):
        return False, "network namespaces need Linux"
    if os.geteuid() != 0:
        return False, "the NAT test bed needs root"
    for tool in ("ip", "nft", "conntrack"):
        if shutil.which(tool) is None:
            package = {"ip": "iproute2", "nft": "nftables", "conntrack": "conntrack"}[tool]
            return False, f"`{tool}` not found (apt-get install {package})"
    return True, "ok"


def cleanup_stale() -> list[str]:
    """Delete namespaces of beds whose process is gone."""
    removed = []
    for name in _run(["ip", "netns", "list"], check=False).split():
        m = _STALE.match(name)
        if m is None or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        with contextlib.suppress(NatBedError):
            _run(["ip", "netns", "del", name])
            removed.append(name)
    return removed


@dataclass(frozen=True, slots=True)
class Flow:
    """One UDP conntrack entry of a router: original direction src → dst, with counters."""

    src: tuple[str, int]
    dst: tuple[str, int]
    packets: int
    bytes: int
    reply_packets: int
    reply_bytes: int


_FLOW = re.compile(
    r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) (?:\[UNREPLIED\] )?packets=(\d+) bytes=(\d+)"
    r" .*?src=\S+ dst=\S+ sport=\d+ dport=\d+ (?:\[\w+\] )?packets=(\d+) bytes=(\d+)"
)


def _nat_rules(kind: NatType, exposed: str) -> str:
    """The router's nftables table (WAN `reach-wan`, LAN side anything else)."""
    if kind is NatType.none:
        return f"""
table ip {PREFIX}nat {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
  }}
}}
"""
    masq = "masquerade random" if kind is NatType.symmetric else "masquerade"
    restricted = kind is NatType.address_restricted
    peers = (
        "  set peers { type ipv4_addr . inet_service; flags dynamic,timeout; timeout 3m; }\n"
        if restricted
        else ""
    )
    learn = (
        '    iifname != "reach-wan" meta l4proto udp update @peers { ip daddr . udp sport }\n'
        if restricted
        else ""
    )
    dnat = (
        f'    iifname "reach-wan" meta l4proto udp ip saddr . udp dport @peers dnat to {exposed}\n'
        if restricted
        else ""
    )
    # forwarded on purpose (the address-restricted DNAT, or a UPnP port mapping)
    accept_dnat = '    iifname "reach-wan" ct status dnat accept\n'
    return f"""
table ip {PREFIX}nat {{
{peers}  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
{dnat}  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "reach-wan" {masq}
  }}
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
{learn}    iifname != "reach-wan" accept
{accept_dnat}  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname "reach-wan" ct state established,related accept
    iifname "reach-wan" meta l4proto udp drop
  }}
}}
"""


class NatBed:
    """The bed (use as a context manager). ``host_nat``/``client_nat`` pick each router's NAT."""

    def __init__(
        self,
        host_nat: NatType = NatType.port_restricted,
        client_nat: NatType = NatType.port_restricted,
        *,
        lan_client: bool = False,
    ) -> None:
        tag = f"{PREFIX}{os.getpid()}x{next(_counter)}-"
        self.ns: dict[Site, str] = {
            "inet": tag + "inet",
            "ra": tag + "ra",
            "rb": tag + "rb",
            "host": tag + "host",
            "client": tag + "client",
        }
        if lan_client:
            self.ns["lan"] = tag + "lan"
        self.nat: dict[str, NatType] = {"ra": host_nat, "rb": client_nat}
        self._procs: list[subprocess.Popen[Any]] = []
        self._created = False
        self.cut = False

    # ---- life ----------------------------------------------------------------------------

    def __enter__(self) -> NatBed:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self) -> NatBed:
        if self._created:
            return self
        self._created = True
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        for name in self.ns.values():
            _run(["ip", "netns", "add", name])
            _run(["ip", "-n", name, "link", "set", "lo", "up"])
        inet = self.ns["inet"]
        routers: tuple[Literal["ra", "rb"], ...] = ("ra", "rb")
        # the control plane's address (no dummy devices in every kernel: on loopback)
        _run(["ip", "-n", inet, "addr", "add", f"{SERVICES}/32", "dev", "lo"])
        for router in routers:
            rns = self.ns[router]
            side = "reach-" + router[1]
            self._veth(inet, side, rns, "reach-wan")
            _run(["ip", "-n", inet, "addr", "add", f"{INET_SIDE[router]}/24", "dev", side])
            _run(["ip", "-n", rns, "addr", "add", f"{WAN[router]}/24", "dev", "reach-wan"])
            _run(["ip", "-n", rns, "route", "add", "default", "via", INET_SIDE[router]])
            _run(["ip", "-n", rns, "link", "add", "reach-br", "type", "bridge"])
            _run(["ip", "-n", rns, "addr", "add", f"{LAN_NET[router]}.1/24", "dev", "reach-br"])
            _run(["ip", "-n", rns, "link", "set", "reach-br", "up"])
            self._forwarding(rns)
        self._forwarding(inet)
        for site, router in (("host", "ra"), ("client", "rb"), ("lan", "ra")):
            if site not in self.ns:
                continue
            rns, ns = self.ns[router], self.ns[site]
            port = "reach-p" + site[0]
            self._veth(rns, port, ns, "reach-eth")
            _run(["ip", "-n", rns, "link", "set", port, "master", "reach-br"])
            _run(["ip", "-n", ns, "addr", "add", f"{ADDR[site]}/24", "dev", "reach-eth"])
            _run(["ip", "-n", ns, "route", "add", "default", "via", f"{LAN_NET[router]}.1"])
        for router in routers:
            if self.nat[router] is NatType.none:  # a public LAN: the internet routes to it
                _run(["ip", "-n", inet, "route", "add", f"{LAN_NET[router]}.0/24", "via",
                      WAN[router]])  # fmt: skip
            self.set_nat(router, self.nat[router])
            # byte and packet counters per conntrack entry (the module is loaded by now)
            self._sysctl(self.ns[router], "net.netfilter.nf_conntrack_acct", "1")
        _run(["ip", "netns", "exec", inet, "nft", "-f", "-"], input=self._cut_table())

    def _veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
        _run(["ip", "-n", ns_a, "link", "add", name_a, "type", "veth", "peer", "name", name_b,
              "netns", ns_b])  # fmt: skip
        _run(["ip", "-n", ns_a, "link", "set", name_a, "up"])
        _run(["ip", "-n", ns_b, "link", "set", name_b, "up"])

    def _sysctl(self, ns: str, key: str, value: str) -> None:
        _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}"])

    def _forwarding(self, ns: str) -> None:
        self._sysctl(ns, "net.ipv4.ip_forward", "1")

    def _cut_table(self) -> str:
        return (
            f"table ip {PREFIX}cut {{\n  chain forward {{\n"
            "    type filter hook forward priority filter; policy accept;\n  }\n}\n"
        )

    def close(self) -> None:
        """Kill the processes started here and delete every namespace (idempotent)."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        self._procs.clear()
        for name in self.ns.values():
            if os.path.exists(f"/run/netns/{name}"):
                with contextlib.suppress(NatBedError):
                    _run(["ip", "netns", "del", name])
        self._created = False

    # ---- knobs ---------------------------------------------------------------------------

    def set_nat(self, router: Literal["ra", "rb"], kind: NatType) -> None:
        """(Re)install a router's NAT; existing conntrack entries are flushed with it."""
        ns = self.ns[router]
        _run(["ip", "netns", "exec", ns, "nft", "delete", "table", "ip", f"{PREFIX}nat"],
             check=False)  # fmt: skip
        exposed = ADDR["host"] if router == "ra" else ADDR["client"]
        _run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=_nat_rules(kind, exposed))
        self.nat[router] = kind
        self.flush_conntrack(router)

    def cut_direct(self, cut: bool = True) -> None:
        """Drop (or stop dropping) everything between the two routers; the control plane in
        the internet stays reachable from both."""
        self._nft("inet", "flush", "chain", "ip", f"{PREFIX}cut", "forward")
        if cut:
            for a, b in (("ra", "rb"), ("rb", "ra")):
                for src in (WAN[a], f"{LAN_NET[a]}.0/24"):
                    self._nft("inet", "add", "rule", "ip", f"{PREFIX}cut", "forward",
                              "ip", "saddr", src, "ip", "daddr", WAN[b], "drop")  # fmt: skip
        self.cut = cut

    def _nft(self, site: Site, *args: str, input: str | None = None) -> None:
        _run(["ip", "netns", "exec", self.ns[site], "nft", *args], input=input)

    def flush_conntrack(self, router: Literal["ra", "rb"]) -> None:
        _run(["ip", "netns", "exec", self.ns[router], "conntrack", "-F"], check=False)

    def start_upnp(self, router: Literal["ra", "rb"], workdir: str) -> subprocess.Popen[Any]:
        """Run miniupnpd (UPnP-IGD and NAT-PMP) on ``router`` for its LAN, with its nftables
        chains in a table of ours; returns the process (stopped on close())."""
        if shutil.which("miniupnpd") is None:
            raise NatBedError("miniupnpd not found (apt-get install miniupnpd-nftables)")
        table = f"{PREFIX}upnp"
        self._nft(router, "-f", "-", input=f"""
table inet {table} {{
  chain forward {{ type filter hook forward priority -1; policy accept; jump miniupnpd; }}
  chain miniupnpd {{ }}
  chain prerouting {{ type nat hook prerouting priority -101; policy accept;
    jump prerouting_miniupnpd; }}
  chain postrouting {{ type nat hook postrouting priority 99; policy accept;
    jump postrouting_miniupnpd; }}
  chain prerouting_miniupnpd {{ }}
  chain postrouting_miniupnpd {{ }}
}}
""")  # fmt: skip
        lan = f"{LAN_NET[router]}.0/24"
        conf = os.path.join(workdir, f"miniupnpd-{router}.conf")
        lines = [
            "ext_ifname=reach-wan", "listening_ip=reach-br", "port=0", "enable_natpmp=yes",
            "enable_upnp=yes", "secure_mode=yes", "system_uptime=yes",
            "uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b",
            f"upnp_table_name={table}", f"upnp_nat_table_name={table}",
            "upnp_forward_chain=miniupnpd", "upnp_nat_chain=prerouting_miniupnpd",
            "upnp_nat_postrouting_chain=postrouting_miniupnpd",
            f"allow 1024-65535 {lan} 1024-65535", "deny 0-65535 0.0.0.0/0 0-65535",
        ]  # fmt: skip
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        pidfile = os.path.join(workdir, f"miniupnpd-{router}.pid")
        return self.popen(
            router,
            ["miniupnpd", "-d", "-f", conf, "-P", pidfile],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    # ---- observation ---------------------------------------------------------------------

    def flows(self, router: Literal["ra", "rb"]) -> list[Flow]:
        """The router's UDP conntrack entries with their byte and packet counters."""
        out = _run(["ip", "netns", "exec", self.ns[router], "conntrack", "-L", "-p", "udp"],
                   check=False)  # fmt: skip
        flows = []
        for line in out.splitlines():
            m = _FLOW.search(line)
            if m is None:
                continue
            flows.append(
                Flow(
                    (m.group(1), int(m.group(3))),
                    (m.group(2), int(m.group(4))),
                    int(m.group(5)),
                    int(m.group(6)),
                    int(m.group(7)),
                    int(m.group(8)),
                )
            )
        return flows

    def direct_bytes(self, router: Literal["ra", "rb"]) -> int:
        """Bytes (both directions) the router passed straight to or from the other router."""
        other = WAN["rb" if router == "ra" else "ra"]
        return sum(
            f.bytes + f.reply_bytes for f in self.flows(router) if other in (f.src[0], f.dst[0])
        )

    def service_bytes(self, router: Literal["ra", "rb"], port: int) -> int:
        """Bytes (both directions) the router passed to or from the internet's ``port``
        (4000: the relay, 3478: STUN)."""
        return sum(
            f.bytes + f.reply_bytes
            for f in self.flows(router)
            if f.dst == (SERVICES, port) or f.src == (SERVICES, port)
        )

    # ---- processes -----------------------------------------------------------------------

    def command(self, site: Site, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns[site], *argv]

    def popen(self, site: Site, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` in ``site``'s namespace; it is stopped on close()."""
        proc: subprocess.Popen[Any] = subprocess.Popen(self.command(site, argv), **kwargs)
        self._procs.append(proc)
        return proc

    def run(
        self, site: Site, argv: Sequence[str], *, timeout: float = 60.0, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(site, argv), capture_output=True, text=True, timeout=timeout, **kwargs
        )

    @staticmethod
    def address(site: Site) -> str:
        if site == "inet":
            return SERVICES
        if site in ("ra", "rb"):
            return WAN[site]
        return ADDR[site]

    @staticmethod
    def wan(router: Literal["ra", "rb"]) -> str:
        return WAN[router]
