#!/usr/bin/env bash
# Both README commands on a fresh Debian 12: builds a minimal Debian 12 root with debootstrap
# (from this machine's configured Debian mirror), adds only what the README assumes a user has
# (git, python3, python3-venv, python3-pip, ca-certificates), clones this repository into it and
# runs `scripts/demo.sh` and `scripts/test.sh` there as root (chroot). Too slow for CI; run it
# before changing set-up. Needs root and debootstrap (installed when missing).
#
# Usage: scripts/fresh-check.sh [--root DIR] [--keep] [--demo-only] [-- PYTEST-ARGS...]
#   --root DIR    where the Debian root goes (default: /var/tmp/wavry-fresh); reused when it
#                 already holds a bootstrapped root unless --rebuild is given
#   --rebuild     start from a new root even if DIR holds one
#   --keep        leave the root on disk afterwards (default: removed on success)
#   --demo-only   run only the main job (scripts/demo.sh)
# Exit status: 0 when both commands succeeded, 1 otherwise. A log per command goes to DIR.log/.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
ROOT=/var/tmp/wavry-fresh
KEEP=0
REBUILD=0
DEMO_ONLY=0
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --rebuild) REBUILD=1; shift ;;
        --demo-only) DEMO_ONLY=1; shift ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "fresh-check: unknown argument $1" >&2; exit 2 ;;
    esac
done
log() { printf '[fresh-check] %s\n' "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { log "needs root (debootstrap, chroot)"; exit 2; }
if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
fi

# The mirror this machine's apt uses (deb822 sources first, then the classic list).
MIRROR=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
    | grep -v security | head -n1 || true)
[ -n "$MIRROR" ] || MIRROR=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -n1)
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
LOGS="$ROOT.log"
mkdir -p "$LOGS"

mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
    # `ip netns` run by the tests inside the root mounts its own /run/netns there
    if mountpoint -q "$ROOT/run/netns" 2>/dev/null; then umount -l "$ROOT/run/netns" || true; fi
}
trap cleanup EXIT

if [ "$REBUILD" -eq 1 ] || [ ! -x "$ROOT/usr/bin/python3" ]; then
    rm -rf "$ROOT"
    log "debootstrap bookworm (minbase) from $MIRROR into $ROOT"
    debootstrap --variant=minbase \
        --include=git,python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$ROOT" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 \
        || { log "debootstrap failed (see $LOGS/debootstrap.log)"; exit 1; }
    # the same sources as this machine (updates and security included)
    if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
        cp /etc/apt/sources.list.d/*.sources "$ROOT/etc/apt/sources.list.d/"
        rm -f "$ROOT/etc/apt/sources.list"
    elif [ -f /etc/apt/sources.list ]; then
        cp /etc/apt/sources.list "$ROOT/etc/apt/sources.list"
    fi
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# This machine's own certificate authorities (an egress proxy's, say) are part of the machine, not
# of the project: a fresh machine behind the same proxy has them too.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || true
fi
# the root a mount point of its own: `ip netns exec` (and `ip -n`) makes `/` a slave mount,
# which fails with "Invalid argument" where `/` is a plain directory of another file system
mount --bind "$ROOT" "$ROOT"
mounted+=("$ROOT")
for fs in proc sys dev dev/pts dev/shm; do
    mkdir -p "$ROOT/$fs"
    case "$fs" in
        proc) mount -t proc proc "$ROOT/proc" ;;
        sys) mount --rbind /sys "$ROOT/sys" ;;
        dev/shm) mount -t tmpfs -o mode=1777 tmpfs "$ROOT/dev/shm" ;;
        *) mount --bind "/$fs" "$ROOT/$fs" ;;
    esac
    mounted+=("$ROOT/$fs")
done
mkdir -p "$ROOT/run/netns" "$ROOT/tmp"
chmod 1777 "$ROOT/tmp"

# A clone of the committed state (what a user gets), not this working tree.
rm -rf "$ROOT/root/wavry"
git clone -q "$REPO" "$ROOT/root/wavry"
log "cloned $(git -C "$REPO" rev-parse --short HEAD) into $ROOT/root/wavry"

run_in_root() {  # NAME COMMAND...
    local name=$1; shift
    log "running $* (log: $LOGS/$name.log)"
    local start=$SECONDS rc=0
    chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        /bin/bash -c "cd /root/wavry && $*" >"$LOGS/$name.log" 2>&1 || rc=$?
    log "$name: exit $rc after $((SECONDS - start)) s"
    return "$rc"
}

status=0
run_in_root demo "scripts/demo.sh --seconds 8" || status=1
tail -n 25 "$LOGS/demo.log" >&2
if [ "$DEMO_ONLY" -eq 0 ]; then
    run_in_root test "scripts/test.sh ${PYTEST_ARGS[*]:-}" || status=1
    tail -n 15 "$LOGS/test.log" >&2
    # idempotence: the set-up again changes nothing and succeeds quickly
    run_in_root setup-again "scripts/setup.sh" || status=1
fi
cleanup
mounted=()
if [ "$status" -eq 0 ]; then
    if [ "$DEMO_ONLY" -eq 1 ]; then
        log "PASS: the README's main job (set-up and demo) works on a fresh Debian 12 root"
    else
        log "PASS: both README commands work on a fresh Debian 12 root"
    fi
    [ "$KEEP" -eq 1 ] || rm -rf "$ROOT"
else
    log "FAIL: see $LOGS/"
fi
exit "$status"
