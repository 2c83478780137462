#!/usr/bin/env bash
# tests/chaos/run.sh [--events N] [chaos.py options]: the chaos test (see README.md).
# Starts a three-broker Kafka of its own (ports 29092-29094, controllers 29102-29104, env
# SLUICE_CHAOS_PORT_BASE), a fresh schema in the shared PostgreSQL, the real services;
# publishes N events while SIGKILLing them and one broker; checks the invariants.
# Exit 0 when every invariant holds. Always cleans up (EXIT trap). Hard deadline:
# SLUICE_CHAOS_DEADLINE_S seconds (default 900 + N/100).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EVENTS=5000
ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) EVENTS="$2"; shift 2 ;;
    --events=*) EVENTS="${1#*=}"; shift ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exec "$ROOT/.cache/venv-clients/bin/python" "$ROOT/tests/chaos/chaos.py" --help ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[[ "$EVENTS" =~ ^[0-9]+$ && "$EVENTS" -gt 0 ]] || { echo "chaos: --events must be a positive number" >&2; exit 2; }
DEADLINE="${SLUICE_CHAOS_DEADLINE_S:-$((900 + EVENTS / 100))}"
DSN="${SLUICE_PG_DSN:-host=127.0.0.1 port=15432 dbname=sluice user=postgres}"
export SLUICE_PG_DSN="$DSN"

PY="$ROOT/.cache/venv-clients/bin/python"
if [[ ! -x "$PY" || ! -d "$ROOT/clients/python/gen/sluice" ]]; then
  echo "chaos: building the Python client (grpcio, generated code): clients/build.sh python"
  bash "$ROOT/clients/build.sh" python
fi
command -v java >/dev/null && command -v psql >/dev/null || { echo "chaos: needs java and psql" >&2; exit 2; }

WORK="$ROOT/.run/chaos/r$(date +%s)$RANDOM"
mkdir -p "$WORK/pids" "$WORK/bin"
# A copy of the binaries, taken under the build lock (shared: waits for a build in
# progress), so a rebuild during the run neither breaks a restart nor mixes versions.
BINS=(build/cli/sluicectl build/gateway/sluice-gateway build/producers/relay/sluice-relay
      build/consumers/audit/sluice-audit build/consumers/profiler/sluice-profiler)
flock -s -w 900 /tmp/sluice-build.lock bash -c '
  for b in "${@:3}"; do [[ -x "$1/$b" ]] || { echo "chaos: $b missing (build it first)" >&2; exit 2; }; done
  for b in "${@:3}"; do cp "$1/$b" "$2/bin/"; done' _ "$ROOT" "$WORK" "${BINS[@]}" \
  || { rm -rf "$WORK"; exit 2; }
echo "chaos: binaries copied after ${SECONDS}s (waits while a build holds /tmp/sluice-build.lock)"
CHILD=""

# Belt and braces: chaos.py stops what it started and drops its schemas itself; this trap
# also covers chaos.py being killed (deadline) or crashing.
cleanup() {
  local rc=$? f pid
  trap - EXIT INT TERM
  if [[ -n "$CHILD" ]] && kill -0 "$CHILD" 2>/dev/null; then
    kill -TERM "$CHILD" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$CHILD" 2>/dev/null || break; sleep 1; done
    kill -KILL "$CHILD" 2>/dev/null || true
  fi
  for f in "$WORK"/pids/*; do
    [[ -f "$f" ]] || continue
    pid="$(<"$f")"
    # Only our own processes: the pid must still run a binary copied into, or a broker
    # configured under, this run's work dir (a reused pid is left alone).
    if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$WORK/"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [[ -f "$WORK/schemas" ]]; then
    while read -r s; do
      [[ "$s" =~ ^chaos_[a-z0-9_]+$ ]] && psql "$DSN" -qc "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true
    done <"$WORK/schemas"
  fi
  if [[ "${SLUICE_CHAOS_KEEP:-0}" == 1 ]]; then echo "chaos: kept $WORK"; else rm -rf "$WORK"; fi
  rmdir "$ROOT/.run/chaos" 2>/dev/null || true
  echo "chaos: wall time ${SECONDS}s, exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "chaos: $EVENTS events, deadline ${DEADLINE}s, work dir $WORK"
# timeout sends SIGTERM at the deadline (chaos.py then cleans up and fails), SIGKILL 90 s later.
timeout --kill-after=90 "$DEADLINE" "$PY" -u "$ROOT/tests/chaos/chaos.py" --events "$EVENTS" --work "$WORK" \
  --port-base "${SLUICE_CHAOS_PORT_BASE:-29092}" "${ARGS[@]}" &
CHILD=$!
rc=0
wait "$CHILD" || rc=$?
CHILD=""
[[ $rc == 124 ]] && echo "chaos: FAIL: hard deadline of ${DEADLINE}s reached" >&2
exit "$rc"
