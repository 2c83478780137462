#!/usr/bin/env bash
# Proves that `sluicectl migrate` is safe to run twice and from two pods at once, which the
# Kubernetes manifests rely on (k8s/base/migrate-job.yaml and the `migrate` initContainer of
# every workload run it side by side against one database):
#   1. two runs with --pg-schema of a fresh schema, started together and held at the same
#      point, both exit 0: a third session holds an uncommitted CREATE SCHEMA of that name
#      until both runs are waiting on a lock, then rolls back, so the two meet on schema
#      creation and on the migrations whatever the scheduling;
#   2. every migration is recorded exactly once in <schema>.schema_migrations and the two
#      runs' "N applied" add up to the number of migrations (none applied twice);
#   3. a third run reports "0 applied";
#   4. the same for two runs started together without the gate, on another fresh schema.
# Scratch schemas are dropped at the end.
# Usage: migrate_concurrent_test.sh   (SLUICECTL: the binary, default build/cli/sluicectl).
# Needs PostgreSQL (dev/stack.sh up) and psql.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=dev/env.sh
source "$ROOT/dev/env.sh"
SLUICECTL="${SLUICECTL:-$ROOT/build/cli/sluicectl}"
DIR="$ROOT/sql/migrations"
DSN="$SLUICE_PG_DSN"

TAG="it_migrate_$RANDOM$RANDOM"
SCHEMAS=("${TAG}_gated" "${TAG}_free")
WORK="$(mktemp -d)"
GATE_PID=""
cleanup() {
  [[ -n "$GATE_PID" ]] && kill "$GATE_PID" 2>/dev/null || true
  local s
  for s in "${SCHEMAS[@]}"; do
    psql "$DSN" -qc "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "migrate_concurrent_test: FAIL: $*" >&2; exit 1; }
show() { local f; for f in "$@"; do echo "  --- $(basename "$f")" >&2; sed 's/^/  | /' "$f" >&2; done; }

[[ -x "$SLUICECTL" ]] || fail "$SLUICECTL is not built (cmake --build build --target sluicectl)"
command -v psql >/dev/null 2>&1 || fail "psql not found"
psql "$DSN" -qAtc "SELECT 1" >/dev/null || fail "PostgreSQL not reachable at '$DSN' (bash dev/stack.sh up)"

mapfile -t FILES < <(cd "$DIR" && ls -1 -- *.sql | sort)
N=${#FILES[@]}
(( N > 0 )) || fail "no migrations in $DIR"

# migrate SCHEMA APPNAME OUT: one sluicectl run; its sessions are named APPNAME.
migrate() {
  "$SLUICECTL" migrate --pg-dsn "$DSN application_name=$2" --pg-schema "$1" --dir "$DIR" >"$3" 2>&1
}

# applied_count OUT: the N of "N applied, M already in place".
applied_count() {
  sed -n 's/^\([0-9]\+\) applied, [0-9]\+ already in place$/\1/p' "$1"
}

# check_recorded SCHEMA: every migration file recorded exactly once, nothing else.
check_recorded() {
  local want got
  want="$(printf '%s\n' "${FILES[@]}")"
  got="$(psql "$DSN" -qAtc "SELECT name FROM $1.schema_migrations ORDER BY name")"
  [[ "$got" == "$want" ]] || fail "$1.schema_migrations holds
$got
expected each of
$want"
  got="$(psql "$DSN" -qAtc "SELECT count(*) - count(DISTINCT version) FROM $1.schema_migrations")"
  [[ "$got" == 0 ]] || fail "$1.schema_migrations records a version more than once"
}

# run_pair SCHEMA GATED: two concurrent runs into SCHEMA (gated or not), then the checks.
run_pair() {
  local schema="$1" gated="$2" app="${1}_run" a="$WORK/$1.a" b="$WORK/$1.b" rc_a=0 rc_b=0
  local pid_a pid_b waiting=0 i
  if [[ "$gated" == 1 ]]; then
    # The gate: an uncommitted CREATE SCHEMA of the same name. Both runs block behind it
    # (on the schema's catalog row, or on the migration lock held by the one that is).
    mkfifo "$WORK/gate.in"
    psql "$DSN application_name=${schema}_gate" -qX -v ON_ERROR_STOP=1 <"$WORK/gate.in" >"$WORK/gate.out" 2>&1 &
    GATE_PID=$!
    exec 7>"$WORK/gate.in"
    echo "BEGIN; CREATE SCHEMA $schema;" >&7
    local closed=""
    for ((i = 0; i < 600; i++)); do
      closed="$(psql "$DSN" -qAtc "SELECT count(*) FROM pg_stat_activity
                WHERE application_name = '${schema}_gate' AND state = 'idle in transaction'")"
      [[ "$closed" == 1 ]] && break
      kill -0 "$GATE_PID" 2>/dev/null || { show "$WORK/gate.out"; fail "the gate session ended"; }
      sleep 0.1
    done
    [[ "$closed" == 1 ]] || { show "$WORK/gate.out"; fail "the gate session never created the schema"; }
  fi

  migrate "$schema" "$app" "$a" & pid_a=$!
  migrate "$schema" "$app" "$b" & pid_b=$!

  if [[ "$gated" == 1 ]]; then
    # Open the gate only once both runs are blocked (a wait with a generous bound, not a
    # timing assertion: on a slow machine it just waits longer).
    for ((i = 0; i < 1200; i++)); do
      waiting="$(psql "$DSN" -qAtc "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name = '$app' AND wait_event_type = 'Lock'")"
      [[ "$waiting" == 2 ]] && break
      kill -0 "$pid_a" 2>/dev/null && kill -0 "$pid_b" 2>/dev/null || break
      sleep 0.1
    done
    echo "ROLLBACK;" >&7
    exec 7>&-
    wait "$GATE_PID" || true
    GATE_PID=""
    [[ "$waiting" == 2 ]] || { wait "$pid_a" || true; wait "$pid_b" || true; show "$a" "$b";
      fail "$schema: the two runs were not both waiting on a lock behind the gate (saw $waiting)"; }
  fi

  wait "$pid_a" || rc_a=$?
  wait "$pid_b" || rc_b=$?
  (( rc_a == 0 && rc_b == 0 )) || { show "$a" "$b"; fail "$schema: concurrent runs exited $rc_a and $rc_b, expected 0 and 0"; }

  local n_a n_b
  n_a="$(applied_count "$a")" n_b="$(applied_count "$b")"
  [[ -n "$n_a" && -n "$n_b" ]] || { show "$a" "$b"; fail "$schema: a run printed no 'N applied' summary"; }
  (( n_a + n_b == N )) || { show "$a" "$b"; fail "$schema: the runs applied $n_a + $n_b migrations, expected $N in all"; }
  check_recorded "$schema"

  migrate "$schema" "$app" "$WORK/$schema.c" || { show "$WORK/$schema.c"; fail "$schema: third run exited $?"; }
  grep -qx "0 applied, $N already in place" "$WORK/$schema.c" ||
    { show "$WORK/$schema.c"; fail "$schema: third run did not report '0 applied, $N already in place'"; }
  check_recorded "$schema"
  echo "migrate_concurrent_test: $schema ($([[ $gated == 1 ]] && echo gated || echo ungated)): runs applied $n_a + $n_b of $N, third run 0"
}

run_pair "${SCHEMAS[0]}" 1
run_pair "${SCHEMAS[1]}" 0
echo "migrate_concurrent_test: ok"
