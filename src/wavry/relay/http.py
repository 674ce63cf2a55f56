"""Tiny HTTP/1.1 endpoint for the relay: ``/health``, ``/ready`` and ``/metrics``.

No framework: one request per connection (``Connection: close``), GET and HEAD only, request
head limited to 8 KiB and 5 s. ``/metrics`` is Prometheus text exposition format 0.0.4.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Iterable
from typing import Any

from wavry.controlplane.lease import RejectReason

__all__ = ["MetricsWriter", "RelayHttpServer", "render_relay_metrics"]

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_MAX_HEAD = 8192
_TIMEOUT = 5.0


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class MetricsWriter:
    """Builds a Prometheus text exposition, one metric family at a time."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[dict[str, str], float]],
    ) -> None:
        if kind not in ("counter", "gauge", "untyped"):
            raise ValueError(f"unsupported metric type {kind}")
        help_escaped = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        self._lines.append(f"# HELP {name} {help_escaped}")
        self._lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items()))
                self._lines.append(f"{name}{{{inner}}} {_format_value(value)}")
            else:
                self._lines.append(f"{name} {_format_value(value)}")

    def single(self, name: str, kind: str, help_text: str, value: float) -> None:
        self.family(name, kind, help_text, [({}, value)])

    def render(self) -> str:
        return "\n".join(self._lines) + "\n"


def render_relay_metrics(server: Any) -> str:
    """Prometheus text for a :class:`wavry.relay.server.RelayServer`."""
    st = server.stats
    w = MetricsWriter()
    p = "wavry_relay_"
    w.single(p + "up", "gauge", "1 while the relay UDP socket is open.", int(server.running))
    w.single(p + "sessions", "gauge", "Active relay sessions.", server.session_count)
    w.single(p + "bound_peers", "gauge", "Peer addresses bound to sessions.", server.bound_peers)
    w.single(p + "max_sessions", "gauge", "Session cap.", server.config.max_sessions)
    w.single(p + "load_ratio", "gauge", "Active sessions / session cap.", server.load_pct / 100)
    w.single(p + "lease_keys", "gauge", "Lease public keys loaded.", len(server.verifier.key_ids))
    w.single(p + "packets_received_total", "counter", "Datagrams received.", st.packets_received)
    w.single(p + "bytes_received_total", "counter", "Bytes received.", st.bytes_received)
    w.single(p + "packets_forwarded_total", "counter", "Datagrams forwarded.", st.packets_forwarded)
    w.single(p + "bytes_forwarded_total", "counter", "Bytes forwarded.", st.bytes_forwarded)
    w.single(p + "leases_accepted_total", "counter", "Valid leases accepted.", st.leases_accepted)
    w.single(p + "lease_renewals_total", "counter", "Accepted LEASE_RENEW.", st.renewals)
    w.single(p + "rebinds_total", "counter", "Role bindings moved to a new address.", st.rebinds)
    w.single(
        p + "lease_challenges_total",
        "counter",
        "LEASE_CHALLENGE sent (a lease presented from an address not yet proven).",
        st.challenges,
    )
    w.single(p + "sessions_created_total", "counter", "Sessions created.", st.sessions_created)
    w.single(
        p + "gro_runs_total",
        "counter",
        "Coalesced runs (UDP_GRO) checked once and forwarded whole.",
        st.gro_runs,
    )
    w.single(p + "gso_sends_total", "counter", "UDP_SEGMENT sendmsg calls.", st.gso_sends)
    w.family(
        p + "sessions_ended_total",
        "counter",
        "Sessions ended, by cause.",
        [({"cause": c}, st.sessions_ended.get(c, 0)) for c in ("expired", "idle")],
    )
    w.family(
        p + "lease_rejects_total",
        "counter",
        "LEASE_REJECT sent, by wire reason.",
        [({"reason": r.name.lower()}, st.rejects_by_code.get(int(r), 0)) for r in RejectReason],
    )
    w.family(
        p + "lease_reject_details_total",
        "counter",
        "LEASE_REJECT sent, by detailed cause.",
        [({"kind": k}, v) for k, v in sorted(st.rejects.items())],
    )
    w.family(
        p + "dropped_total",
        "counter",
        "Datagrams dropped, by reason.",
        [({"reason": k}, v) for k, v in sorted(st.dropped.items())],
    )
    return w.render()


class RelayHttpServer:
    """Serves ``/health`` (process alive), ``/ready`` and ``/metrics``."""

    def __init__(self, metrics: Callable[[], str], ready: Callable[[], bool]) -> None:
        self._metrics = metrics
        self._ready = ready
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[Any, ...]:
        self._server = await asyncio.start_server(self._handle, host, port, limit=_MAX_HEAD)
        return tuple(self._server.sockets[0].getsockname())

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _route(self, method: str, path: str) -> tuple[int, str, str]:
        path = path.split("?", 1)[0]
        if path == "/health":
            return 200, "text/plain; charset=utf-8", "ok\n"
        if path == "/ready":
            if self._ready():
                return 200, "text/plain; charset=utf-8", "ready\n"
            return 503, "text/plain; charset=utf-8", "not ready\n"
        if path == "/metrics":
            return 200, PROMETHEUS_CONTENT_TYPE, self._metrics()
        return 404, "text/plain; charset=utf-8", "not found\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _TIMEOUT)
            except asyncio.LimitOverrunError:
                head = b""
            if len(head) > _MAX_HEAD or not head:
                status, ctype, body, method = 431, "text/plain", "request too large\n", "GET"
            else:
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                parts = line.split(" ")
                method = parts[0] if parts else ""
                if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                    status, ctype, body = 400, "text/plain", "bad request\n"
                elif method not in ("GET", "HEAD"):
                    status, ctype, body = 405, "text/plain", "method not allowed\n"
                else:
                    status, ctype, body = self._route(method, parts[1])
            payload = body.encode("utf-8")
            reason = {
                200: "OK",
                400: "Bad Request",
                404: "Not Found",
                405: "Method Not Allowed",
                431: "Request Header Fields Too Large",
                503: "Service Unavailable",
            }[status]
            headers = (
                f"HTTP/1.1 {status} {reason}\r\n"
                f"Content-Type: {ctype}\r\n"
                f"Content-Length: {len(payload)}\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: close\r\n"
            )
            if status == 405:
                headers += "Allow: GET, HEAD\r\n"
            writer.write(headers.encode("latin-1") + b"\r\n")
            if method != "HEAD":
                writer.write(payload)
            await asyncio.wait_for(writer.drain(), _TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
