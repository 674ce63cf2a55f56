#!/usr/bin/env bash
# Idempotent set-up for Wavry on Debian 12: system packages, the virtual environment at .venv/,
# pinned Python dependencies from requirements/dev.lock, generated protobuf code, and the `wavry`
# command (.venv/bin/wavry). Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STAMP_DIR="$ROOT/.venv/.wavry-setup"

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root for: $*"; exit 1; fi
}

# System packages the project uses. Installed only when something is missing.
APT_PACKAGES=(python3 python3-venv python3-dev gcc iproute2 procps xvfb xauth xdotool x11-utils
    redis-server postgresql chromium fonts-dejavu-core
    pipewire pipewire-bin wireplumber pipewire-pulse pulseaudio-utils dbus-daemon
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly gstreamer1.0-pipewire
    gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 libgirepository1.0-dev libcairo2-dev pkg-config
    sway wl-clipboard
    libyuv0  # fast BGRx <-> I420 conversion for the encoder (wavry.media.yuv; swscale without it)
    x11vnc tigervnc-viewer freerdp2-shadow-x11 freerdp2-x11  # wavry bench peers: VNC and RDP
    nftables conntrack miniupnpd-nftables  # NAT traversal tests: NATs in namespaces, a UPnP router
    podman runc debootstrap pipx systemd  # release tests: images, pipx install, unit checks
    # Wayland tests: a headless GNOME Shell and its portal, the wlroots portal, the GTK window
    gnome-shell xdg-desktop-portal xdg-desktop-portal-gnome xdg-desktop-portal-wlr gir1.2-gtk-3.0
    kwin-wayland  # KDE: kwin_wayland --virtual with its screencast and fake-input protocols
    libglib2.0-bin
    gnome-keyring  # wavry desktop tests: a real Secret Service for the session token
    # wavry desktop on X11: Qt's xcb platform plugin (PySide6 wheel) loads these
    libxcb-cursor0 libxcb-image0 libxcb-keysyms1 libxcb-icccm4 libxcb-render-util0
    libxcb-shape0 libxkbcommon-x11-0)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
fi
# A python3 >= 3.11 with venv, ensurepip and its C headers already on PATH (e.g. pyenv) is good
# enough for the python packages (pygobject and pycairo compile against the headers). Debian's own
# python3 has venv only with python3-venv and headers only with python3-dev, so those stay.
if python3 -c 'import sys, venv, ensurepip, sysconfig, os
sys.exit(sys.version_info < (3, 11) or sys.prefix == "/usr"
         or not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
    filtered=()
    for p in "${missing[@]}"; do
        case "$p" in python3|python3-venv|python3-dev) ;; *) filtered+=("$p");; esac
    done
    missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=python3
# A .venv left broken by an interrupted run (no python, or no pip in it) is made again.
if [ -d .venv ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    log "the virtual environment .venv/ is incomplete (an interrupted set-up?): making it again"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    log "creating virtual environment .venv/"
    "$PY" -m venv .venv
fi

mkdir -p "$STAMP_DIR"
lock_sum=$(sha256sum requirements/dev.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP_DIR/deps" 2>/dev/null)" != "$lock_sum" ]; then
    log "installing pinned dependencies (requirements/dev.lock)"
    pip_log=$(mktemp)
    if ! .venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes \
            -r requirements/dev.lock >"$pip_log" 2>&1; then
        grep -v "is ignored: it is neither a file nor a directory" "$pip_log" >&2 || true
        rm -f "$pip_log"; log "dependency installation failed"; exit 1
    fi
    rm -f "$pip_log"
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
    echo "$lock_sum" > "$STAMP_DIR/deps"
fi

# Generated protobuf code (committed; regenerated here so a changed .proto never goes stale).
.venv/bin/python scripts/gen_proto.py --quiet 2>/dev/null || .venv/bin/python scripts/gen_proto.py --quiet

# Byte-code for the package: every `wavry` process otherwise compiles the sources it imports
# again where PYTHONDONTWRITEBYTECODE is set (containers, CI), seconds per process start.
.venv/bin/python -m compileall -q -j 0 src/wavry >/dev/null

# The protocol core (src/wavry/rift) compiled with mypyc: the same source as C extensions, about
# twice as fast per datagram (src/wavry/native.py). Built for exactly the current sources: only
# when they changed (about a minute on 2 cores), and an edited module runs as plain Python until
# this runs again.
# A failed build is reported and set-up goes on: everything works on the plain Python, at about
# twice the CPU per datagram (scripts/test.sh then fails tests/test_native.py).
if ! .venv/bin/python -m wavry.native --check; then
    log "compiling the protocol core with mypyc (about a minute)"
    native_log=$(mktemp)
    if ! .venv/bin/python -m wavry.native >"$native_log" 2>&1; then
        tail -n 30 "$native_log" >&2
        log "building the compiled protocol core failed (above): it runs as plain Python"
    fi
    rm -f "$native_log"
fi

# The browser client (web/ → src/wavry/web/static/, served by `wavry host --web` and the gateway):
# npm packages from web/package-lock.json, then the esbuild bundle. Each step runs only when its
# inputs changed; the bundle is never committed. Needs Node.js >= 18 with npm (Debian 12's
# nodejs + npm, or NodeSource's nodejs).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "installing Node.js and npm (the browser client is built with them)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
    log "Node.js $(node --version) is too old for the browser client (needs 18 or newer)"; exit 1
fi
npm_sum=$(sha256sum web/package.json web/package-lock.json | sha256sum | cut -d' ' -f1)
if [ ! -d web/node_modules ] || [ "$(cat "$STAMP_DIR/npm" 2>/dev/null)" != "$npm_sum" ]; then
    log "installing the browser client's npm packages (web/package-lock.json)"
    (cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
    echo "$npm_sum" > "$STAMP_DIR/npm"
    rm -f "$STAMP_DIR/web"
fi
web_sum=$( (cd web && find build.mjs tsconfig.json src -type f -print0 | sort -z | xargs -0 sha256sum) \
    | sha256sum | cut -d' ' -f1)
if [ ! -f src/wavry/web/static/app.js ] || [ "$(cat "$STAMP_DIR/web" 2>/dev/null)" != "$web_sum" ]; then
    log "building the browser client (web/ → src/wavry/web/static/)"
    rm -rf src/wavry/web/static
    (cd web && node build.mjs)
    echo "$web_sum" > "$STAMP_DIR/web"
fi

# `wavry bench peers` compares wavry with Selkies, which lives in its own virtual environment under
# the cache directory (never among Wavry's dependencies). Best effort: without it the benchmark
# reports Selkies as "not run" (and installs it on first use). No test needs it, so CI skips it;
# WAVRY_SETUP_SELKIES=0 skips it, =1 installs it in CI too.
if [ "${WAVRY_SETUP_SELKIES:-$([ "${CI:-}" = true ] && echo 0 || echo 1)}" != 0 ]; then
    .venv/bin/python -c 'from wavry.bench.peers.run import default_cache_dir
from wavry.bench.peers.selkies import ensure_selkies
ensure_selkies(default_cache_dir())' 2>/dev/null \
        || log "Selkies not installed (wavry bench peers will try again, or report it as not run)"
fi
