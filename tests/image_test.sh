#!/usr/bin/env bash
# The runtime image works the way the Kubernetes manifests run it. Builds it with
# image/build.sh (mmdebstrap + umoci, no container engine), unpacks the OCI archive, and
# runs the image's own files through chroot as UID/GID 65532 on a read-only bind mount of
# its root filesystem (a private mount namespace: /proc, /sys read-only, /dev with
# null/zero/random/urandom, and a tmpfs on /tmp, the pods' emptyDir), with an empty
# environment. Checks:
#   - the image config: user 65532:65532, no entrypoint or command; /usr/local/bin holds
#     exactly the seven binaries;
#   - every binary's --help exits 0 (all its shared libraries are in the image);
#   - sluicectl migrate applies every migration from /usr/local/share/sluice/migrations
#     into a scratch schema (what the initContainers do);
#   - sluice-gateway serves as UID 65532: the host's sluicectl publishes a golden vector
#     through it and gets `ok`; SIGTERM stops it with exit 0.
# Prints the image size. The network namespace is the host's, so the local stack on
# 127.0.0.1 is reachable. Scratch topics, schema and directories are removed at the end.
# Usage: image_test.sh [BUILD_DIR]   (ctest passes it; SLUICECTL: the host's sluicectl).
# Needs root, mmdebstrap and umoci (dev/install-deps.sh), the seven binaries built, the
# stack up (dev/stack.sh up), and the Debian archive reachable (package indexes).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BINARIES=(sluice-gateway sluice-relay sluice-scheduler sluice-profiler sluice-audit sluice-triggers sluicectl)
UID_GID=65532:65532
IMAGE_PATH=/usr/local/bin:/usr/bin:/bin

fail() { echo "image_test: FAIL: $*" >&2; exit 1; }
# Like fail, with the output of the command that was just checked.
fail_run() { echo "image_test: FAIL: $*" >&2; sed 's/^/  | /' "$OUT" >&2; exit 1; }

