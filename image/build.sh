#!/usr/bin/env bash
# image/build.sh [--build-dir DIR] [--output FILE] [--tag TAG]
# Builds the Sluice runtime image without a container engine and writes it as an OCI
# archive (a tar of an OCI image layout), by default build/sluice-image.oci.tar:
#   layer 1: Debian 12 minbase (what debian:bookworm-slim is) + image/runtime-packages.txt,
#            docs/man/locales left out as in bookworm-slim, user and group 65532 "sluice";
#   layer 2: `cmake --install <build> --prefix /usr/local --strip` (the seven binaries in
#            /usr/local/bin, migrations/catalog/vectors in /usr/local/share/sluice).
# Config: user 65532:65532, no entrypoint or command (each pod names its binary),
# PATH, workdir /. This is the image the root Dockerfile describes, made with mmdebstrap
# and umoci. Needs root (mmdebstrap --mode=root), mmdebstrap, umoci, python3, and the seven
# binaries built in the build directory (it does not build them). Downloaded .debs are
# kept in .cache/image/debs, so later runs only fetch the package indexes.
# Apt sources: SLUICE_IMAGE_APT_SOURCES (a sources file), else this machine's
# /etc/apt/sources.list.d/debian.sources, else deb.debian.org.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
OUTPUT=""
TAG=""
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --build-dir) BUILD="${2:?--build-dir needs a value}"; shift 2 ;;
    --output) OUTPUT="${2:?--output needs a value}"; shift 2 ;;
    --tag) TAG="${2:?--tag needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "image: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
die() { echo "image: error: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root (mmdebstrap --mode=root, chroot for useradd)"
for tool in mmdebstrap umoci python3 cmake flock; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (bash dev/install-deps.sh)"
done
BUILD="$(cd "$BUILD" && pwd)" || die "no build directory"
[[ -f "$BUILD/CMakeCache.txt" ]] || die "$BUILD is not a configured build directory"
OUTPUT="${OUTPUT:-$BUILD/sluice-image.oci.tar}"
if [[ -z "$TAG" ]]; then
  TAG="$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")"
  TAG="${TAG:-latest}"
fi
SUITE=bookworm
PACKAGES="$(sed 's/#.*//' "$ROOT/image/runtime-packages.txt" | xargs | tr ' ' ',')"
[[ -n "$PACKAGES" ]] || die "image/runtime-packages.txt lists no package"
if [[ -n "${SLUICE_IMAGE_APT_SOURCES:-}" ]]; then
  SOURCES=("$SLUICE_IMAGE_APT_SOURCES")
