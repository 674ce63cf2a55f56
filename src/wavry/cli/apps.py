"""`wavry demo` and `wavry doctor`."""

from __future__ import annotations

from typing import Annotated

import typer

from wavry.cli.common import fail, say, write_json
from wavry.net.loop import run


def demo(
    seconds: Annotated[float, typer.Option(min=1.0, help="How long to run")] = 10.0,
) -> None:
    """Run a host and a client on loopback and print live session statistics."""
    from wavry.runtime.demo import DemoFailed, run_demo

    try:
        code = run(run_demo(seconds))
    except DemoFailed as exc:
        fail(str(exc))
    raise typer.Exit(code)


def doctor(
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write the probes as JSON to FILE (- = stdout)")
    ] = None,
    display: Annotated[str | None, typer.Option(help="X display to probe, e.g. :0")] = None,
) -> None:
    """Probe capture, encoders, decoders, input, audio, clipboard and network; say what to fix."""
    from wavry.doctor import render_table, run_doctor, to_json

    results = run_doctor(display)
    write_json(json_out, to_json(results))
    say(render_table(results), json_out)
