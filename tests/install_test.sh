#!/usr/bin/env bash
# Proves an installed Sluice works away from the checkout: `cmake --install` into a
# fresh prefix P, then, from `cd /`,
#   - P/bin holds exactly the seven binaries and each answers --help with exit 0,
#   - P/share/sluice holds catalog.textproto, vectors/ and every sql/migrations/*.sql,
#   - P/bin/sluicectl migrate applies every migration into a scratch schema and says it
#     took them from P/share/sluice/migrations (not from the source tree, which the
#     binary also knows: that fallback is what this catches),
#   - P/bin/sluicectl validate accepts an installed golden vector.
# Usage: install_test.sh BUILD_DIR   (ctest passes it; the binaries must be built).
# Needs PostgreSQL (dev/stack.sh up).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=dev/env.sh
source "$ROOT/dev/env.sh"
BUILD="$(cd "${1:?usage: install_test.sh BUILD_DIR}" && pwd)"
CMAKE="${CMAKE_COMMAND:-cmake}"
DSN="$SLUICE_PG_DSN"
BINARIES=(sluice-gateway sluice-relay sluice-scheduler sluice-profiler sluice-audit sluice-triggers sluicectl)

# -P: /proc/self/exe names the real path, so compare against the real path too.
PREFIX="$(cd "$(mktemp -d)" && pwd -P)"
SCHEMA="it_install_$RANDOM$RANDOM"
OUT="$PREFIX.out"
cleanup() {
  psql "$DSN" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  rm -rf "$PREFIX" "$OUT"
}
trap cleanup EXIT
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
# Like fail, with the output of the command that was just checked.
fail_run() { echo "install_test: FAIL: $*" >&2; sed 's/^/  | /' "$OUT" >&2; exit 1; }

"$CMAKE" --install "$BUILD" --prefix "$PREFIX" >"$OUT" 2>&1 || fail_run "cmake --install failed"

# Everything below runs outside any checkout, with no lookup hints in the environment.
cd /
unset SLUICE_MIGRATIONS_DIR SLUICE_VECTORS_DIR

for b in "${BINARIES[@]}"; do
  [[ -x "$PREFIX/bin/$b" ]] || fail "$PREFIX/bin/$b is not installed"
  "$PREFIX/bin/$b" --help >"$OUT" 2>&1 || fail_run "$b --help exited $?"
done
extra="$(ls "$PREFIX/bin" | grep -vxF -f <(printf '%s\n' "${BINARIES[@]}") || true)"
[[ -z "$extra" ]] || fail "unexpected files in bin/ (tests, benchmarks?): $extra"

SHARE="$PREFIX/share/sluice"
[[ -f "$SHARE/catalog.textproto" ]] || fail "no $SHARE/catalog.textproto"
[[ -f "$SHARE/vectors/data.refreshed.textproto" ]] || fail "no golden vectors in $SHARE/vectors"
migrations=0
for f in "$ROOT"/sql/migrations/*.sql; do
  [[ -f "$SHARE/migrations/$(basename "$f")" ]] || fail "$(basename "$f") not installed in $SHARE/migrations"
  migrations=$((migrations + 1))
done

psql "$DSN" -qc "CREATE SCHEMA $SCHEMA" >/dev/null
"$PREFIX/bin/sluicectl" migrate --pg-dsn "$DSN options='-c search_path=$SCHEMA'" >"$OUT" 2>&1 \
  || fail_run "sluicectl migrate exited $?"
grep -qxF "migrations from $SHARE/migrations" "$OUT" || fail_run "migrate did not apply from $SHARE/migrations"
grep -qx "$migrations applied, 0 already in place" "$OUT" || fail_run "migrate did not apply all $migrations migrations"

"$PREFIX/bin/sluicectl" validate "$SHARE/vectors/data.refreshed.textproto" >"$OUT" 2>&1 \
  || fail_run "sluicectl validate exited $?"
grep -q ' data.refreshed: ok$' "$OUT" || fail_run "validate did not report the vector ok"

echo "install_test: ok ($PREFIX: ${#BINARIES[@]} binaries, $migrations migrations)"
