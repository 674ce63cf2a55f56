"""The host side of the browser carriage without a browser: the carrier seam of HostServer
(a datagram from a carrier address reaches the core, answers go back through the carrier, the
session's datagrams are capped at the carrier's size, a closed carrier ends its session), the
certificate, the static files, the `--web` setting, and RIFT over the real WebSocket endpoint
from a Python client (garbage and oversized messages change nothing)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from wavry.net.carrier import CarrierAddress
from wavry.net.host import HostServer
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.events import ClientGone, SessionAccepted
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.settings import HostSettings
from wavry.store import StoreError
from wavry.web.assets import page_problem, read_asset
from wavry.web.cert import MAX_SPAN, create_certificate, load_or_create_certificate
from wavry.web.endpoint import page_fragment, shown_address


class MemoryCarrier:
    """A carrier that hands the host's datagrams to the test (the narrowest interface)."""

    name = "memory"

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.sent: list[tuple[CarrierAddress, bytes]] = []

    def send_run(self, addr: CarrierAddress, datagrams: list[bytes]) -> None:
        self.sent.extend((addr, d) for d in datagrams)

    def max_datagram(self, addr: CarrierAddress) -> int | None:
        return self.limit


def _pump(client: ClientSession, server: HostServer, carrier: MemoryCarrier, addr: Any) -> None:
    for _ in range(20):
        now = server._clock()
        out = client.datagrams_to_send(now)
        for d in out:
            server.receive_from_carrier(d, addr)
        back = [d for a, d in carrier.sent if a == addr]
        carrier.sent.clear()
        for d in back:
            client.receive_datagram(d, now)
        if not out and not back:
            return


def test_carrier_seam_routes_caps_and_closes() -> None:
    asyncio.run(_carrier_seam())


async def _carrier_seam() -> None:
    events: list[Any] = []
    endpoint = HostEndpoint(Identity.generate(), HostConfig(trust_any=True))
    server = HostServer(endpoint, on_event=events.append, gso=False)
    carrier = MemoryCarrier(limit=1200)
    server.add_carrier(carrier)
    addr = CarrierAddress("192.0.2.7", 5555, "memory", 1)
    client = ClientSession(Identity.generate(), ClientConfig())
    client.connect(server._clock())
    _pump(client, server, carrier, addr)
    kinds = []
    while (e := client.next_event()) is not None:
        kinds.append(type(e).__name__)
    assert "SessionAccepted" in kinds, kinds
    (session,) = endpoint.sessions.values()
    assert session.addr == addr
    # the carrier's limit, not the host's 1400, is this session's datagram size
    assert session.channel.max_datagram == 1200
    assert session.transport.config.max_datagram == 1200
    assert endpoint.config.max_datagram == 1400
    # its frames are sent from the event loop, not from the encode thread
    assert not server.sends_from_thread(session.alias)
    server.carrier_closed(addr, "the browser went away")
    assert not endpoint.sessions
    gone = [e for e in events if isinstance(e, ClientGone)]
    assert gone and "went away" in gone[0].message


def test_carrier_without_a_limit_keeps_the_host_size() -> None:
    asyncio.run(_no_limit())


async def _no_limit() -> None:
    endpoint = HostEndpoint(Identity.generate(), HostConfig(trust_any=True))
    server = HostServer(endpoint, gso=False)
    carrier = MemoryCarrier(limit=None)
    server.add_carrier(carrier)
    addr = CarrierAddress("192.0.2.8", 1, "memory", 2)
    client = ClientSession(Identity.generate(), ClientConfig())
    client.connect(server._clock())
    _pump(client, server, carrier, addr)
    (session,) = endpoint.sessions.values()
    assert session.channel.max_datagram == 1400


