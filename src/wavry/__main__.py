"""`python -m wavry` runs the CLI."""

from wavry.cli import main

main()
