"""Impairment model (pure, seeded) and the UDP proxy on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random
import socket
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import pytest
import uvloop
from typer.testing import CliRunner

from wavry.bench.lab_cli import lab_app, parse_hostport
from wavry.bench.netlab import (
    DropCause,
    GilbertElliott,
    ImpairmentModel,
    ImpairmentProxy,
    LinkConfig,
    gilbert_elliott,
)

T = TypeVar("T")


def feed(model: ImpairmentModel, n: int, size: int = 1000, gap: float = 0.001) -> list[Any]:
    return [model.process(size, i * gap) for i in range(n)]


# --- model ---------------------------------------------------------------------------------


def test_transparent_config_delivers_at_arrival_time() -> None:
    cfg = LinkConfig()
    assert cfg.transparent
    model = ImpairmentModel(cfg)
    for i in range(10):
        d = model.process(100, 5.0 + i * 1e-6)
        assert d.deliveries == (5.0 + i * 1e-6,)
        assert not d.dropped
    assert not LinkConfig(delay_ms=1).transparent
    assert not LinkConfig(rate_kbps=100).transparent


@pytest.mark.parametrize(
    "kwargs",
    [{"loss": 1.5}, {"delay_ms": -1}, {"rate_kbps": 0}, {"queue_packets": -1}, {"duplicate": -0.1}],
)
def test_config_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LinkConfig(**kwargs)  # type: ignore[arg-type]


def test_random_loss_rate() -> None:
    model = ImpairmentModel(LinkConfig(loss=0.1), seed=1)
    decisions = feed(model, 20000)
    lost = sum(d.drop is DropCause.LOSS for d in decisions)
    assert 0.09 <= lost / 20000 <= 0.11
    assert model.stats.dropped_loss == lost
    assert model.stats.forwarded == 20000 - lost


def test_gilbert_elliott_helper() -> None:
    ge = gilbert_elliott(0.05, 4.0)
    assert ge.r == pytest.approx(0.25)
    assert ge.p / (ge.p + ge.r) == pytest.approx(0.05)
    assert ge.loss_rate == pytest.approx(0.05)
    assert ge.mean_burst == pytest.approx(4.0)
    with pytest.raises(ValueError):
        gilbert_elliott(0.9, 1.0)  # would need p > 1
    with pytest.raises(ValueError):
        gilbert_elliott(0.1, 0.5)


def test_gilbert_elliott_burst_length_and_rate() -> None:
    n = 100_000
    model = ImpairmentModel(LinkConfig(burst=gilbert_elliott(0.05, 4.0)), seed=3)
    lost = [d.drop is DropCause.BURST for d in feed(model, n)]
    bursts: list[int] = []
    run = 0
    for x in [*lost, False]:
        if x:
            run += 1
        elif run:
            bursts.append(run)
            run = 0
    assert 0.04 <= sum(lost) / n <= 0.06
    assert 3.5 <= statistics.mean(bursts) <= 4.5
    # Bernoulli loss at the same rate has mean burst ~1/(1-0.05): clearly different.
    plain = [d.dropped for d in feed(ImpairmentModel(LinkConfig(loss=0.05), seed=3), n)]
    runs = "".join("x" if x else "." for x in plain).split(".")
    assert statistics.mean(len(r) for r in runs if r) < 1.2


def test_gilbert_elliott_good_state_loss() -> None:
    ge = GilbertElliott(p=0.0, r=1.0, loss_bad=1.0, loss_good=0.2)
    model = ImpairmentModel(LinkConfig(burst=ge), seed=5)
    rate = sum(d.dropped for d in feed(model, 10000)) / 10000
    assert 0.18 <= rate <= 0.22


@pytest.mark.parametrize("dist", ["uniform", "normal"])
def test_jitter_keeps_fifo_by_default(dist: str) -> None:
    cfg = LinkConfig(delay_ms=20, jitter_ms=15, jitter_dist=dist)  # type: ignore[arg-type]
    times = [d.deliveries[0] for d in feed(ImpairmentModel(cfg, seed=2), 2000)]
    assert times == sorted(times)
    delays = [t - i * 0.001 for i, t in enumerate(times)]
    assert max(delays) - min(delays) > 0.01  # jitter is really applied
    # FIFO holds a datagram behind a slower predecessor, so the mean delay rises above 20 ms
    # when the jitter exceeds the spacing (1 ms here); uniform jitter never exceeds +15 ms.
    assert statistics.mean(delays) > 0.021
    if dist == "uniform":
        assert max(delays) <= 0.035 + 1e-9


def test_jitter_reorders_when_allowed() -> None:
    cfg = LinkConfig(delay_ms=20, jitter_ms=15, allow_reorder=True)
    model = ImpairmentModel(cfg, seed=2)
    times = [d.deliveries[0] for d in feed(model, 2000)]
    assert times != sorted(times)
    assert model.stats.reordered > 100
    spread = [t - i * 0.001 for i, t in enumerate(times)]
    assert min(spread) >= 0.005 - 1e-9 and max(spread) <= 0.035 + 1e-9


def test_explicit_reorder_holds_back() -> None:
    model = ImpairmentModel(LinkConfig(delay_ms=5, reorder=0.1, reorder_ms=30), seed=4)
    decisions = feed(model, 5000)
    held = [i for i, d in enumerate(decisions) if d.deliveries[0] - i * 0.001 > 0.03]
    assert 400 <= len(held) <= 600
    assert model.stats.held == len(held)
    others = [d.deliveries[0] for i, d in enumerate(decisions) if i not in set(held)]
    assert others == sorted(others)
    assert model.stats.reordered > 0


def test_duplication() -> None:
    model = ImpairmentModel(LinkConfig(duplicate=0.2, delay_ms=1), seed=9)
    decisions = feed(model, 10000)
    dups = sum(len(d.deliveries) == 2 for d in decisions)
    assert 1800 <= dups <= 2200
    assert model.stats.duplicated == dups
    flat = [t for d in decisions for t in d.deliveries]
    assert flat == sorted(flat)


def test_rate_limit_departure_spacing() -> None:
    model = ImpairmentModel(LinkConfig(rate_kbps=1000))  # 1250 B = 10 ms on the wire
    decisions = [model.process(1250, 0.0) for _ in range(5)]
    assert [d.deliveries[0] for d in decisions] == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])
    assert [d.queue_delay for d in decisions] == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])
    late = model.process(1250, 1.0)  # idle link: no queueing
    assert late.deliveries[0] == pytest.approx(1.01) and late.queue_delay == 0.0
    assert model.stats.queue_delay_max == pytest.approx(0.04)
    assert model.stats.queue_delay_avg == pytest.approx(0.1 / 6)


def test_rate_limit_with_delay_and_overhead() -> None:
    model = ImpairmentModel(LinkConfig(rate_kbps=1000, delay_ms=20, overhead_bytes=250))
    d = [model.process(1000, 0.0) for _ in range(2)]
    assert [x.deliveries[0] for x in d] == pytest.approx([0.03, 0.04])


def test_queue_tail_drop_packets() -> None:
    model = ImpairmentModel(LinkConfig(rate_kbps=1000, queue_packets=2))
    d = [model.process(1250, 0.0) for _ in range(5)]
    assert [x.drop for x in d] == [None, None, None, DropCause.QUEUE, DropCause.QUEUE]
    assert model.stats.dropped_queue == 2
    # After 15 ms the first has left and the second is on the wire: one waiting, one free slot.
    assert not model.process(1250, 0.015).dropped
    assert model.process(1250, 0.015).drop is DropCause.QUEUE


def test_queue_tail_drop_bytes() -> None:
    model = ImpairmentModel(LinkConfig(rate_kbps=1000, queue_bytes=3000))
    d = [model.process(1000, 0.0) for _ in range(6)]
    # first goes straight onto the wire, three fit in 3000 bytes, the rest is dropped
    assert [x.dropped for x in d] == [False, False, False, False, True, True]
    small = ImpairmentModel(LinkConfig(rate_kbps=1000, queue_bytes=0))
    assert [small.process(100, 0.0).dropped for _ in range(2)] == [False, True]


def test_default_queue_limit_bounds_backlog() -> None:
    model = ImpairmentModel(LinkConfig(rate_kbps=100))
    d = [model.process(1000, 0.0) for _ in range(1500)]
    assert sum(x.dropped for x in d) == 1500 - 1001


def test_set_rate_mid_run_retimes_queue() -> None:
    model = ImpairmentModel(LinkConfig(rate_kbps=1000, delay_ms=10))
    for _ in range(4):
        model.process(1250, 0.0)  # departures 10, 20, 30, 40 ms
    retimes = model.set_rate(500, now=0.015)
    # #1 is half sent: its remaining 5000 bits take 10 ms at 500 kbit/s; then 20 ms each
    assert [(r.seq, r.copy) for r in retimes] == [(1, 0), (2, 0), (3, 0)]
    assert [r.when for r in retimes] == pytest.approx([0.035, 0.055, 0.075])
    assert model.process(1250, 0.015).deliveries[0] == pytest.approx(0.095)
    faster = model.set_rate(5000, now=0.03)  # #2 on the wire: 15 ms left at 500 = 1.5 ms
    assert [r.seq for r in faster] == [2, 3, 4]
    assert [r.when for r in faster] == pytest.approx([0.0415, 0.0435, 0.0455])
    unlimited = model.set_rate(None, now=0.031)  # everything queued leaves at once
    assert [r.seq for r in unlimited] == [2, 3, 4]
    assert [r.when for r in unlimited] == pytest.approx([0.041] * 3)
    assert model.process(1250, 0.031).deliveries[0] == pytest.approx(0.041)


def test_update_changes_config() -> None:
    model = ImpairmentModel(LinkConfig(), seed=1)
    assert not any(d.dropped for d in feed(model, 100))
    model.update(loss=1.0)
    assert all(d.drop is DropCause.LOSS for d in feed(model, 100))
    with pytest.raises(TypeError):
        model.update(no_such_field=1)
    with pytest.raises(ValueError):
        model.update(loss=2.0)


def full_config() -> LinkConfig:
    return LinkConfig(
        delay_ms=10,
        jitter_ms=5,
        loss=0.05,
        burst=gilbert_elliott(0.05, 3),
        reorder=0.05,
        reorder_ms=15,
        duplicate=0.05,
        rate_kbps=2000,
        queue_packets=20,
    )


def run_model(seed: int) -> list[Any]:
    rng = random.Random(99)  # same input sequence every time
    model = ImpairmentModel(full_config(), seed=seed)
    now, out = 0.0, []
    for _ in range(5000):
        now += rng.expovariate(500)
        out.append(model.process(rng.randint(50, 1400), now))
    return out


def test_determinism() -> None:
    a, b, c = run_model(11), run_model(11), run_model(12)
    assert a == b
    assert a != c
    assert {d.drop for d in a} == {None, DropCause.LOSS, DropCause.BURST, DropCause.QUEUE}


# --- proxy ---------------------------------------------------------------------------------

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {
    "asyncio": None,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=sorted(LOOPS))
def arun(request: pytest.FixtureRequest) -> Callable[[Awaitable[T]], T]:
    def runner(coro: Awaitable[T]) -> T:
        async def main() -> T:
            return await asyncio.wait_for(coro, 10)

        with asyncio.Runner(loop_factory=LOOPS[request.param]) as r:
            return r.run(main())

    return runner


class Peer(asyncio.DatagramProtocol):
    """Echo server (echo=True) or client collecting (arrival time, data)."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.got: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.sources: list[Any] = []
        self.tr: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tr = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.sources.append(addr)
        if self.echo and self.tr is not None:
            self.tr.sendto(data, addr)
        self.got.put_nowait((time.monotonic(), data))

    def send(self, data: bytes) -> None:
        assert self.tr is not None
        self.tr.sendto(data)

    async def collect(self, quiet: float = 0.2, limit: int = 100_000) -> list[tuple[float, bytes]]:
        out: list[tuple[float, bytes]] = []
        while len(out) < limit:
            try:
                out.append(await asyncio.wait_for(self.got.get(), quiet))
            except TimeoutError:
                break
        return out