def test_certificate_is_ecdsa_p256_short_lived_and_kept(tmp_path: Path) -> None:
    cert, new = load_or_create_certificate(["192.0.2.1"], tmp_path)
    assert new
    parsed = x509.load_pem_x509_certificate(cert.cert_pem)
    key = parsed.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert parsed.not_valid_after_utc - parsed.not_valid_before_utc <= MAX_SPAN
    path = tmp_path / "web-certificate.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, new = load_or_create_certificate(["192.0.2.1"], tmp_path)
    assert not new and again.sha256 == cert.sha256  # the link survives a restart
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    renewed, new = load_or_create_certificate(["192.0.2.1"], tmp_path, now=later)
    assert new and renewed.sha256 != cert.sha256
    assert renewed.not_after - later <= dt.timedelta(days=13)
    path.chmod(0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        load_or_create_certificate([], tmp_path)


def test_certificate_hash_is_of_the_der_encoding() -> None:
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding

    cert = create_certificate(["localhost"])
    der = x509.load_pem_x509_certificate(cert.cert_pem).public_bytes(Encoding.DER)
    assert cert.sha256 == hashlib.sha256(der).digest()


def test_static_files_never_leave_their_directory(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>page</p>")
    (tmp_path / "app.js").write_text("x")
    (tmp_path / ".secret.js").write_text("no")
    assert page_problem(tmp_path) is None
    page = read_asset("/", tmp_path)
    assert page is not None and page.content_type.startswith("text/html")
    assert read_asset("/app.js?v=1", tmp_path) is not None
    for bad in ("/../pyproject.toml", "/.secret.js", "/a/b.js", "/nothing.js", "/x.py"):
        assert read_asset(bad, tmp_path) is None, bad
    assert page_problem(tmp_path / "missing") is not None


def test_fragment_and_wildcard_address() -> None:
    ident = Identity.generate()
    frag = page_fragment(b"\x01" * 32, ident.wavry_id)
    assert frag == f"h=AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE&id={ident.wavry_id}"
    assert shown_address("10.1.2.3") == "10.1.2.3"
    assert shown_address("0.0.0.0") not in ("0.0.0.0", "")


def test_web_setting() -> None:
    assert HostSettings().web_addr is None
    assert HostSettings(web="").web_addr == ("0.0.0.0", 47801)
    assert HostSettings(listen="127.0.0.1:5", web="").web_addr == ("127.0.0.1", 47801)
    assert HostSettings(web="[::1]:9443").web_addr == ("::1", 9443)
    with pytest.raises(ValueError, match="bad port"):
        HostSettings(web="1.2.3.4:99999")


def test_cli_rejects_a_bad_web_address(tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "wavry", "host", "--web", "host:notaport"],
        capture_output=True,
        text=True,
        env={"XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error:") and "web" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_rift_over_the_websocket_endpoint(web: Any, tmp_path: Path) -> None:
    """A Python RIFT client over the real `/rift-ws`: garbage and text first, then a session;
    an oversized message ends only that connection."""
    args = ("--source", "synthetic", "--size", "320x240", "--fps", "30", "--trust", "any")
    with web.host(tmp_path, *args) as host:
        authority = host.url.split("/")[2]
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # RIFT checks the host's identity below, not TLS

        async def session() -> list[str]:
            async with websockets.connect(f"wss://{authority}/rift-ws", ssl=ctx) as ws:
                await ws.send(b"\x00" * 40)  # not RIFT: dropped by the framing checks
                await ws.send("a text message")  # ignored
                client = ClientSession(Identity.generate(), ClientConfig())
                client.expected_host_id = host.wavry_id
                loop = asyncio.get_running_loop()
                client.connect(loop.time())
                seen: list[str] = []
                deadline = loop.time() + 20
                while loop.time() < deadline and "SessionAccepted" not in seen:
                    for d in client.datagrams_to_send(loop.time()):
                        await ws.send(d)
                    try:
                        data = await asyncio.wait_for(ws.recv(), 0.2)
                    except TimeoutError:
                        client.handle_timer(loop.time())
                        continue
                    assert isinstance(data, bytes)
                    client.receive_datagram(data, loop.time())
                    while (e := client.next_event()) is not None:
                        seen.append(type(e).__name__)
                        if isinstance(e, SessionAccepted):
                            assert e.ack.stream_resolution.width == 320
                return seen

        assert "SessionAccepted" in asyncio.run(session())

        async def oversized() -> None:
            async with websockets.connect(f"wss://{authority}/rift-ws", ssl=ctx) as ws:
                await ws.send(b"R" * 200_000)
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)

        asyncio.run(oversized())
        assert "SessionAccepted" in asyncio.run(session())  # the host still serves
        assert host.proc.poll() is None


def test_qr_code_of_the_link() -> None:
    import io

    from wavry.web.endpoint import print_qr

    out = io.StringIO()
    print_qr("https://192.0.2.1:47801/#h=" + "A" * 43 + "&id=" + "B" * 43, out)
    lines = out.getvalue().splitlines()
    assert len(lines) > 15 and all(len(line) == len(lines[0]) for line in lines)
    assert any("█" in line or "▀" in line or "▄" in line for line in lines)


def test_web_option_value_may_be_left_out() -> None:
    from wavry.cli import optional_values

    assert optional_values(["host", "--web"]) == ["host", "--web="]
    got = optional_values(["host", "--web", "--trust", "any"])
    assert got == ["host", "--web=", "--trust", "any"]
    assert optional_values(["host", "--web", "1.2.3.4:9"]) == ["host", "--web", "1.2.3.4:9"]
    assert optional_values(["host", "--", "--web"]) == ["host", "--", "--web"]


def test_signaling_web_fields_are_validated() -> None:
    from wavry.gateway.signal_frames import BadMessage, transport_of, web_rendezvous_of

    assert transport_of({}) == "udp" and transport_of({"transport": "web"}) == "web"
    with pytest.raises(BadMessage):
        transport_of({"transport": "carrier-pigeon"})
    good = {"cert_sha256": "A" * 43, "candidates": [{"kind": "host", "addr": "10.0.0.2:47801"}]}
    assert web_rendezvous_of(good) == good
    assert web_rendezvous_of({**good, "extra": 1}) == good  # only the spec's fields go on
    for bad in (
        None,
        {**good, "cert_sha256": "A" * 42},
        {**good, "cert_sha256": "A" * 42 + "!"},
        {**good, "candidates": []},
        {**good, "candidates": [{"kind": "relay", "addr": "1.2.3.4:5"}]},
        {**good, "candidates": [{"kind": "host", "addr": "no-port"}]},
        {**good, "candidates": [{"kind": "host", "addr": "1.2.3.4:5"}] * 33},
    ):
        with pytest.raises(BadMessage):
            web_rendezvous_of(bad)
