"""A host's presence at a gateway (docs/spec/CONTROL_PLANE.md §6 step 1, §3): `wavry host
--gateway URL --name NAME`.

:class:`HostPresence` is a host service (started and stopped with the host runtime). It signs
in with the device key (``POST /v1/auth/device``; a host never stores a password — the sign-in
`wavry login` saved is only a fallback for a gateway whose public URL the device cannot sign),
registers this device as a ``host`` with its name, and keeps a signaling socket open with role
``host``, reopening it with backoff (0.25 s doubling to 2 s) whenever the gateway goes away.
For each ``connect`` it vouches for the client the gateway named in ``from`` (the host core
then accepts that Wavry ID without pairing, once the RIFT handshake has proven it), gathers its
candidates from the RIFT socket (interface addresses, the STUN answer asked from that very
socket, a UPnP-IGD port mapping), answers ``accept`` and starts probing the client's candidates.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from wavry.account.client import GatewayClient, GatewayError
from wavry.account.store import AccountStore
from wavry.connectivity.candidates import (
    Candidate,
    CandidateKind,
    host_candidates,
    parse_candidates,
)
from wavry.connectivity.hostside import HostSide
from wavry.connectivity.relaypath import parse_grant
from wavry.connectivity.signaling import Signaling, SignalingClosed, SignalingError
from wavry.net.host import HostServer
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity

__all__ = ["HostPresence", "PresenceError", "PresenceState"]

log = logging.getLogger("wavry.presence")

BACKOFF_INITIAL_S = 0.25
BACKOFF_MAX_S = 2.0
#: a signaling connection that lasted this long was a working one: after it ends the host
#: reconnects at once; one that ended sooner (the gateway closed it right away, or another
#: process with this device's identity replaced it) is retried with the back-off
STABLE_ONLINE_S = 30.0
#: how long the gateway's word for a client lasts after its ``connect``, and after its last
#: session here ended (a session's own reconnects need no new introduction; a client whose
#: account lost the share must come through the gateway again within this time)
VOUCH_TTL_S = 600.0
VOUCH_REFRESH_S = 30.0
STUN_TIMEOUT_S = 0.5
FATAL_CODES = {"unknown_device", "suspended", "removed", "invalid_message"}


class PresenceError(Exception):
    """The host cannot be present at this gateway (the message says what to do)."""


class HostContext(Protocol):
    """What the presence needs from the host runtime."""

    identity: Identity
    endpoint: HostEndpoint
    server: HostServer
    bound: tuple[str, int] | None

    def say(self, text: str) -> None: ...


@dataclass(slots=True)
class PresenceState:
    online: bool = False
    since: float | None = None
    connects: int = 0
    reconnects: int = 0
    last_error: str = ""
    vouched: dict[str, float] = field(default_factory=dict)  # wavry_id → monotonic expiry


class HostPresence:
    """Keeps the host online at ``gateway_url`` under ``name``."""

    def __init__(
        self,
        gateway_url: str,
        name: str,
        *,
        extra_candidates: Callable[[], list[Candidate]] | None = None,
        web_mapped: Callable[[], list[tuple[str, int]]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.gateway_url = gateway_url
        self.name = name
        self.state = PresenceState()
        self.side: HostSide | None = None
        self._extra = extra_candidates
        self._web_mapped = web_mapped or (lambda: [])
        self._clock = clock
        self._sleep = sleep
        self._ctx: HostContext | None = None
        self._task: asyncio.Task[None] | None = None
        self._token: str | None = None
        self._user_id: str | None = None
        self._registered = False
        self._sig: Signaling | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._online = asyncio.Event()

    # ---- HostService ---------------------------------------------------------------------

    async def start(self, runtime: HostContext) -> None:
        self._ctx = runtime
        self.side = HostSide(runtime.server, runtime.identity.sign)
        self.side.attach()
        runtime.endpoint.vouch = self.vouches
        try:
            await self._sign_in()
        except PresenceError:
            self.side.close()
            raise
        except (GatewayError, OSError) as exc:  # the gateway is down now: keep trying
            self._say(f"gateway {self.gateway_url} not reachable yet ({exc}); retrying")
        self._task = asyncio.create_task(self._run(), name="wavry-presence")
        self._spawn(self._vouch_keeper())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for t in list(self._tasks):
            t.cancel()
        if self._sig is not None:
            await self._sig.close()
        if self.side is not None:
            self.side.close()
        if self._ctx is not None and self._ctx.endpoint.vouch == self.vouches:
            self._ctx.endpoint.vouch = None

    async def wait_online(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._online.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # ---- trust ---------------------------------------------------------------------------

    def vouches(self, wavry_id: str) -> bool:
        until = self.state.vouched.get(wavry_id)
        return until is not None and self._clock() < until

    def refresh_vouches(self) -> None:
        """A vouched client with a session here stays vouched for VOUCH_TTL_S after it."""
        ctx = self._ctx
        if ctx is None:
            return
        now = self._clock()
        live = {s.client_id for s in ctx.endpoint.sessions.values()}
        for wavry_id, until in list(self.state.vouched.items()):
            if wavry_id in live:
                self.state.vouched[wavry_id] = max(until, now + VOUCH_TTL_S)
            elif until <= now:
                del self.state.vouched[wavry_id]

    async def _vouch_keeper(self) -> None:
        while True:
            await asyncio.sleep(VOUCH_REFRESH_S)
            self.refresh_vouches()

    # ---- sign-in -------------------------------------------------------------------------

    async def _sign_in(self) -> None:
        """A token (device-key login, else the saved sign-in for this gateway) and this device
        registered as a host named ``name``."""
        ctx = self._ctx
        assert ctx is not None
        async with GatewayClient(self.gateway_url) as gw:
            if self._token is None:
                try:
                    res = await gw.device_login(ctx.identity)
                    self._token, self._user_id = res.token, str(res.user.get("id", ""))
                    self._registered = False
                except GatewayError as exc:
                    if exc.code == "unreachable":
                        raise
                    self._token, self._user_id = self._saved_sign_in(exc)
                    self._registered = False
            gw.token = self._token
            if not self._registered:
                assert self._user_id is not None
                try:
                    await gw.add_device(ctx.identity, self._user_id, self.name, "host")
                except GatewayError as exc:
                    if exc.status == 401:
                        self._token = None
                    if exc.status in (401, 0) or exc.code == "unreachable":
                        raise
                    raise PresenceError(
                        f"the gateway refused to register this device as host {self.name!r}: {exc}"
                    ) from None
                self._registered = True

    def _saved_sign_in(self, why: GatewayError) -> tuple[str, str]:
        saved = AccountStore().for_gateway(self.gateway_url)
        if saved is not None:
            log.info("device-key login refused (%s); using the saved sign-in", why)
            return saved.token, saved.user_id
        raise PresenceError(
            f"cannot sign in to {self.gateway_url} with this device's key ({why}): register this "
            f"device there first with `wavry login {self.gateway_url} --login NAME` (if it is "
            "registered, the gateway's --public-url must be the URL used here)"
        )

    # ---- the signaling socket ------------------------------------------------------------

    async def _run(self) -> None:
        ctx = self._ctx
        assert ctx is not None
        delay = BACKOFF_INITIAL_S
        was_online = False
        while True:
            try:
                await self._sign_in()
                assert self._token is not None
                sig = await Signaling.open(
                    self.gateway_url, self._token, ctx.identity.wavry_id, "host"
                )
            except PresenceError as exc:
                self._offline(str(exc), was_online)
                was_online = False
                await self._sleep(30.0)
                continue
            except (GatewayError, SignalingError, OSError) as exc:
                code = getattr(exc, "code", "")
                if code in ("invalid_token", "token_expired", "token_revoked", "unauthorized"):
                    self._token = None
                self._offline(str(exc), was_online)
                was_online = False
                await self._sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            self._sig = sig
            self.state.online = True
            self.state.since = online_at = self._clock()
            self._online.set()
            if was_online or self.state.reconnects:
                self._say(f"back online at {self.gateway_url} as {self.name!r}")
            else:
                self._say(
                    f"online at {self.gateway_url} as {self.name!r} (wavry connect {self.name})"
                )
            was_online = True
            try:
                await self._serve(sig)
            except SignalingClosed as exc:
                if exc.code in ("token_expired", "token_revoked"):
                    self._token = None
                self.state.last_error = str(exc)
            except Exception as exc:  # anything else must not end presence either
                # an unexpected failure (a bug, a socket error the library did not wrap) would
                # otherwise end this task, and the host would stay offline without a word
                log.warning("presence: the signaling connection failed", exc_info=True)
                self.state.last_error = f"unexpected error: {exc!r}"
            finally:
                self._sig = None
                await sig.close()
                self.state.online = False
                self._online.clear()
                self.state.reconnects += 1
            self._say(
                f"gateway connection lost ({self.state.last_error or 'closed'}); reconnecting"
            )
            was_online = False
            # a connection the gateway ended at once must not be reopened at once: two hosts
            # with one identity replaced each other as fast as the round trips went, forever
            if self._clock() - online_at < STABLE_ONLINE_S:
                await self._sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, BACKOFF_MAX_S)
            else:
                delay = BACKOFF_INITIAL_S

    def _offline(self, why: str, announce: bool) -> None:
        self.state.last_error = why
        log.info("presence: %s", why)
        if announce:
            self._say(f"offline at {self.gateway_url}: {why}")

    async def _serve(self, sig: Signaling) -> None:
        while True:
            msg = await sig.recv()
            kind = msg.get("type")
            if kind == "connect":
                self._spawn(self._on_connect(sig, msg))
            elif kind == "candidate":
                self._on_candidate(msg)
            elif kind == "relay_grant":
                self._on_grant(msg)
            elif kind == "error":
                code = str(msg.get("code", ""))
                if code in FATAL_CODES or code.startswith("token_"):
                    raise SignalingClosed(code, str(msg.get("message", code)))
                log.info("gateway error: %s %s", code, msg.get("message"))

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_connect(self, sig: Signaling, msg: dict[str, Any]) -> None:
        ctx, side = self._ctx, self.side
        assert ctx is not None and side is not None
        try:
            session = uuid.UUID(str(msg.get("session")))
        except ValueError:
            return
        client_id = str(msg.get("from", ""))
        if len(client_id) != 43:
            return
        self.state.connects += 1
        # the gateway forwards a connect only from the owner's devices or accounts the owner
        # shared this host with (CONTROL_PLANE.md §3): the handshake must prove that identity
        self.state.vouched[client_id] = self._clock() + VOUCH_TTL_S
        if msg.get("transport") == "web":
            await self._on_web_connect(sig, session)
            return
        now = self._clock()
        side.meetings.on_connect(session, client_id, parse_candidates(msg.get("candidates")), now)
        side.pump()  # probes start before our own candidates are known
        mine = await self.candidates(sig)
        try:
            await sig.accept(str(session), mine, ctx.identity.wavry_id)
        except SignalingError:
            return
        log.info("connect %s from %s; candidates %s", session, client_id, mine)

    async def _on_web_connect(self, sig: Signaling, session: uuid.UUID) -> None:
        """A browser page (CONTROL_PLANE.md §6 "From a browser"): the web endpoint's
        certificate hash and addresses, or ``reject`` ``no_web`` without ``--web``."""
        ctx = self._ctx
        assert ctx is not None
        web = web_rendezvous(ctx, self._web_mapped)
        try:
            if web is None:
                await sig.reject(str(session), "no_web")
            else:
                await sig.send({"type": "accept", "session": str(session), "candidates": [],
                                "host_wavry_id": ctx.identity.wavry_id, "web": web})  # fmt: skip
        except SignalingError:
            return
        log.info("web connect %s: %s", session, web)

    async def candidates(self, sig: Signaling) -> list[Candidate]:
        """This host's candidates: interface addresses of the RIFT socket, its reflexive
        address from the gateway's STUN (asked from that socket), and a port mapping."""
        ctx, side = self._ctx, self.side
        assert ctx is not None and side is not None and ctx.bound is not None
        out = host_candidates(ctx.bound)
        stun_addr = await sig.stun_address()
        if stun_addr is not None:
            mapped = await side.reflexive(stun_addr, STUN_TIMEOUT_S)
            if mapped is not None and all(c.addr != mapped for c in out):
                out.append(Candidate(CandidateKind.srflx, mapped))
        if self._extra is not None:
            out.extend(c for c in self._extra() if all(o.addr != c.addr for o in out))
        return out

    def _on_candidate(self, msg: dict[str, Any]) -> None:
        if self.side is None:
            return
        try:
            session = uuid.UUID(str(msg.get("session")))
        except ValueError:
            return
        cands = parse_candidates([msg.get("candidate")])
        self.side.meetings.add_candidates(session, cands, self._clock())
        self.side.pump()

    def _on_grant(self, msg: dict[str, Any]) -> None:
        if self.side is None:
            return
        try:
            grant = parse_grant(msg)
        except ValueError as exc:
            log.info("%s", exc)
            return
        self.side.meetings.relay_granted(grant, self._clock(), time.time())
        self.side.pump()

    def _say(self, text: str) -> None:
        if self._ctx is not None:
            self._ctx.say(text)


def web_rendezvous(
    runtime: Any, mapped: Callable[[], list[tuple[str, int]]]
) -> dict[str, Any] | None:
    """``accept.web`` for the host's web endpoint (`wavry host --web`), None without one: the
    certificate hash, and the endpoint's addresses — ``host`` (interface addresses; pages on the
    same network), ``mapped`` (a port the router forwards to it)."""
    from wavry.net.addr import format_hostport

    for service in getattr(runtime, "services", []):
        endpoint = getattr(service, "endpoint", None)
        cert = getattr(endpoint, "certificate", None)
        bound = getattr(endpoint, "bound", None)
        if cert is None or bound is None:
            continue
        cands = [{"kind": "mapped", "addr": format_hostport(*a)} for a in mapped()]
        cands += [c.to_json() for c in host_candidates((str(bound[0]), int(bound[1])))]
        if not cands:
            continue
        digest = base64.urlsafe_b64encode(cert.sha256).rstrip(b"=").decode("ascii")
        return {"cert_sha256": digest, "candidates": cands[:32]}
    return None
