"""The control-plane services: `wavry gateway` and `wavry relay` (their options live with them)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from wavry.gateway.cli import gateway_command
    from wavry.relay.cli import relay_command

    app.command(
        "gateway", help="Run the control plane: accounts, signaling, relay leases, STUN, admin."
    )(gateway_command)
    app.command("relay", help="Run a blind UDP relay for peers that cannot reach each other.")(
        relay_command
    )
