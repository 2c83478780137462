#!/usr/bin/env bash
# The Explorer in a real browser: headless Chromium (Debian's chromium and
# chromium-driver, driven by selenium from .cache/venv-clients) against real
# sluice-gateway and sluice-audit processes on the local stack, isolated by a topic prefix
# and a PostgreSQL schema of their own. The steps and their checks are in
# tests/lib/explorer_test.py; screenshots of each state go to
# $SLUICE_TEST_ARTIFACTS/explorer (default build/test-artifacts/explorer).
# Binaries come from the environment (set by ctest): SLUICECTL, SLUICE_GATEWAY_BIN,
# SLUICE_AUDIT_BIN.
set -euo pipefail

DSN="${SLUICE_PG_DSN:-host=127.0.0.1 port=15432 dbname=sluice user=postgres}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.cache/venv-clients/bin/python"
ARTIFACTS="${SLUICE_TEST_ARTIFACTS:-$ROOT/build/test-artifacts}/explorer"
ID="$RANDOM$RANDOM"
PREFIX="it-explorer-$ID."
SCHEMA="it_explorer_$ID"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql "$DSN" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  "$SLUICECTL" --topic-prefix "$PREFIX" topics delete --yes >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "explorer_test: $*" >&2; for f in "$WORK"/*.log; do echo "== $f" >&2; tail -n 30 "$f" >&2; done; exit 1; }

for tool in chromium chromedriver; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (bash dev/install-deps.sh installs it)"
done
[[ -x "$PY" ]] && "$PY" -c "import selenium" 2>/dev/null \
  || fail "selenium is missing from .cache/venv-clients (bash clients/build.sh python installs it)"

psql "$DSN" -qc "CREATE SCHEMA $SCHEMA" >/dev/null
"$SLUICECTL" --topic-prefix "$PREFIX" topics ensure >/dev/null
"$SLUICECTL" migrate --pg-dsn "$DSN options='-c search_path=$SCHEMA'" >/dev/null

# Two tenants: alice reads and writes acme, bob globex. agent.profiler may send 2 events a
# minute; the third pauses it for a minute.
token() { openssl rand -hex 24; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
export EXPLORER_TOKEN_A EXPLORER_TOKEN_B
EXPLORER_TOKEN_A="$(token)"
EXPLORER_TOKEN_B="$(token)"
cat >"$WORK/tokens.textproto" <<TOKENS
principals { name: "alice" token_sha256: "$(sha "$EXPLORER_TOKEN_A")" tenants: "acme" }
principals { name: "bob" token_sha256: "$(sha "$EXPLORER_TOKEN_B")" tenants: "globex" }
TOKENS
echo '{"limits": [{"source": "agent.profiler", "limit": 2, "intervalMs": 60000, "pauseMs": 60000}]}' >"$WORK/limits.json"

"$SLUICE_GATEWAY_BIN" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --tokens "$WORK/tokens.textproto" \
  --pg-dsn "$DSN" --pg-schema "$SCHEMA" --topic-prefix "$PREFIX" --rate-limits "@$WORK/limits.json" \
  --health-group "${PREFIX}audit" --event-log-group "${PREFIX}audit" --metrics-listen "" >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
"$SLUICE_AUDIT_BIN" --pg-dsn "$DSN" --pg-schema "$SCHEMA" --topic-prefix "$PREFIX" --group "${PREFIX}audit" \
  --metrics-listen "" >"$WORK/audit.log" 2>&1 &
PIDS+=($!)

GRPC="" HTTP=""
for _ in $(seq 1 100); do
  GRPC="$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$WORK/gateway.log" 2>/dev/null || true)"
  HTTP="$(sed -n 's/.*HTTP\/JSON API on port \([0-9]*\).*/\1/p' "$WORK/gateway.log" 2>/dev/null || true)"
  [[ -n "$GRPC" && -n "$HTTP" ]] && break
  sleep 0.1
done
[[ -n "$GRPC" && -n "$HTTP" ]] || fail "gateway did not start"

mkdir -p "$ARTIFACTS"
EXPLORER_URL="http://127.0.0.1:$HTTP" EXPLORER_GATEWAY="127.0.0.1:$GRPC" EXPLORER_ARTIFACTS="$ARTIFACTS" \
  "$PY" "$ROOT/tests/lib/explorer_test.py" || fail "the browser test failed (screenshots in $ARTIFACTS)"
