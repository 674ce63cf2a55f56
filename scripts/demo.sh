#!/usr/bin/env bash
# Set up (idempotent) and run the main job: a host and a client session on loopback with live stats.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/wavry demo "$@"
