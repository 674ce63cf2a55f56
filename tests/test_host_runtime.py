"""Host runtime wiring: a session's end releases everything its client held and stops idle
streaming (docs/spec/RIFT.md §4 step 8)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.runtime.host import HostOptions, HostRuntime


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[rift_pb2.InputMessage] = []
        self.released = 0

    def handle(self, event: rift_pb2.InputMessage) -> None:
        self.events.append(event)

    def release_all(self) -> None:
        self.released += 1

    def close(self) -> None:
        pass


class RecordingPads:
    def __init__(self) -> None:
        self.released = 0

    def handle(self, pad: rift_pb2.GamepadMessage) -> None:
        pass

    def release_all(self) -> None:
        self.released += 1

    def close(self) -> None:
        pass


def test_session_end_releases_input_and_stops_idle_stream(tmp_path: Path) -> None:
    async def run() -> None:
        opts = HostOptions(
            listen=("127.0.0.1", 0), trust_any=True, config_dir=tmp_path, source="synthetic",
            width=320, height=240, fps=30,
        )  # fmt: skip
        rt = HostRuntime(opts)
        await rt.start()
        sink, pads = RecordingSink(), RecordingPads()
        sent: list[int] = []
        # the aliases below have no RIFT session behind them: record what would be sent
        rt.endpoint.send_frame = lambda alias, *a, **k: sent.append(alias) or 1  # type: ignore[method-assign]
        rt.injector = sink  # type: ignore[assignment]
        rt.gamepads = pads  # type: ignore[assignment]
        ack = rift_pb2.HelloAck(
            accepted=True, selected_codec=rift_pb2.H264, fps=30, initial_bitrate_kbps=1000,
            stream_resolution=rift_pb2.Resolution(width=320, height=240),
        )  # fmt: skip
        rt._on_event(ev.ClientAccepted(7, "id", rift_pb2.Hello(), ack))
        assert rt.streamer is not None and rt.viewers == {7}
        key = rift_pb2.InputMessage(key=rift_pb2.Key(keycode=30, pressed=True))
        rt._on_event(ev.ClientMessage(7, rift_pb2.Message(input=key)))
        assert [e.key.keycode for e in sink.events] == [30]
        rt._on_event(ev.ClientGone(7, "id", ev.DisconnectReason.TIMEOUT, "gone"))
        assert sink.released == 1 and pads.released == 1
        assert rt.viewers == set() and rt.streamer is None
        # a client arriving while the old stream still stops gets a stream once it has stopped
        rt._on_event(ev.ClientAccepted(8, "id2", rift_pb2.Hello(), ack))
        assert rt._stopping is not None
        await rt._stopping
        for _ in range(50):  # the restart runs from the stop's done-callback
            if rt.streamer is not None:
                break
            await asyncio.sleep(0.01)
        assert rt.streamer is not None and rt.viewers == {8}
        await rt.close()

    asyncio.run(run())
