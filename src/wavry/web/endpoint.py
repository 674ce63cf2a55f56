"""`wavry host --web`: the page, WebTransport and WebSocket next to the host's RIFT socket.

One object the host runtime starts after its `HostServer` and closes with it. It owns the TLS
certificate (renewed before expiry, docs/browser.md), prints the link with everything the page
needs in its fragment, and a QR code of it when the output is a terminal.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from wavry.net.addr import format_hostport
from wavry.net.host import HostServer
from wavry.rift.identity import Identity
from wavry.web.assets import page_problem
from wavry.web.cert import WebCertificate, load_or_create_certificate
from wavry.web.errors import WebError
from wavry.web.websocket import WebSocketCarrier
from wavry.web.webtransport import WebTransportCarrier

DEFAULT_WEB_PORT = 47801
RENEW_CHECK_S = 3600.0


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def page_fragment(cert_sha256: bytes, wavry_id: str) -> str:
    """The URL fragment the page reads (docs/browser.md): certificate hash and host identity.
    A fragment never leaves the browser, so neither does anything in it."""
    return f"h={b64url(cert_sha256)}&id={wavry_id}"


def shown_address(host: str) -> str:
    """An address a browser elsewhere can use for a wildcard bind: this machine's address on
    its default route (no packet is sent), else loopback."""
    if host not in ("0.0.0.0", "::", ""):
        return host
    family = socket.AF_INET6 if host == "::" else socket.AF_INET
    probe = "2001:db8::1" if family == socket.AF_INET6 else "192.0.2.1"  # documentation ranges
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((probe, 9))
        return str(s.getsockname()[0])
    return "::1" if family == socket.AF_INET6 else "127.0.0.1"


def print_qr(text: str, out: TextIO) -> None:
    """A QR code of ``text`` in the terminal (two rows of modules per line)."""
    import qrcode  # type: ignore[import-untyped]

    qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    qr.add_data(text)
    qr.make(fit=True)
    qr.print_ascii(out=out, invert=True)


class WebEndpoint:
    def __init__(
        self,
        server: HostServer,
        identity: Identity,
        name: str,
        *,
        config_dir: Path | None = None,
        say: Callable[[str], None] = print,
        out: TextIO | None = None,
        qr: bool | None = None,
    ) -> None:
        self.server = server
        self.identity = identity
        self.name = name
        self.config_dir = config_dir
        self.say = say
        self._out = out
        self._qr = qr
        self.webtransport = WebTransportCarrier(server)
        self.websocket = WebSocketCarrier(server, self._info)
        self.certificate: WebCertificate | None = None
        self.bound: tuple[str, int] | None = None
        self._files: tempfile.TemporaryDirectory[str] | None = None
        self._renew_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        assert self.bound is not None and self.certificate is not None
        where = format_hostport(shown_address(self.bound[0]), self.bound[1])
        return f"https://{where}/#{page_fragment(self.certificate.sha256, self.identity.wavry_id)}"

    def _info(self) -> bytes:
        cert = self.certificate
        return json.dumps(
            {
                "wavry_id": self.identity.wavry_id,
                "name": self.name,
                "cert_sha256": b64url(cert.sha256) if cert else None,
            }
        ).encode()

    def _write_pem(self, cert: WebCertificate) -> tuple[str, str]:
        """ssl and aioquic load certificates from files: a private directory for this process."""
        if self._files is None:
            self._files = tempfile.TemporaryDirectory(prefix="wavry-web-")
        d = Path(self._files.name)
        certfile, keyfile = d / "cert.pem", d / "key.pem"
        certfile.write_bytes(cert.cert_pem)
        keyfile.touch(mode=0o600)
        keyfile.write_bytes(cert.key_pem)
        return str(certfile), str(keyfile)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        problem = page_problem()
        if problem is not None:
            raise WebError(problem)
        names = [shown_address(host), "127.0.0.1", "::1", socket.gethostname()]
        self.certificate, _new = load_or_create_certificate(names, self.config_dir)
        certfile, keyfile = self._write_pem(self.certificate)
        try:
            # TCP first (port 0 picks a port); QUIC takes the same number on UDP
            self.bound = await self.websocket.start(host, port, certfile, keyfile)
            await self.webtransport.start(host, self.bound[1], certfile, keyfile)
        except OSError as exc:
            await self.close()
            raise WebError(
                f"cannot serve the browser client on {format_hostport(host, port)}: "
                f"{exc.strerror or exc}"
            ) from exc
        self.server.add_carrier(self.webtransport)
        self.server.add_carrier(self.websocket)
        self._renew_task = asyncio.get_running_loop().create_task(self._renew_loop(names))
        self.announce()
        return self.bound

    def announce(self) -> None:
        assert self.bound is not None and self.certificate is not None
        b = format_hostport(*self.bound)
        cert = self.certificate
        fingerprint = ":".join(f"{x:02X}" for x in cert.sha256)
        until = cert.not_after.strftime("%Y-%m-%d")
        self.say(f"  browser clients: https://{b} (tcp: page, WebSocket; udp: WebTransport)")
        self.say(f"  web certificate SHA-256 {fingerprint} (valid until {until})")
        self.say(f"browser: {self.url}")
        out = self._out
        show_qr = self._qr if self._qr is not None else bool(out is not None and out.isatty())
        if show_qr and out is not None:
            print_qr(self.url, out)

    async def _renew_loop(self, names: list[str]) -> None:
        while True:
            await asyncio.sleep(RENEW_CHECK_S)
            cert = self.certificate
            if cert is None or not cert.renewal_due(dt.datetime.now(dt.UTC)):
                continue
            self.certificate, _new = load_or_create_certificate(names, self.config_dir)
            certfile, keyfile = self._write_pem(self.certificate)
            self.webtransport.reload_certificate(certfile, keyfile)
            self.websocket.reload_certificate(certfile, keyfile)
            self.say("browser certificate renewed; new link:")
            self.announce()

    async def close(self) -> None:
        if self._renew_task is not None:
            self._renew_task.cancel()
            self._renew_task = None
        await self.webtransport.close()
        await self.websocket.close()
        self.server.carriers.pop(self.webtransport.name, None)
        self.server.carriers.pop(self.websocket.name, None)
        if self._files is not None:
            self._files.cleanup()
            self._files = None


class WebService:
    """`--web` as a service a host runtime starts after its `HostServer` and closes with it:
    ``start(runtime)`` needs ``runtime.server``, ``runtime.identity``, ``runtime.endpoint``,
    ``runtime.opts.config_dir``, ``runtime.say`` and, for the QR code, ``runtime.out``."""

    def __init__(self, listen: tuple[str, int]) -> None:
        self.listen = listen
        self.endpoint: WebEndpoint | None = None

    async def start(self, runtime: Any) -> None:
        self.endpoint = WebEndpoint(
            runtime.server,
            runtime.identity,
            runtime.endpoint.config.name,
            config_dir=getattr(runtime.opts, "config_dir", None),
            say=runtime.say,
            out=getattr(runtime, "out", None) or sys.stdout,  # the QR code, on a terminal only
        )
        await self.endpoint.start(*self.listen)

    async def close(self) -> None:
        if self.endpoint is not None:
            await self.endpoint.close()
            self.endpoint = None
