#!/usr/bin/env bash
# Build the control-plane container images from deploy/ with podman, on a machine that reaches no
# image registry: the base image the Dockerfiles name (python:3.11-slim) is made here from a
# Debian 12 root (debootstrap, from this machine's Debian mirror) with Debian's python3, under the
# same name, so deploy/Dockerfile.* stay the standard files a Docker user builds.
#
# Usage: scripts/images.sh base            the base image only (cached: rebuilt when this recipe
#                                          changes or with --rebuild)
#        scripts/images.sh build           base, then wavry-gateway and wavry-relay, tagged
#                                          VERSION and latest (podman's layer cache keeps the
#                                          dependency layer between runs)
#        scripts/images.sh sizes           image sizes in bytes, one "NAME SIZE" per line
#        scripts/images.sh conf            write the podman configuration these builds use and
#                                          print its path (export it as CONTAINERS_CONF)
#   --rebuild    make the base image again even when one of this recipe exists
#   --quiet      only errors on stderr
# Needs root, podman and debootstrap (both Debian packages; scripts/setup.sh installs them).
# Runs of this script are serialised with a lock (builds share podman's storage).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
BASE_NAME=docker.io/library/python:3.11-slim
RECIPE_LABEL=org.wavry.base-recipe
CACHE=${WAVRY_IMAGE_CACHE:-/var/cache/wavry-images}
REBUILD=0
QUIET=0
CMD=${1:-}
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
    case "$1" in
        --rebuild) REBUILD=1; shift ;;
        --quiet) QUIET=1; shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "images.sh: error: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$CMD" in base|build|sizes|conf) ;; -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "images.sh: error: usage: scripts/images.sh base|build|sizes|conf [--rebuild] [--quiet]" >&2
       exit 2 ;;
esac
log() { [ "$QUIET" -eq 1 ] || printf '[images] %s\n' "$*" >&2; }
die() { printf 'images.sh: error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, podman's root storage)"
command -v podman >/dev/null || die "needs podman (apt-get install podman)"

VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/wavry/__init__.py)
[ -n "$VERSION" ] || die "no __version__ in src/wavry/__init__.py"

# podman's configuration for these builds and the tests' containers, written next to the cache:
# runc (Debian's crun 1.8 refuses hosts with hybrid cgroup v1/v2; runc runs on both), limits no
# higher than this machine's hard ones (podman's defaults exceed them in sandboxes and the
# runtime then fails), and no network unless one is asked for (no bridge with private addresses).
mkdir -p "$CACHE"
CONF="$CACHE/containers.conf"
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
printf '%s\n' "# written by scripts/images.sh" "[containers]" \
    "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]" \
    'netns = "none"' "" "[engine]" 'runtime = "runc"' >"$CONF.$$"
mv "$CONF.$$" "$CONF"
export CONTAINERS_CONF="$CONF"
if [ "$CMD" = conf ]; then
    echo "$CONF"
    exit 0
fi
command -v runc >/dev/null || die "needs runc (apt-get install runc)"

if [ "$CMD" = sizes ]; then
    for name in wavry-gateway wavry-relay; do
        printf '%s %s\n' "$name" "$(podman image inspect --format '{{.Size}}' "localhost/$name:$VERSION")"
    done
    exit 0
fi

exec 9>"$CACHE/lock"
flock 9

# The recipe of the base image: this script's base section. A change rebuilds the image.
RECIPE=$(sed -n '/^# --- base recipe ---$/,/^# --- end of base recipe ---$/p' "$0" | sha256sum | cut -c1-16)

# --- base recipe ---
make_base() {
    command -v debootstrap >/dev/null || die "needs debootstrap (apt-get install debootstrap)"
    local mirror root
    mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
        | grep -v security | head -n1 || true)
    [ -n "$mirror" ] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -n1)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    root="$CACHE/base-root"
    rm -rf "$root"
    log "debootstrap bookworm (minbase + python3, pip) from $mirror (a few minutes)"
    debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates \
        bookworm "$root" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
        || die "debootstrap failed (see $CACHE/debootstrap.log)"
    # Debian's sources of this machine, so `apt-get install` works in builds FROM this image.
    if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
        cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/"
        rm -f "$root/etc/apt/sources.list"
    fi
    # This machine's own certificate authorities (an egress proxy's) are the machine's, not the
    # project's: pip inside a build goes through the same proxy.
    if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
        chroot "$root" update-ca-certificates >/dev/null 2>&1
    fi
    # What the official python image offers: `python` and `pip` on PATH, and pip allowed to
    # install into the system interpreter (that image has no PEP 668 marker either).
    ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
    ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
    # Small like a slim image: no documentation, no package lists or caches.
    cat >"$root/etc/dpkg/dpkg.cfg.d/01-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/root/.cache
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    find "$root/usr/lib/python3" "$root"/usr/lib/python3.* -name __pycache__ -type d -prune \
        -exec rm -rf {} +
    : >"$root/etc/resolv.conf"
    log "importing the root as $BASE_NAME"
    tar -C "$root" --numeric-owner -cf - . | podman import \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change "ENV LANG=C.UTF-8" \
        --change "LABEL $RECIPE_LABEL=$RECIPE" \
        --change 'CMD ["python3"]' \
        --message "Debian 12 (debootstrap minbase) with Debian's python3 and pip" \
        --quiet - "$BASE_NAME" >/dev/null
    rm -rf "$root"
}
# --- end of base recipe ---

base_image() {
    local have
    have=$(podman image inspect --format "{{index .Labels \"$RECIPE_LABEL\"}}" "$BASE_NAME" \
        2>/dev/null || true)
    if [ "$REBUILD" -eq 0 ] && [ "$have" = "$RECIPE" ]; then
        log "base image $BASE_NAME is current (recipe $RECIPE)"
        return
    fi
    make_base
}

base_image
# The build context: only what the images install (the .dockerignore says the same), staged in a
# temporary directory — handing podman the repository root makes it walk .venv/, node_modules/
# and .git/ file by file (minutes of CPU) only to ignore them.
stage_context() {
    local ctx
    ctx=$(mktemp -d /var/tmp/wavry-image-context.XXXXXX)
    cp "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/.dockerignore" "$ctx/"
    mkdir -p "$ctx/requirements"
    cp "$REPO/requirements/services.lock" "$ctx/requirements/"
    tar -C "$REPO" --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' -cf - src \
        | tar -C "$ctx" -xf -
    echo "$ctx"
}

[ "$CMD" = base ] || {
    CONTEXT=$(stage_context)
    trap 'rm -rf "$CONTEXT"' EXIT
    for name in gateway relay; do
        log "building wavry-$name:$VERSION from deploy/Dockerfile.$name"
        # --format docker keeps HEALTHCHECK (the OCI image config has no field for it);
        # --pull=never: the base is the local one; --network host: pip reaches PyPI as the
        # machine does.
        podman build --quiet --pull=never --format docker --network host \
            --label "org.opencontainers.image.version=$VERSION" \
            -f "$REPO/deploy/Dockerfile.$name" -t "localhost/wavry-$name:$VERSION" \
            -t "localhost/wavry-$name:latest" "$CONTEXT" >/dev/null \
            || die "podman build of deploy/Dockerfile.$name failed"
    done
    # the images these replaced (untagged now) and their layers: keeps the cache from growing
    podman image prune -f >/dev/null 2>&1 || true
    log "built: $(podman image inspect --format '{{index .RepoTags 0}} {{.Size}}' \
        localhost/wavry-gateway:"$VERSION" localhost/wavry-relay:"$VERSION" | tr '\n' ' ')"
}