elif [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
  SOURCES=(/etc/apt/sources.list.d/debian.sources)
else
  SOURCES=("deb http://deb.debian.org/debian $SUITE $SUITE-updates main"
           "deb http://deb.debian.org/debian-security $SUITE-security main")
fi
DEB_CACHE="$ROOT/.cache/image/debs"
mkdir -p "$DEB_CACHE" "$(dirname "$OUTPUT")"

START=$SECONDS
WORK="$(mktemp -d -t sluice-image.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
OCI="$WORK/oci"
BUNDLE="$WORK/bundle"
ROOTFS="$BUNDLE/rootfs"
IMAGE="$OCI:$TAG"
LOG="$WORK/mmdebstrap.log"

# Layer 2's content first: it fails fast when the binaries are not built. Under the build
# lock, shared, so a build in progress finishes before its binaries are copied.
flock -s -w 900 /tmp/sluice-build.lock \
  cmake --install "$BUILD" --prefix "$WORK/install/usr/local" --strip >"$WORK/install.log" 2>&1 \
  || { cat "$WORK/install.log" >&2; die "cmake --install $BUILD failed (are the seven binaries built?)"; }

umoci init --layout "$OCI"
umoci new --image "$IMAGE"
umoci unpack --image "$IMAGE" "$BUNDLE" >/dev/null

# Layer 1. The path-excludes are the ones debian:bookworm-slim sets
# (/etc/dpkg/dpkg.cfg.d/docker there); mmdebstrap leaves them in the image as well, so a
# later apt-get install in a derived image stays slim too. Copyright files stay.
# The merged-usr hook sets up merged /usr itself and installs usr-is-merged, as
# debootstrap does for bookworm-slim; without it apt satisfies init-system-helpers with
# usrmerge, which brings perl (~50 MiB).
# The .deb cache: sync-in before the download, sync-out after the install (needs
# essential/unlink skipped, or the essential .debs are deleted before).
echo "image: mmdebstrap $SUITE minbase + $(tr ',' ' ' <<<"$PACKAGES" | wc -w) packages (log: $LOG)"
if ! mmdebstrap --mode=root --variant=minbase --include="$PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/groff/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --dpkgopt='path-exclude=/usr/share/linda/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --skip=essential/unlink \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
    --setup-hook="sync-in $DEB_CACHE /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives $WORK/debs" \
    --customize-hook='chroot "$1" groupadd --system --gid 65532 sluice' \
    --customize-hook='chroot "$1" useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin sluice' \
    "$SUITE" "$ROOTFS" "${SOURCES[@]}" >"$LOG" 2>&1; then
  tail -n 40 "$LOG" >&2
  die "mmdebstrap failed"
fi
# Keep exactly the .debs of what is installed (apt's file names, ':' as %3a): the cache
# follows the archive instead of growing.
rm -rf "$DEB_CACHE.new"
mkdir -p "$DEB_CACHE.new"
dpkg-query --admindir="$ROOTFS/var/lib/dpkg" -W -f='${Package}_${Version}_${Architecture}.deb\n' \
  | sed 's/:/%3a/g' | while read -r deb; do
    if [[ -f "$WORK/debs/$deb" ]]; then mv "$WORK/debs/$deb" "$DEB_CACHE.new/"; fi
  done
fetched="$(comm -13 <(ls "$DEB_CACHE") <(ls "$DEB_CACHE.new") | wc -l)"
echo "image: $(ls "$DEB_CACHE.new" | wc -l) packages, $fetched downloaded (cache: ${DEB_CACHE#"$ROOT"/})"
rm -rf "$DEB_CACHE" && mv "$DEB_CACHE.new" "$DEB_CACHE"
# What bookworm-slim leaves out as well: logs of this install, backup files, caches.
# /dev is left empty: container runtimes mount their own.
rm -rf "$ROOTFS"/var/log/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* \
       "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/lib/dpkg/*-old "$ROOTFS"/dev/*
find "$ROOTFS/usr/share/locale" -mindepth 1 -delete 2>/dev/null || true
umoci repack --refresh-bundle --image "$IMAGE" \
  --history.created_by "mmdebstrap --variant=minbase $SUITE + image/runtime-packages.txt; user 65532" "$BUNDLE"

# Layer 2: the installed tree, owned by root and read-only for the service user.
cp -R --preserve=mode,timestamps "$WORK/install/usr/local/." "$ROOTFS/usr/local/"
umoci repack --image "$IMAGE" \
  --history.created_by "cmake --install build --prefix /usr/local --strip" "$BUNDLE"

umoci config --image "$IMAGE" \
  --config.user 65532:65532 \
  --clear=config.entrypoint --clear=config.cmd \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.workingdir / \
  --config.label org.opencontainers.image.title=sluice \
  --config.label "org.opencontainers.image.version=$TAG" \
  --config.label "org.opencontainers.image.description=Sluice services and sluicectl (Debian 12)" \
  --architecture amd64 --os linux \
  --history.created_by "config: user 65532:65532, no entrypoint" >/dev/null
umoci gc --layout "$OCI"

# The archive: the layout's files at its root (what `skopeo copy oci-archive:` and
# `podman load` read). Written aside and renamed, so a reader never sees half a file.
tar --sort=name --numeric-owner --owner=0 --group=0 -C "$OCI" -cf "$OUTPUT.tmp" .
mv "$OUTPUT.tmp" "$OUTPUT"

python3 - "$OCI" "$TAG" "$(du -sb "$ROOTFS" | cut -f1)" "$(stat -c %s "$OUTPUT")" <<'PYEOF'
import json, os, sys
oci, tag, unpacked, archive = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def blob(digest):
    algo, hexd = digest.split(":")
    return os.path.join(oci, "blobs", algo, hexd)
index = json.load(open(os.path.join(oci, "index.json")))
desc = next(m for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
manifest = json.load(open(blob(desc["digest"])))
layers = [l["size"] for l in manifest["layers"]]
mib = lambda n: f"{n / 1048576:.1f} MiB"
print(f"image: {tag} {desc['digest']}")
print(f"image: layers (compressed) {' + '.join(mib(s) for s in layers)} = {mib(sum(layers))}")
print(f"image: unpacked {mib(unpacked)}, archive {mib(archive)}")
PYEOF
echo "image: wrote $OUTPUT in $((SECONDS - START))s"
