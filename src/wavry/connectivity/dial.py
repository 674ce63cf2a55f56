"""`wavry connect NAME`: find a host through the gateway and open a session to it (the client's
side of docs/spec/CONTROL_PLANE.md §6).

:func:`find_host` turns ``NAME`` (a host of this account) or ``USER/NAME`` (a host USER shared
with this account) into the host's Wavry ID from the gateway's host list; the session then
expects exactly that identity in the RIFT handshake. :class:`GatewayRoute` opens the session:
it binds the RIFT socket, gathers its candidates (interface addresses, the gateway's STUN answer
for that very socket), opens a signaling socket, sends ``connect`` and waits for the host's
``accept``, then starts the handshake on a :class:`~wavry.connectivity.routed.RoutedConnection`
whose path manager punches, falls back to a relay and migrates. The signaling socket stays open
for the session (relay grants, lease renewals, late candidates).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wavry.account.client import GatewayClient, GatewayError, HostEntry
from wavry.account.store import AccountStore
from wavry.connectivity.candidates import (
    Candidate,
    CandidateKind,
    host_candidates,
    parse_candidates,
)
from wavry.connectivity.paths import ClientPaths, PathChanged, RelayNeeded
from wavry.connectivity.relaypath import parse_grant
from wavry.connectivity.routed import RoutedConnection
from wavry.connectivity.signaling import Signaling, SignalingClosed, SignalingError
from wavry.rift.client import ClientSession
from wavry.rift.identity import Identity

__all__ = [
    "DialError",
    "GatewayRoute",
    "GatewayTarget",
    "HostUnavailable",
    "account_hosts",
    "find_host",
    "is_host_name",
    "sign_in",
]

log = logging.getLogger("wavry.dial")

STUN_TIMEOUT_S = 0.5


class DialError(ConnectionError):
    """The gateway could not introduce us to the host; the message says why and what to do."""


class HostUnavailable(DialError):
    """No host by that name on the account (``known`` False), or it is offline."""

    def __init__(self, message: str, known: bool) -> None:
        super().__init__(message)
        self.known = known


WAIT_POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class GatewayTarget:
    gateway_url: str
    token: str
    host: HostEntry
    #: a signaling socket opened while the host was looked up (the route takes it over)
    signaling: asyncio.Task[Signaling] | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        owner = f"{self.host.owner}/" if self.host.owner else ""
        return f"{owner}{self.host.name}"


def is_host_name(target: str) -> bool:
    """Could ``target`` name an account host (``NAME`` or ``USER/NAME``) rather than an
    address? An IP literal, ``HOST:PORT`` or a bracketed IPv6 address cannot."""
    import ipaddress

    text = target.strip()
    if not text or text.startswith("[") or ":" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return text.count("/") <= 1
    return False


#: tokens from device-key logins in this process, by (gateway, wavry_id): a gateway accepts
#: one device login per device and second
_device_tokens: dict[tuple[str, str], tuple[str, float]] = {}


async def device_token(gateway_url: str, identity: Identity, fresh: bool = False) -> str:
    """A token from a device-key login (reused within the process while it is valid)."""
    key = (gateway_url.rstrip("/"), identity.wavry_id)
    cached = _device_tokens.get(key)
    if cached is not None and not fresh and cached[1] - 60 > time.time():
        return cached[0]
    async with GatewayClient(gateway_url) as gw:
        try:
            res = await gw.device_login(identity)
        except GatewayError as exc:
            if exc.code != "invalid_device_signature":
                raise
            # one login per device and second: the next second is another timestamp
            await asyncio.sleep(1.05 - time.time() % 1.0)
            res = await gw.device_login(identity)
    _device_tokens[key] = (res.token, res.expires_at)
    return res.token


async def sign_in(gateway_url: str, identity: Identity) -> tuple[str, str]:
    """A token for ``gateway_url``: the saved sign-in when it is for this gateway and fresh, else
    a device-key login (this device registered there by `wavry login`)."""
    saved = AccountStore().for_gateway(gateway_url)
    if saved is not None:
        return saved.token, "saved"
    try:
        return await device_token(gateway_url, identity), "device"
    except GatewayError as exc:
        if exc.code == "unreachable":
            raise DialError(str(exc)) from None
        raise DialError(
            f"not signed in to {gateway_url}: run `wavry login {gateway_url} --login NAME` "
            f"first ({exc})"
        ) from None


async def find_host(
    gateway_url: str | None,
    target: str,
    identity: Identity,
    *,
    wait_s: float = 0.0,
    wait_unknown: bool = False,
    waiting: Callable[[str], None] | None = None,
) -> GatewayTarget:
    """The host named ``target`` on this account (or ``USER/NAME``, shared with it).

    A host that is offline (or, with ``wait_unknown``, not registered yet: it registers its
    name when it goes online) is waited for up to ``wait_s``, ``waiting`` told once."""
    if gateway_url is None:
        try:
            saved = AccountStore().load()
        except Exception as exc:
            raise DialError(str(exc)) from None
        if saved is None:
            raise DialError(
                f"{target!r} is not an address, and this device is not signed in to a gateway "
                "to look it up (wavry login URL --login NAME, or --gateway URL)"
            )
        gateway_url = saved.gateway_url
    token, _how = await sign_in(gateway_url, identity)
    # the signaling socket opens while the host list comes: a connection's set-up is the sum
    # of these round trips
    sig = asyncio.ensure_future(
        Signaling.open(gateway_url, token, identity.wavry_id, "client", timeout=10.0)
    )
    try:
        hosts = await account_hosts(gateway_url, token)
        if hosts is None:  # the token was revoked: a fresh device login then
            _drop(sig)
            with contextlib.suppress(GatewayError):
                token = await device_token(gateway_url, identity, fresh=True)
            sig = asyncio.ensure_future(
                Signaling.open(gateway_url, token, identity.wavry_id, "client", timeout=10.0)
            )
            hosts = await account_hosts(gateway_url, token)
        if hosts is None:
            raise DialError(
                f"the sign-in at {gateway_url} is no longer valid: run `wavry login` again"
            )
        deadline = time.monotonic() + wait_s
        while True:
            try:
                host = _pick_host(hosts, target, gateway_url)
                break
            except HostUnavailable as exc:
                if not (exc.known or wait_unknown) or time.monotonic() >= deadline:
                    raise
                if waiting is not None:
                    waiting(f"waiting up to {wait_s:g} s for host {target!r} to come online")
                    waiting = None
                await asyncio.sleep(WAIT_POLL_S)
                hosts = await account_hosts(gateway_url, token) or []
    except BaseException:
        _drop(sig)
        raise
    return GatewayTarget(gateway_url, token, host, sig)


_closing: set[asyncio.Future[None]] = set()


def _drop(task: asyncio.Task[Signaling]) -> None:
    """Close a signaling socket opened ahead that will not be used."""

    def closed(t: asyncio.Task[Signaling]) -> None:
        if not t.cancelled() and t.exception() is None:
            fut = asyncio.ensure_future(t.result().close())
            _closing.add(fut)
            fut.add_done_callback(_closing.discard)

    if task.done():
        closed(task)
    else:
        task.add_done_callback(closed)


def _pick_host(hosts: list[HostEntry], target: str, gateway_url: str) -> HostEntry:
    owner, _, name = target.rpartition("/")
    found = [
        h for h in hosts if h.name == name and (h.owner == owner if owner else not h.shared)
    ] or ([h for h in hosts if h.name == name and h.shared] if not owner else [])
    if not found:
        names = ", ".join(sorted(f"{h.owner}/{h.name}" if h.owner else h.name for h in hosts))
        raise HostUnavailable(
            f"no host named {target!r} at {gateway_url}"
            + (f" (this account may connect to: {names})" if names else " (no hosts yet)"),
            known=False,
        )
    if len(found) > 1:
        choices = ", ".join(f"{h.owner}/{h.name}" for h in found)
        raise DialError(f"{target!r} is ambiguous: say which one ({choices})")
    host = found[0]
    if not host.online:
        raise HostUnavailable(
            f"host {target!r} is offline (not connected to {gateway_url}): is `wavry host "
            f"--gateway {gateway_url}` running there?",
            known=True,
        )
    return host


async def account_hosts(gateway_url: str, token: str) -> list[HostEntry] | None:
    async with GatewayClient(gateway_url, token) as gw:
        try:
            return await gw.hosts()
        except GatewayError as exc:
            if exc.status == 401:
                return None
            raise DialError(str(exc)) from None


class GatewayRoute:
    """Opens a RIFT session to ``target`` through its gateway (see the module docstring)."""

    def __init__(
        self,
        target: GatewayTarget,
        identity: Identity,
        *,
        timeout: float = 10.0,
        on_path: Callable[[PathChanged], None] | None = None,
    ) -> None:
        self.target = target
        self.identity = identity
        self.timeout = timeout
        self.on_path = on_path
        #: told of every relay grant for the session (statistics)
        self.on_grant: Callable[[], None] | None = None
        self.session = uuid.uuid4()
        self.conn: RoutedConnection | None = None
        self.accepted_at: float | None = None
        self._sig: Signaling | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def address(self) -> str:
        return f"{self.target.label} (via {self.target.gateway_url})"

    async def open(self, session: ClientSession) -> RoutedConnection:
        """Bind, gather, ``connect``, wait for ``accept``, start the handshake."""
        log.debug("route open")
        conn = RoutedConnection(session, ClientPaths(self.session, time.monotonic()))
        conn.on_path = self.on_path
        conn.on_relay_needed = self._relay_needed
        conn.on_close.append(self._closed)
        self.conn = conn
        t0 = time.monotonic()
        try:
            bound = await conn.open_socket()
            ahead = self.target.signaling
            sig = await self._ahead() if ahead is not None else await self._signaling()
            self._sig = sig
            t1 = time.monotonic()
            candidates = await self._gather(conn, bound, sig)
            t2 = time.monotonic()
            try:
                await sig.connect(self.session, self.target.host.wavry_id, candidates)
                accept = await asyncio.wait_for(self._accept(sig), self.timeout)
            except SignalingClosed:
                if ahead is None:
                    raise
                # the socket opened ahead was replaced meanwhile (another socket of this
                # device and role): once more on a fresh one
                sig = self._sig = await self._signaling()
                await sig.connect(self.session, self.target.host.wavry_id, candidates)
                accept = await asyncio.wait_for(self._accept(sig), self.timeout)
            log.debug(
                "signaling %.1f ms, candidates %.1f ms, connect → accept %.1f ms",
                (t1 - t0) * 1000, (t2 - t1) * 1000, (time.monotonic() - t2) * 1000,
            )  # fmt: skip
        except SignalingError as exc:
            await conn.close("set-up failed")
            raise DialError(str(exc)) from None
        except TimeoutError:
            await conn.close("set-up failed")
            raise DialError(
                f"host {self.target.label!r} did not answer through the gateway within "
                f"{self.timeout:g} s"
            ) from None
        except BaseException:
            await conn.close("set-up failed")
            raise
        self.accepted_at = time.monotonic()
        conn.paths.accepted(parse_candidates(accept.get("candidates")), self.accepted_at)
        self._loop_task = asyncio.create_task(self._signal_loop(sig), name="wavry-signal")
        conn.begin()
        return conn

    async def _ahead(self) -> Signaling:
        """The socket opened while the host was looked up, or a fresh one when that one was
        replaced (by another socket of this device and role) before it was ready."""
        assert self.target.signaling is not None
        try:
            return await self.target.signaling
        except SignalingClosed:
            return await self._signaling()

    async def _signaling(self) -> Signaling:
        t = self.target
        return await Signaling.open(
            t.gateway_url, t.token, self.identity.wavry_id, "client", timeout=self.timeout
        )

    async def _gather(
        self, conn: RoutedConnection, bound: tuple[str, int], sig: Signaling
    ) -> list[Candidate]:
        out = host_candidates(bound)
        stun = await sig.stun_address()
        if stun is not None:
            mapped = await conn.reflexive(stun, STUN_TIMEOUT_S)
            if mapped is not None and all(c.addr != mapped for c in out):
                out.append(Candidate(CandidateKind.srflx, mapped))
        return out

    async def _accept(self, sig: Signaling) -> dict[str, Any]:
        sid = str(self.session)
        while True:
            msg = await sig.recv()
            kind = msg.get("type")
            if kind == "accept" and msg.get("session") == sid:
                got = msg.get("host_wavry_id")
                if got != self.target.host.wavry_id:
                    raise SignalingError(
                        "identity_mismatch",
                        f"the gateway lists {self.target.host.wavry_id} for host "
                        f"{self.target.label!r}, but {got} answered",
                    )
                return msg
            if kind == "reject" and msg.get("session") == sid:
                raise SignalingError("rejected", f"the host refused: {msg.get('reason') or '-'}")
            if kind == "error":
                code = str(msg.get("code", "error"))
                if code == "host_offline":
                    raise SignalingError(code, f"host {self.target.label!r} is offline")
                if code == "replaced":
                    raise SignalingClosed(code, str(msg.get("message", code)))
                raise SignalingError(code, str(msg.get("message", code)))
            if kind == "relay_grant":
                self._grant(msg)

    async def _signal_loop(self, sig: Signaling) -> None:
        try:
            while True:
                msg = await sig.recv()
                kind = msg.get("type")
                if msg.get("session") not in (None, str(self.session)):
                    continue
                if kind == "relay_grant":
                    self._grant(msg)
                elif kind == "candidate" and self.conn is not None:
                    cands = parse_candidates([msg.get("candidate")])
                    self.conn.paths.add_candidates(cands, time.monotonic())
                    self.conn.flush()
                elif kind == "error":
                    log.info("gateway: %s %s", msg.get("code"), msg.get("message"))
                    if msg.get("code") == "no_relay" and self.conn is not None:
                        self.conn.relay_problem = f"the gateway has no relay: {msg.get('message')}"
        except SignalingError as exc:
            log.info("signaling socket ended: %s", exc)

    def _grant(self, msg: dict[str, Any]) -> None:
        conn = self.conn
        try:
            grant = parse_grant(msg)
        except ValueError as exc:
            log.info("%s", exc)
            return
        if conn is None or grant.session != self.session:
            return
        if self.on_grant is not None:
            self.on_grant()
        conn.paths.relay_granted(grant, self.identity.sign, time.monotonic(), time.time())
        conn.flush()

    def _relay_needed(self, event: RelayNeeded) -> None:
        sig = self._sig
        if sig is None:
            return
        log.info("asking for a relay: %s", event.reason)
        task = asyncio.ensure_future(self._send_relay_request(sig))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_relay_request(self, sig: Signaling) -> None:
        with contextlib.suppress(SignalingError):
            await sig.relay_request(str(self.session))

    def _closed(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
        for t in list(self._tasks):
            t.cancel()
        sig = self._sig
        self._sig = None
        if sig is not None:
            task = asyncio.ensure_future(sig.close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
