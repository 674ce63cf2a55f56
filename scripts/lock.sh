#!/usr/bin/env bash
# Regenerate the pinned, hashed dependency locks under requirements/ from pyproject.toml:
#   services.lock  the gateway and relay (container images, system units)
#   app.lock       host, client and desktop app (what a user's machine runs)
#   dev.lock       everything, with the test and benchmark tools (scripts/setup.sh installs it)
# Needs uv (`pip install uv`); run after changing dependencies in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null || { echo "lock.sh: needs uv (pip install uv)" >&2; exit 2; }
mkdir -p requirements
common=(--python-version 3.11 --generate-hashes --quiet)
uv pip compile pyproject.toml --extra services "${common[@]}" -o requirements/services.lock
uv pip compile pyproject.toml --extra stream --extra wayland --extra desktop "${common[@]}" \
    -o requirements/app.lock
uv pip compile pyproject.toml --all-extras "${common[@]}" -o requirements/dev.lock
