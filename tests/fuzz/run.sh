#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS]: builds the libFuzzer targets in build-fuzz/ (clang-14,
# -DSLUICE_FUZZ=ON), makes seed corpora under .run/fuzz/<target>/ and runs each target
# for SECONDS (default 20). Exits non-zero on any crash, sanitizer report or broken
# property; prints one line per target with its execution count, then the total.
# Corpora persist between runs, so a long run (tests/fuzz/run.sh 600) builds on them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$ROOT/build-fuzz"
OUT="$ROOT/.run/fuzz"
LOCK=/tmp/sluice-build.lock
TARGETS=(fuzz_envelope fuzz_json fuzz_catalog fuzz_token_file fuzz_cursor fuzz_list_request)

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "fuzz: error: $*" >&2; exit 1; }

SECS="${1:-20}"
case "$SECS" in
  -h|--help) usage; exit 0 ;;
esac
[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 2; }
(( $# <= 1 )) || { usage >&2; exit 2; }

command -v clang++-14 >/dev/null 2>&1 \
  || die "clang++-14 not found (apt-get install -y clang-14 libclang-rt-14-dev, or dev/install-deps.sh)"

# 1. Build (through the shared build lock; only the fuzz targets, not the whole tree).
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  flock "$LOCK" env CC=clang-14 CXX=clang++-14 cmake -S "$ROOT" -B "$BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON -DSLUICE_BUILD_INTEGRATION=OFF >/dev/null
fi
flock "$LOCK" cmake --build "$BUILD" -j2 --target sluice_fuzz
BIN="$BUILD/tests/fuzz"

# 2. Seeds. libFuzzer adds what it finds to the same directories.
mkdir -p "$OUT/artifacts" "$OUT/logs"
for t in "${TARGETS[@]}"; do mkdir -p "$OUT/$t"; done
cp "$ROOT"/contracts/vectors/*.binpb "$OUT/fuzz_envelope/"
"$BIN/fuzz_seeds" "$ROOT/contracts/vectors" "$OUT/fuzz_json"
cp "$ROOT/contracts/catalog.textproto" "$OUT/fuzz_catalog/catalog.textproto"
for f in "$ROOT"/contracts/vectors/*.textproto; do  # envelopes: valid text format, wrong message
  cp "$f" "$OUT/fuzz_catalog/vector-$(basename "$f")"
done
# A token file whose last line is a token it holds, so Authenticate also succeeds.
token="# fuzz-token"
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
cat >"$OUT/fuzz_token_file/tokens.textproto" <<TOKENS
principals { name: "analyst" token_sha256: "$(sha "$token")" tenants: "acme" }
principals { name: "steward" token_sha256: "$(sha other)" tenants: "acme" tenants: "*" roles: "metadata_steward" }
principals { name: "etl" token_sha256: "$(sha etl)" tenants: "acme" sources: "etl.pipeline" }
$token
TOKENS
# ListEvents: cursors for fuzz_cursor's filter, requests for fuzz_list_request's principal.
"$BIN/fuzz_list_seeds" "$OUT/fuzz_cursor" "$OUT/fuzz_list_request"

# 3. Run each target; a crash leaves its input in .run/fuzz/artifacts/.
total=0
failed=()
for t in "${TARGETS[@]}"; do
  log="$OUT/logs/$t.log"
  rc=0
  "$BIN/$t" -max_total_time="$SECS" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/$t-" "$OUT/$t" >"$log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  execs="${execs:-0}"
  total=$(( total + execs ))
  if (( rc == 0 )); then
    printf '%-18s %12s execs  ok\n' "$t" "$execs"
  else
    printf '%-18s %12s execs  FAILED (exit %d; log %s)\n' "$t" "$execs" "$rc" "${log#"$ROOT"/}"
    grep -m 5 -E 'ERROR: |fuzz property broken|runtime error|Test unit written' "$log" | sed 's/^/    /' || true
    failed+=("$t")
  fi
done
printf '%-18s %12s execs\n' total "$total"
if (( ${#failed[@]} > 0 )); then
  echo "fuzz: FAILED: ${failed[*]} (reproduce: build-fuzz/tests/fuzz/<target> <artifact>)" >&2
  exit 1
fi
