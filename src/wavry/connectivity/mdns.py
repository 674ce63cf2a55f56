"""LAN discovery over mDNS/DNS-SD with zeroconf (docs/spec/CONTROL_PLANE.md §5).

A host advertises ``_wavry._udp.local.`` with its RIFT port and TXT ``v=1``, ``id=<wavry id>``,
``name=<device name>`` (:class:`LanAdvertiser`, a host service); `wavry discover` and `wavry
connect` without a target list what answers (:func:`discover`). An advertisement is only a
hint: the client then expects the advertised Wavry ID in the RIFT handshake, so a machine that
lies about its ID cannot get a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass
from typing import Any

from wavry.connectivity.candidates import interface_addresses

__all__ = ["SERVICE_TYPE", "LanAdvertiser", "LanHost", "discover"]

log = logging.getLogger("wavry.mdns")

SERVICE_TYPE = "_wavry._udp.local."
TXT_VERSION = "1"


@dataclass(frozen=True, slots=True)
class LanHost:
    name: str
    wavry_id: str
    addresses: tuple[str, ...]
    port: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "wavry_id": self.wavry_id,
            "addresses": list(self.addresses),
            "port": self.port,
        }


def _instance(name: str, wavry_id: str) -> str:
    # DNS-SD instance names are free text (≤ 63 bytes); the ID's start keeps two hosts with one
    # name apart
    label = f"{name[:40]} ({wavry_id[:8]})".replace(".", "-")
    return f"{label}.{SERVICE_TYPE}"


class LanAdvertiser:
    """Advertises a host while it runs (a host service: ``start(runtime)``, ``close()``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.advertised: LanHost | None = None
        self._zc: Any = None
        self._info: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, runtime: Any) -> None:
        """Registration probes the LAN for name conflicts (about 1.5 s): it runs in the
        background, the host does not wait for it."""
        bound = runtime.bound
        if bound is None:
            return
        host, port = str(bound[0]), int(bound[1])
        addrs = [host] if host not in ("0.0.0.0", "") else interface_addresses()
        if not addrs:
            return

        async def register() -> None:
            await self.advertise(runtime.identity.wavry_id, addrs, port)
            if self.advertised is not None:
                runtime.say(f"advertised on the LAN as {self.name!r} (mDNS {SERVICE_TYPE})")

        self._task = asyncio.create_task(register(), name="wavry-mdns")

    async def advertise(self, wavry_id: str, addrs: list[str], port: int) -> None:
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        info = AsyncServiceInfo(
            SERVICE_TYPE,
            _instance(self.name, wavry_id),
            addresses=[socket.inet_aton(a) for a in addrs],
            port=port,
            properties={"v": TXT_VERSION, "id": wavry_id, "name": self.name[:63]},
            server=f"{socket.gethostname().split('.')[0] or 'wavry'}.local.",
        )
        zc: Any = None
        try:
            zc = AsyncZeroconf(interfaces=addrs, ip_version=IPVersion.V4Only)
            await zc.async_register_service(info, allow_name_change=True)
        except BaseException as exc:  # no multicast here (a container without a LAN): not fatal
            log.info("mDNS advertisement failed: %r", exc)
            if zc is not None:
                with contextlib.suppress(Exception):
                    await zc.async_close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self._zc, self._info = zc, info
        self.advertised = LanHost(self.name, wavry_id, tuple(addrs), port)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        zc, info = self._zc, self._info
        self._zc = self._info = None
        if zc is None:
            return
        with contextlib.suppress(Exception):
            await zc.async_unregister_service(info)
        with contextlib.suppress(Exception):
            await zc.async_close()


def _decode(props: dict[bytes, bytes | None]) -> dict[str, str]:
    out = {}
    for k, v in props.items():
        with contextlib.suppress(UnicodeDecodeError):
            out[k.decode()] = (v or b"").decode()
    return out


async def discover(seconds: float = 1.0) -> list[LanHost]:
    """The Wavry hosts that answer on the LAN within ``seconds`` (sorted by name)."""
    from zeroconf import IPVersion, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    from wavry.rift.identity import InvalidWavryId, public_key_from_wavry_id

    addrs = interface_addresses()
    if not addrs:
        return []
    found: dict[str, LanHost] = {}
    pending: set[asyncio.Task[None]] = set()
    zc = AsyncZeroconf(interfaces=addrs, ip_version=IPVersion.V4Only)

    async def resolve(name: str) -> None:
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(zc.zeroconf, 1000):
            return
        txt = _decode(info.properties)
        wavry_id = txt.get("id", "")
        try:
            public_key_from_wavry_id(wavry_id)
        except InvalidWavryId:
            return  # not a Wavry host (or a broken one): nothing to connect to
        if txt.get("v") != TXT_VERSION or not info.port:
            return
        ips = tuple(info.parsed_addresses(IPVersion.V4Only))
        found[wavry_id] = LanHost(txt.get("name", "") or name.split(".")[0], wavry_id, ips,
                                  int(info.port))  # fmt: skip

    def changed(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        if state_change is ServiceStateChange.Added:
            task = asyncio.ensure_future(resolve(name))
            pending.add(task)
            task.add_done_callback(pending.discard)

    browser = AsyncServiceBrowser(zc.zeroconf, [SERVICE_TYPE], handlers=[changed])
    try:
        await asyncio.sleep(seconds)
        if pending:
            await asyncio.wait(pending, timeout=1.0)
    finally:
        await browser.async_cancel()
        await zc.async_close()
    return sorted(found.values(), key=lambda h: (h.name, h.wavry_id))