async def endpoint(
    echo: bool = False, remote: tuple[str, int] | None = None
) -> tuple[Peer, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    local = None if remote else ("127.0.0.1", 0)
    tr, proto = await loop.create_datagram_endpoint(
        lambda: Peer(echo), local_addr=local, remote_addr=remote
    )
    name = tr.get_extra_info("sockname")
    return proto, (name[0], name[1])


async def with_echo(
    up: LinkConfig | None, down: LinkConfig | None, body: Callable[..., Awaitable[T]], seed: int = 0
) -> T:
    server, server_addr = await endpoint(echo=True)
    proxy = ImpairmentProxy(("127.0.0.1", 0), server_addr, up, down, seed=seed)
    async with proxy:
        client, _ = await endpoint(remote=proxy.address)
        try:
            return await body(proxy, client, server)
        finally:
            assert client.tr is not None and server.tr is not None
            client.tr.close()
            server.tr.close()


def payloads(n: int, size: int = 32) -> list[bytes]:
    return [i.to_bytes(4, "big") * (size // 4) for i in range(n)]


def test_proxy_transparent_echo(arun: Callable[[Awaitable[Any]], Any]) -> None:
    async def body(proxy: ImpairmentProxy, client: Peer, server: Peer) -> None:
        sent = payloads(200)
        t0 = time.monotonic()
        for p in sent:
            client.send(p)
        got = await client.collect()
        assert [d for _, d in got] == sent
        assert got[-1][0] - t0 < 1.0
        st = proxy.stats
        assert st.up.forwarded == st.sent_up == st.down.forwarded == st.sent_down == 200
        assert st.pending == 0 and st.overflow == 0 and st.up.dropped == 0
        assert set(server.sources) == {proxy.upstream_local}

    arun(with_echo(None, None, body))


def test_proxy_delay_keeps_order(arun: Callable[[Awaitable[Any]], Any]) -> None:
    up = LinkConfig(delay_ms=30, jitter_ms=10)
    down = LinkConfig(delay_ms=20, jitter_ms=5, jitter_dist="normal")

    async def body(proxy: ImpairmentProxy, client: Peer, server: Peer) -> None:
        sent = payloads(40)
        t_sent = []
        for p in sent:
            t_sent.append(time.monotonic())
            client.send(p)
            await asyncio.sleep(0.002)
        got = await client.collect()
        assert [d for _, d in got] == sent
        rtts = [t - s for (t, _), s in zip(got, t_sent, strict=True)]
        assert min(rtts) >= 0.02 + 0.001  # at least 20 ms up plus something down
        assert 0.04 <= statistics.median(rtts) <= 0.2

    arun(with_echo(up, down, body))


def test_proxy_loss_matches_model(arun: Callable[[Awaitable[Any]], Any]) -> None:
    cfg = LinkConfig(loss=0.3)

    async def body(proxy: ImpairmentProxy, client: Peer, server: Peer) -> None:
        for p in payloads(300):
            client.send(p)
            if p[-1] % 50 == 0:
                await asyncio.sleep(0.001)
        got = await client.collect()
        st = proxy.stats
        assert len(got) == st.up.forwarded == st.sent_down
        assert st.up.dropped_loss == 300 - len(got)
        reference = ImpairmentModel(cfg, seed="7/up")
        expected = sum(reference.process(32, 0.0).dropped for _ in range(300))
        assert st.up.dropped_loss == expected
        assert 50 <= expected <= 130
        received = [d for _, d in got]
        assert received == sorted(received)

    arun(with_echo(cfg, None, body, seed=7))


def test_proxy_duplicate_up_only(arun: Callable[[Awaitable[Any]], Any]) -> None:
    async def body(proxy: ImpairmentProxy, client: Peer, server: Peer) -> None:
        for p in payloads(20):
            client.send(p)
        got = await client.collect()
        assert [d for _, d in got] == [p for p in payloads(20) for _ in range(2)]
        assert proxy.stats.up.duplicated == 20 and proxy.stats.sent_down == 40

    arun(with_echo(LinkConfig(duplicate=1.0), None, body))


def test_proxy_client_port_change(arun: Callable[[Awaitable[Any]], Any]) -> None:
    async def body(proxy: ImpairmentProxy, client: Peer, server: Peer) -> None:
        client.send(b"first")
        assert [d for _, d in await client.collect(limit=1)] == [b"first"]
        other, other_addr = await endpoint(remote=proxy.address)
        try:
            other.send(b"second")
            assert [d for _, d in await other.collect(limit=1)] == [b"second"]
            assert proxy.client == other_addr
            assert await client.collect(quiet=0.1) == []
            assert proxy.stats.client_changes == 1
            assert set(server.sources) == {proxy.upstream_local}
            new_local = await proxy.rebind()  # NAT rebinding seen by the server
            other.send(b"third")
            assert [d for _, d in await other.collect(limit=1)] == [b"third"]
            assert server.sources[-1] == new_local
        finally:
            assert other.tr is not None
            other.tr.close()

    arun(with_echo(None, None, body))


def test_proxy_rate_limit_and_set_rate(arun: Callable[[Awaitable[Any]], Any]) -> None:
    cfg = LinkConfig(rate_kbps=400, queue_packets=100)  # 1000 B = 20 ms at 400 kbit/s

    async def burst(proxy: ImpairmentProxy, client: Peer, speed_up: bool) -> float:
        t0 = time.monotonic()
        for p in payloads(20, 1000):
            client.send(p)
        if speed_up:
            await asyncio.sleep(0.05)
            proxy.set_rate("up", 4000)  # the rest needs 2 ms each
        got = await client.collect(quiet=0.3)
        assert [d for _, d in got] == payloads(20, 1000)
        return got[-1][0] - t0

    async def body(proxy: ImpairmentProxy, client: Peer, server: Peer) -> tuple[float, float]:
        slow = await burst(proxy, client, speed_up=False)
        proxy.set_rate("up", 400)
        fast = await burst(proxy, client, speed_up=True)
        assert proxy.stats.up.queue_delay_max >= 0.3
        return slow, fast

    slow, fast = arun(with_echo(cfg, None, body))
    assert 0.35 <= slow <= 1.0
    assert fast <= 0.25


def test_proxy_queue_overflow_drops(arun: Callable[[Awaitable[Any]], Any]) -> None:
    cfg = LinkConfig(rate_kbps=800, queue_packets=5)

    async def body(proxy: ImpairmentProxy, client: Peer, server: Peer) -> None:
        for p in payloads(30, 1000):
            client.send(p)
        got = await client.collect(quiet=0.3)
        assert proxy.stats.up.dropped_queue == 30 - len(got)
        assert 6 <= len(got) <= 12

    arun(with_echo(cfg, None, body))


def test_proxy_survives_dead_upstream_and_stray_replies(
    arun: Callable[[Awaitable[Any]], Any],
) -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()
        async with ImpairmentProxy(("127.0.0.1", 0), dead) as proxy:
            stray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            stray.bind(dead)  # pretend to be the upstream, talking before any client
            stray.sendto(b"unsolicited", proxy.upstream_local)
            stray.close()
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            client.connect(proxy.address)
            for p in [b"", b"x" * 1400, *payloads(20)]:
                client.send(p)
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.05)
            client.close()
            st = proxy.stats
            assert st.up.received == 22 and st.sent_up == 22
            assert st.send_errors >= 1  # ICMP port unreachable reported, not raised
            assert st.ignored == 1 and st.sent_down == 0
        await proxy.close()  # idempotent

    arun(main())


# --- CLI -----------------------------------------------------------------------------------


def test_parse_hostport() -> None:
    assert parse_hostport("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert parse_hostport("[::1]:0") == ("::1", 0)


def test_cli_proxy_runs_and_prints_stats() -> None:
    result = CliRunner().invoke(
        lab_app,
        [
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:9",
            "--delay-ms",
            "5",
            "--loss",
            "10",
            "--burst-loss",
            "5",
            "--mean-burst",
            "3",
            "--rate-kbps",
            "1000",
            "--queue-packets",
            "10",
            "--seconds",
            "0.25",
            "--interval-seconds",
            "0.1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("up: rx=0") >= 2
    assert "final:" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--loss", "150"],
        ["--listen", "nonsense"],
        ["--up-only", "--down-only"],
        ["--queue-packets", "1", "--queue-bytes", "1"],
    ],
)
def test_cli_proxy_rejects_bad_options(args: list[str]) -> None:
    base = ["proxy", "--upstream", "127.0.0.1:9", "--seconds", "0.1"]
    result = CliRunner().invoke(lab_app, [*base, *args])
    assert result.exit_code != 0
