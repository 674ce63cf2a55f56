#!/usr/bin/env bash
# Write a release into dist/: the wheel and sdist (python -m build), the gateway and relay images
# as OCI archives (scripts/images.sh, then podman save --format oci-archive), the systemd units,
# SHA256SUMS and manifest.json (name, version, kind, sha256, size of each artifact).
#
# Usage: scripts/release.sh [--out DIR] [--no-images] [--no-check]
#   --out DIR     where the artifacts go (default: dist/); the directory is emptied first
#   --no-images   skip the container images (no podman/root needed): packages and units only
#   --no-check    do not run the container checks (pytest -m images: the images' users, size,
#                 health checks, the compose stack with a control-plane smoke) before saving
# The version is wavry.__version__ (src/wavry/__init__.py). Timestamps inside the packages come
# from the last commit (SOURCE_DATE_EPOCH), so two runs on one commit give the same wheel.
# Check a release: cd dist && sha256sum -c SHA256SUMS
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT="$REPO/dist"
IMAGES=1
CHECK=1
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$(realpath -m "$2"); shift 2 ;;
        --no-images) IMAGES=0; shift ;;
        --no-check) CHECK=0; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "release.sh: error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
log() { printf '[release] %s\n' "$*" >&2; }
die() { printf 'release.sh: error: %s\n' "$*" >&2; exit 1; }

PY="$REPO/.venv/bin/python"
[ -x "$PY" ] || die "no .venv: run scripts/setup.sh first"
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/wavry/__init__.py)
echo "$VERSION" | grep -Eq '^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$' \
    || die "wavry.__version__ '$VERSION' is not a semantic version"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
[ -n "$(git status --porcelain 2>/dev/null)" ] && log "note: the working tree has uncommitted changes"

rm -rf "$OUT"
mkdir -p "$OUT"
log "wavry $VERSION: wheel and sdist"
# Built from a copy of the tracked files only: a stale src/*.egg-info (its SOURCES.txt) or an
# untracked file in the working tree must not slip into the packages.
src_copy=$(mktemp -d)
build_log="$src_copy.log"
trap 'rm -rf "$src_copy" "$build_log"' EXIT
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$src_copy"
# The browser client (docs/browser.md) is built, never tracked: bundle it into the copy so the
# wheel carries it (`wavry host --web`, the gateway's /app).
[ -d web/node_modules ] || die "web/node_modules is missing: run scripts/setup.sh first"
log "browser client bundle (web/ -> src/wavry/web/static/)"
(cd web && node build.mjs --outdir "$src_copy/src/wavry/web/static") >"$build_log" 2>&1 \
    || { tail -n 30 "$build_log" >&2; die "the browser client did not build"; }
if ! "$PY" -m build --outdir "$OUT" "$src_copy" >"$build_log" 2>&1; then
    tail -n 30 "$build_log" >&2; die "python -m build failed"
fi

log "systemd units"
for unit in deploy/systemd/*.service; do
    install -m 0644 "$unit" "$OUT/$(basename "$unit")"
done

if [ "$IMAGES" -eq 1 ]; then
    log "container images (scripts/images.sh build)"
    scripts/images.sh build --quiet
    CONTAINERS_CONF=$(scripts/images.sh conf)
    export CONTAINERS_CONF
    if [ "$CHECK" -eq 1 ]; then
        # The container checks live outside the default suite (a first base-image build takes
        # minutes): a release never ships images they have not passed.
        log "container checks (pytest -m images)"
        "$REPO/.venv/bin/pytest" -q -m images -p no:cacheprovider tests/release/test_images.py \
            || die "the container checks failed"
    fi
    for name in gateway relay; do
        archive="$OUT/wavry-$name-$VERSION.oci.tar"
        podman save --quiet --format oci-archive -o "$archive" "localhost/wavry-$name:$VERSION" \
            || die "podman save wavry-$name failed"
        chmod 0644 "$archive"
    done
fi

log "SHA256SUMS and manifest.json"
"$PY" - "$OUT" "$VERSION" <<'EOF'
import hashlib, json, sys
from pathlib import Path

out, version = Path(sys.argv[1]), sys.argv[2]


def kind(name: str) -> str:
    if name.endswith(".whl"):
        return "wheel"
    if name.endswith(".tar.gz"):
        return "sdist"
    if name.endswith(".oci.tar"):
        return "oci-image"
    if name.endswith(".service"):
        return "systemd-unit"
    raise SystemExit(f"release.sh: error: unexpected artifact {name}")


artifacts = []
for path in sorted(p for p in out.iterdir() if p.is_file()):
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    artifacts.append({"name": path.name, "version": version, "kind": kind(path.name),
                      "sha256": digest.hexdigest(), "size": path.stat().st_size})
(out / "SHA256SUMS").write_text("".join(f"{a['sha256']}  {a['name']}\n" for a in artifacts))
manifest = {"name": "wavry", "version": version, "artifacts": artifacts}
(out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
for a in artifacts:
    print(f"  {a['kind']:<13} {a['size']:>11,d}  {a['name']}", file=sys.stderr)
EOF
(cd "$OUT" && sha256sum --quiet -c SHA256SUMS) || die "SHA256SUMS does not match what was written"
log "dist: $OUT (check with: cd $OUT && sha256sum -c SHA256SUMS)"