# Runs in a private mount namespace (unshare below): the mounts vanish with it, and
# nothing mounted here is visible to, or removed by, the cleanup outside.
inside() {
  # A command from the image: chroot into ROOTFS as 65532, with only PATH and HOME set
  # (no SLUICE_* lookup hints from this shell). env and chroot exec, so $! after
  # `"${IN_IMAGE[@]}" BINARY ... &` is the service's own pid.
  local IN_IMAGE=(env -i PATH="$IMAGE_PATH" HOME=/nonexistent
                  "$(command -v chroot)" --userspec="$UID_GID" --groups=65532 "$ROOTFS")
  mount --bind "$ROOTFS" "$ROOTFS"
  mount -o remount,bind,ro "$ROOTFS"
  mount -t proc -o nosuid,nodev,noexec proc "$ROOTFS/proc"
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$ROOTFS/sys"
  mount -t tmpfs -o nosuid,mode=755,size=1m dev "$ROOTFS/dev"
  for node in null zero random urandom; do
    touch "$ROOTFS/dev/$node"
    mount --bind "/dev/$node" "$ROOTFS/dev/$node"
  done
  mount -t tmpfs -o nosuid,nodev,mode=1777,size=64m tmp "$ROOTFS/tmp"
  # The harness itself: even root cannot write to the image now.
  if touch "$ROOTFS/usr/local/.write-probe" 2>/dev/null; then
    fail "the image's root filesystem is writable; the read-only checks would prove nothing"
  fi
  # The token file as the pod mounts it: root-owned, group 65532, 0440.
  install -o 0 -g 65532 -m 0440 "$WORK/tokens.textproto" "$ROOTFS/tmp/tokens.textproto"

  for b in "${BINARIES[@]}"; do
    "${IN_IMAGE[@]}" "/usr/local/bin/$b" --help >"$OUT" 2>&1 || fail_run "$b --help exited $? in the image"
  done
  echo "image_test: --help exits 0 for all ${#BINARIES[@]} binaries as $UID_GID, root read-only"

  "${IN_IMAGE[@]}" /usr/local/bin/sluicectl migrate --pg-dsn "$SLUICE_PG_DSN" --pg-schema "$SCHEMA" >"$OUT" 2>&1 \
    || fail_run "sluicectl migrate exited $? in the image"
  grep -qxF "migrations from /usr/local/share/sluice/migrations" "$OUT" \
    || fail_run "migrate did not apply from /usr/local/share/sluice/migrations"
  grep -qx "$MIGRATIONS applied, 0 already in place" "$OUT" || fail_run "migrate did not apply all $MIGRATIONS migrations"
  echo "image_test: sluicectl migrate applied $MIGRATIONS migrations from the image into $SCHEMA"

  "${IN_IMAGE[@]}" /usr/local/bin/sluice-gateway --listen 127.0.0.1:0 --tokens /tmp/tokens.textproto \
    --bootstrap "$SLUICE_KAFKA_BOOTSTRAP" --topic-prefix "$PREFIX" --metrics-listen "" \
    --pg-dsn "$SLUICE_PG_DSN" --pg-schema "$SCHEMA" >"$WORK/gateway.log" 2>&1 &
  local gw=$! port="" _
  echo "$gw" >"$WORK/gateway.pid"
  for _ in $(seq 1 300); do
    port="$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$WORK/gateway.log")"
    [[ -n "$port" ]] && break
    kill -0 "$gw" 2>/dev/null || break
    sleep 0.1
  done
  OUT="$WORK/gateway.log"
  [[ -n "$port" ]] || fail_run "sluice-gateway from the image did not start"
  [[ "$(awk '/^Uid:/ {print $2 ":" $3}' "/proc/$gw/status")" == 65532:65532 ]] \
    || fail "sluice-gateway does not run as 65532: $(grep -E '^(Uid|Gid):' "/proc/$gw/status")"

  OUT="$WORK/publish.out"
  "$SLUICECTL" publish --gateway "127.0.0.1:$port" --token "$TOKEN" --timeout 30 "$VECTOR" >"$OUT" 2>&1 \
    || fail_run "publish through the image's gateway exited $?"
  grep -Eq "^ok $VECTOR_ID ${PREFIX//./\\.}[A-Za-z0-9._-]+\[[0-9]+\]@[0-9]+$" "$OUT" || fail_run "no ok line for $VECTOR_ID"
  echo "image_test: published through the image's gateway: $(cat "$OUT")"

  kill -TERM "$gw"
  local rc=0
  wait "$gw" || rc=$?
  rm -f "$WORK/gateway.pid"
  OUT="$WORK/gateway.log"
  [[ $rc == 0 ]] || fail_run "sluice-gateway exited $rc on SIGTERM"
  echo "image_test: sluice-gateway stopped on SIGTERM with exit 0"
}

if [[ "${1:-}" == --inside ]]; then
  OUT="$WORK/inside.out"
  inside
  exit 0
fi

[[ $EUID -eq 0 ]] || fail "needs root (mmdebstrap --mode=root, chroot, mount)"
for tool in mmdebstrap umoci unshare chroot psql python3; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (bash dev/install-deps.sh)"
done
# shellcheck source=dev/env.sh
source "$ROOT/dev/env.sh"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
SLUICECTL="${SLUICECTL:-$BUILD/cli/sluicectl}"
VECTOR="$ROOT/contracts/vectors/data.refreshed.textproto"
VECTOR_ID="$(sed -n 's/^id: "\(.*\)"$/\1/p' "$VECTOR")"
MIGRATIONS="$(find "$ROOT/sql/migrations" -maxdepth 1 -name '*.sql' | wc -l)"

