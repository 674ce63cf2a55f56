"""One dbus-fast connection on a private thread with its own event loop, behind a blocking API.

The Wayland back-ends (the xdg-desktop-portal client, Mutter's remote-desktop interfaces) are
used from a capture thread, the host's asyncio loop and tests alike; they all talk D-Bus through
this: ``run(coro)`` runs a coroutine on the private loop and waits for it, ``send()`` puts a
method call on the wire without waiting for its reply (input must never wait on a D-Bus round
trip; failures are counted in ``log``), and signals reach ``on_signal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

__all__ = ["CallLog", "DBusCallError", "DBusThread", "dbus_error_text", "unwrap"]

T = TypeVar("T")

PROPERTIES = "org.freedesktop.DBus.Properties"


class DBusCallError(RuntimeError):
    """A D-Bus connection or call failed; the message names the call and the error."""

    def __init__(self, message: str, error_name: str = "") -> None:
        super().__init__(message)
        self.error_name = error_name


def unwrap(value: Any) -> Any:
    return value.value if isinstance(value, Variant) else value


def dbus_error_text(reply: Message) -> str:
    body = reply.body[0] if reply.body else ""
    return f"{reply.error_name}: {body}"


@dataclass
class CallLog:
    """Calls sent without waiting (``send``) and how many of them failed."""

    sent: int = 0
    errors: int = 0
    last_error: str = ""
    pending: set[asyncio.Future[Any]] = field(default_factory=set)


class DBusThread:
    """A private event loop thread owning one bus connection (see module docstring)."""

    def __init__(
        self,
        bus_address: str,
        *,
        call_timeout: float = 10.0,
        name: str = "wavry-dbus",
        on_signal: Callable[[Message], None] | None = None,
    ) -> None:
        self.bus_address = bus_address
        self.call_timeout = call_timeout
        self.name = name
        self.on_signal = on_signal
        self.log = CallLog()
        self.bus: MessageBus | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---- the loop --------------------------------------------------------------------

    def start(self) -> None:
        if self.loop is not None:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        ready.wait(5)
        self.loop = loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the private loop and return its result (raises what it raises)."""
        if self.loop is None:
            coro.close()
            raise DBusCallError("the D-Bus connection is not open")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise DBusCallError(f"no answer on D-Bus within {timeout:.0f} s") from None

    # ---- on the loop -----------------------------------------------------------------

    async def connect(self) -> None:
        if not self.bus_address:
            raise DBusCallError(
                "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset); run inside the "
                "desktop session or `dbus-run-session -- wavry host ...`"
            )
        try:
            bus = MessageBus(bus_address=self.bus_address, negotiate_unix_fd=True)
            await asyncio.wait_for(bus.connect(), self.call_timeout)
        except Exception as exc:  # OSError, TimeoutError, dbus-fast's auth errors
            raise DBusCallError(
                f"cannot connect to the D-Bus session bus {self.bus_address}: {exc}"
            ) from exc
        bus.add_message_handler(self._on_message)
        self.bus = bus

    def _on_message(self, msg: Message) -> bool:
        if msg.message_type == MessageType.SIGNAL and self.on_signal is not None:
            self.on_signal(msg)
        return False

    async def call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: list[Any] | None = None,
    ) -> Message:
        if self.bus is None:
            raise DBusCallError("the D-Bus connection is not open")
        msg = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body or [],
        )
        try:
            reply = await asyncio.wait_for(self.bus.call(msg), self.call_timeout)
        except TimeoutError:
            raise DBusCallError(
                f"{interface}.{member} got no answer within {self.call_timeout:.0f} s"
            ) from None
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise DBusCallError(
                f"{interface}.{member} failed: {dbus_error_text(reply)}", reply.error_name or ""
            )
        return reply

    async def add_match(self, rule: str) -> None:
        await self.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            "s",
            [rule],
        )

    async def get_property(self, destination: str, path: str, interface: str, name: str) -> Any:
        reply = await self.call(destination, path, PROPERTIES, "Get", "ss", [interface, name])
        return unwrap(reply.body[0])

    async def name_has_owner(self, name: str) -> bool:
        reply = await self.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            "s",
            [name],
        )
        return bool(reply.body[0])

    # ---- fire and forget ---------------------------------------------------------------

    def send(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str,
        body: list[Any],
    ) -> None:
        """Send a method call from any thread without waiting; in order on one connection."""
        loop = self.loop
        if loop is None or self.bus is None:
            raise DBusCallError("the D-Bus connection is not open")

        def go() -> None:
            if self.bus is None:
                return
            msg = Message(
                destination=destination,
                path=path,
                interface=interface,
                member=member,
                signature=signature,
                body=body,
            )
            fut = asyncio.ensure_future(self.bus.call(msg))
            self.log.sent += 1
            self.log.pending.add(fut)
            fut.add_done_callback(lambda f: self._sent(member, f))

        loop.call_soon_threadsafe(go)

    def _sent(self, member: str, fut: asyncio.Future[Any]) -> None:
        self.log.pending.discard(fut)
        if fut.cancelled():
            return
        exc = fut.exception()
        reply = None if exc is not None else fut.result()
        if exc is not None:
            self.log.errors += 1
            self.log.last_error = f"{member}: {exc}"
        elif reply is not None and reply.message_type == MessageType.ERROR:
            self.log.errors += 1
            self.log.last_error = f"{member} failed: {dbus_error_text(reply)}"

    async def drain(self) -> None:
        """Wait until every call ``send()`` put out so far has been answered."""
        # let the call_soon_threadsafe callbacks queued before this run first
        await asyncio.sleep(0)
        while self.log.pending:
            await asyncio.wait(set(self.log.pending), timeout=self.call_timeout)

    def sync(self) -> None:
        if self.loop is not None and self.bus is not None:
            self.run(self.drain(), self.call_timeout + 5)

    # ---- end -------------------------------------------------------------------------

    async def disconnect(self) -> None:
        bus, self.bus = self.bus, None
        if bus is None:
            return
        bus.disconnect()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bus.wait_for_disconnect(), 2)  # type: ignore[no-untyped-call]

    def stop(self, closing: Coroutine[Any, Any, None] | None = None) -> None:
        """Run ``closing`` (if any), disconnect and end the thread. Idempotent."""
        loop, self.loop = self.loop, None
        if loop is None:
            if closing is not None:
                closing.close()
            return

        async def finish() -> None:
            if closing is not None:
                with contextlib.suppress(Exception):
                    await closing
            await self.disconnect()

        try:
            fut = asyncio.run_coroutine_threadsafe(finish(), loop)
            with contextlib.suppress(Exception):
                fut.result(5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(5)
                self._thread = None
