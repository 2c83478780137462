#!/usr/bin/env bash
# Configure and build Sluice. Used by dev/test.sh and dev/run.sh.
#   dev/build.sh          build/       RelWithDebInfo, everything
#   dev/build.sh asan     build-asan/  Debug with AddressSanitizer + UBSan, unit tests only
# -Werror is on when CI=true. Parallelism: SLUICE_JOBS (default 2).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="${SLUICE_JOBS:-2}"
WERROR=OFF
[[ "${CI:-}" == "true" ]] && WERROR=ON

case "${1:-}" in
  "")
    cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_WERROR="$WERROR" >/dev/null
    cmake --build "$ROOT/build" -j "$JOBS"
    ;;
  asan)
    cmake -S "$ROOT" -B "$ROOT/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON \
      -DSLUICE_BUILD_INTEGRATION=OFF -DSLUICE_WERROR="$WERROR" >/dev/null
    # Only what `ctest -L unit` runs (cmake/SluiceTargets.cmake), not the services or benchmarks.
    cmake --build "$ROOT/build-asan" -j "$JOBS" --target sluice_unit_tests
    ;;
  -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "build: unknown variant '$1' (want nothing or 'asan')" >&2; exit 2 ;;
esac
