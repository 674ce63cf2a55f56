"""Who may connect: the trusted-devices file, pairing codes, and pairing requests the owner
answers. The session core issues and checks the codes (docs/spec/RIFT.md §4 step 4); this keeps
the file and the core's set in step and reports what happens to the observer."""

from __future__ import annotations

from wavry.host.notices import (
    Observer,
    Paired,
    PairingAttemptFailed,
    PairingCodeShown,
    PairingRequested,
)
from wavry.net.addr import format_hostport
from wavry.rift.events import (
    DevicePaired,
    DisconnectReason,
    PairingCodeIssued,
)
from wavry.rift.events import (
    PairingAttemptFailed as CorePairingAttemptFailed,
)
from wavry.rift.host import HostEndpoint
from wavry.rift.pairing import MAX_ATTEMPTS
from wavry.rift.ratelimit import source_key
from wavry.store import TrustedDevice, TrustedDevices

__all__ = ["Trust"]


class Trust:
    def __init__(self, store: TrustedDevices, endpoint: HostEndpoint, notify: Observer) -> None:
        self.store = store
        self.endpoint = endpoint
        self.notify = notify

    # ---- the owner's side -------------------------------------------------------------

    def devices(self) -> list[TrustedDevice]:
        return self.store.load()

    def forget(self, wavry_id: str) -> bool:
        """Stop trusting a device; its open sessions end now."""
        found = self.store.remove(wavry_id)
        self.endpoint.trusted.discard(wavry_id)
        for s in list(self.endpoint.sessions.values()):
            if s.client_id == wavry_id:
                self.endpoint.close_session(
                    s.alias, DisconnectReason.NOT_TRUSTED, "this host no longer trusts you"
                )
        return found

    def show_code(self, now: float) -> str | None:
        """Issue a pairing code now (`wavry host --pair`); None while codes are cooling down."""
        return self.endpoint.issue_pairing_code(now)

    def active_code(self, now: float, address: tuple[str, int] | None = None) -> str:
        """The code a device at ``address`` would type (the owner's when none is given)."""
        source = source_key(address[0]) if address is not None else None
        return self.endpoint.pairing.active_code(now, source) or ""

    def refuse(self, peer: int) -> None:
        """The owner refuses a device asking to pair: its session ends."""
        if peer in self.endpoint.sessions:
            self.endpoint.close_session(
                peer, DisconnectReason.NOT_TRUSTED, "the host's owner refused to pair"
            )

    # ---- the core's events ------------------------------------------------------------

    def on_code(self, event: PairingCodeIssued, now: float) -> None:
        self.notify(PairingCodeShown(event.code, event.expires_at - now, MAX_ATTEMPTS))

    def on_pairing_required(
        self, peer: int, wavry_id: str, name: str, addr: tuple[str, int] | None, now: float
    ) -> None:
        code = self.active_code(now, addr)
        why = "" if code else "no code for it now (too many requests or wrong codes from there)"
        address = "" if addr is None else format_hostport(*addr)
        self.notify(PairingRequested(peer, wavry_id, name, address, code, why))

    def on_paired(self, event: DevicePaired) -> None:
        self.store.add(event.client_id, event.name)
        self.notify(Paired(event.client_id, event.name))

    def on_failed(self, event: CorePairingAttemptFailed) -> None:
        self.notify(PairingAttemptFailed(event.client_id, event.attempts_left))
