"""``python -m wavry.gateway`` runs the gateway alone (same options as ``wavry gateway``)."""

import typer

from wavry.gateway.cli import gateway_command

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command()(gateway_command)
app()