ID="$RANDOM$RANDOM"
PREFIX="it-image-$ID."
SCHEMA="it_image_$ID"
WORK="$(mktemp -d -t sluice-image-test.XXXXXX)"
OUT="$WORK/out"
INNER=""
TOPICS=""
cleanup() {
  local pid
  # The gateway first (the namespace lives as long as it does), then the inner shell.
  if [[ -f "$WORK/gateway.pid" ]]; then
    pid="$(<"$WORK/gateway.pid")"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  if [[ -n "$INNER" ]]; then
    kill -TERM "$INNER" 2>/dev/null || true
    wait "$INNER" 2>/dev/null || true
  fi
  psql "$SLUICE_PG_DSN" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  [[ -n "$TOPICS" ]] && "$SLUICECTL" --topic-prefix "$PREFIX" topics delete --yes >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

START=$SECONDS
bash "$ROOT/image/build.sh" --build-dir "$BUILD" --output "$WORK/image.oci.tar" >"$OUT" 2>&1 \
  || fail_run "image/build.sh exited $?"
grep '^image: ' "$OUT"
echo "image_test: image built in $((SECONDS - START))s"

mkdir "$WORK/oci"
tar -C "$WORK/oci" -xf "$WORK/image.oci.tar"
TAG="$(umoci ls --layout "$WORK/oci")"
[[ -n "$TAG" && "$TAG" != *$'\n'* ]] || fail "want one tag in the archive, got '$TAG'"
umoci unpack --image "$WORK/oci:$TAG" "$WORK/bundle" >"$OUT" 2>&1 || fail_run "umoci unpack failed"
ROOTFS="$WORK/bundle/rootfs"

python3 - "$WORK/oci" "$TAG" >"$OUT" 2>&1 <<'PYEOF' || fail_run "image config"
import json, os, sys
oci, tag = sys.argv[1], sys.argv[2]
blob = lambda d: json.load(open(os.path.join(oci, "blobs", *d.split(":"))))
index = json.load(open(os.path.join(oci, "index.json")))
desc = next(m for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
config = blob(blob(desc["digest"])["config"]["digest"])["config"]
assert config.get("User") == "65532:65532", f"User is {config.get('User')!r}"
assert not config.get("Entrypoint") and not config.get("Cmd"), "entrypoint or command set"
assert any(e.startswith("PATH=") and "/usr/local/bin" in e for e in config.get("Env", [])), "no PATH"
PYEOF
extra="$(ls "$ROOTFS/usr/local/bin" | grep -vxF -f <(printf '%s\n' "${BINARIES[@]}") || true)"
[[ -z "$extra" ]] || fail "unexpected files in /usr/local/bin: $extra"
for b in "${BINARIES[@]}"; do [[ -x "$ROOTFS/usr/local/bin/$b" ]] || fail "/usr/local/bin/$b missing"; done
echo "image_test: config user 65532:65532, no entrypoint; /usr/local/bin holds the seven binaries"

# A token for the vector's tenant and source, made by the host's sluicectl.
"$SLUICECTL" token new --name image-test --tenant "$(sed -n 's/^tenant_id: "\(.*\)"$/\1/p' "$VECTOR")" \
  --source "$(sed -n 's/^source: "\(.*\)"$/\1/p' "$VECTOR")" >"$OUT"
TOKEN="$(sed -n 's/^token (.*): \(slc_[A-Za-z0-9]*\)$/\1/p' "$OUT")"
[[ -n "$TOKEN" ]] || fail_run "no token from sluicectl token new"
grep '^principals {' "$OUT" >"$WORK/tokens.textproto"

TOPICS=1
"$SLUICECTL" --topic-prefix "$PREFIX" topics ensure >"$OUT" 2>&1 || fail_run "topics ensure exited $?"

export ROOTFS WORK SCHEMA PREFIX TOKEN SLUICECTL VECTOR VECTOR_ID MIGRATIONS
unshare --mount --propagation private -- bash "${BASH_SOURCE[0]}" --inside &
INNER=$!
rc=0
wait "$INNER" || rc=$?
INNER=""
[[ $rc == 0 ]] || fail "the checks inside the image failed (exit $rc)"
echo "image_test: ok (image $TAG, $((SECONDS - START))s)"
