#!/bin/sh
# As the official image: `redis-server ...` runs with protected mode off (clients from other
# containers), anything else runs as given.
set -eu
if [ "${1:-}" = redis-server ]; then
    shift
    exec redis-server --protected-mode no "$@"
fi
exec "$@"
