#!/usr/bin/env bash
# The test command. On a fresh Debian 12 machine: installs what is missing, builds
# (normal, clang with ASan/UBSan for the fuzz targets and unit tests, and the
# Python/Go/Java/Node clients), runs each fuzz target for a bounded time, starts the
# local stack, runs buf lint, the golden-vector check, a small chaos run and every test
# through ctest (unit tests under the sanitizers too), then stops the stack it started.
# Exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
case "${1:-}" in
  -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "test: takes no arguments" >&2; exit 2 ;;
esac

# Each section's wall time is printed when the next one starts, and all of them at the end,
# so a slow run shows where its time went.
timings=()
current=""
started_at=$SECONDS
section_end() {
  [[ -n "$current" ]] || return 0
  local took=$((SECONDS - started_at))
  timings+=("$(printf '%5d s  %s' "$took" "$current")")
  printf '(%s: %d s)\n' "$current" "$took"
}
section() {
  section_end
  current="$*"
  started_at=$SECONDS
  printf '\n== %s\n' "$*"
}

section "dependencies"
bash dev/install-deps.sh
# shellcheck source=dev/env.sh
source dev/env.sh

section "clients (Python, Go, Java, Node)"
bash clients/build.sh

section "build (build/)"
bash dev/build.sh

section "fuzz targets (libFuzzer with ASan + UBSan, 10 s each; build-fuzz/)"
bash tests/fuzz/run.sh 10
# The unit tests in the same sanitized clang build: its libraries are built already.
section "build the unit tests with ASan + UBSan (build-fuzz/)"
flock /tmp/sluice-build.lock cmake --build build-fuzz -j "${SLUICE_JOBS:-2}" --target sluice_unit_tests

section "buf lint"
buf lint
echo "buf lint: clean"
section "golden vectors"
build/contracts/sluice_vectorgen --check contracts/vectors
echo "vectors: .binpb match their .textproto"

section "local stack"
started=0
if ! bash dev/stack.sh status >/dev/null 2>&1; then
  started=1
  trap 'bash dev/stack.sh down >/dev/null 2>&1 || true' EXIT
fi
bash dev/stack.sh up

section "unit tests under ASan + UBSan"
ctest --test-dir build-fuzz -L unit --output-on-failure

section "chaos run (three brokers, SIGKILLed services and a broker; 3,000 events)"
bash tests/chaos/run.sh --events 3000

section "all tests"
mkdir -p .run
rc=0
ctest --test-dir build --output-on-failure 2>&1 | tee .run/ctest.log || rc=$?
[[ ${PIPESTATUS[0]} -eq 0 ]] || rc=1

if (( started )); then
  bash dev/stack.sh down >/dev/null 2>&1 || true
  trap - EXIT
  echo "(stopped the local stack this run started)"
fi
section_end
printf '\n== time per section\n'
printf '%s\n' "${timings[@]}"
printf '%5d s  total\n' "$SECONDS"
# Repeat ctest's closing line so it is the last thing printed.
grep -E '^[0-9]+% tests passed' .run/ctest.log | tail -n 1
exit "$rc"
