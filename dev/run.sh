#!/usr/bin/env bash
# The run command. On a fresh Debian 12 machine: installs what is missing, builds,
# brings the local stack up (Kafka + PostgreSQL on 127.0.0.1), provisions the catalog
# topics, applies the migrations, starts sluice-gateway, sluice-relay and
# sluice-profiler, and runs the governance story end to end (sluicectl story): a tier1
# metadata entry bound to a demo table is approved through the gateway, profiled and
# graded; the table is made worse, data.refreshed is reported through the gateway, and
# the data.quality.degraded event and the whole correlated chain are printed.
# The services stop at the end (their logs stay in .run/story/); the stack stays up.
# Stop it with: bash dev/stack.sh down
#
# bash dev/run.sh --explorer: the same, with sluice-audit storing every event and the
# gateway serving the Explorer on http://127.0.0.1:8080/ (SLUICE_EXPLORER_PORT); after
# the story the services keep running, and the token to sign in with is printed,
# until Ctrl-C.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
case "${1:-}" in
  -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") EXPLORER="" ;;
  --explorer) EXPLORER="127.0.0.1:${SLUICE_EXPLORER_PORT:-8080}" ;;
  *) echo "run: unknown argument '$1' (want nothing or --explorer)" >&2; exit 2 ;;
esac

bash dev/install-deps.sh
# shellcheck source=dev/env.sh
source dev/env.sh
bash dev/build.sh
bash dev/stack.sh up
build/cli/sluicectl topics ensure
build/cli/sluicectl migrate --pg-dsn "$SLUICE_PG_DSN"

RUN="$ROOT/.run/story"
mkdir -p "$RUN"
GATEWAY="127.0.0.1:${SLUICE_GATEWAY_PORT:-50051}"

# Three principals with fresh random tokens; the gateway only ever sees their hashes.
bash dev/story-tokens.sh "$RUN"
# shellcheck source=/dev/null
source "$RUN/tokens.env"

PIDS=()
stop_services() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_services EXIT

build/gateway/sluice-gateway --listen "$GATEWAY" --tokens "$RUN/tokens.textproto" --pg-dsn "$SLUICE_PG_DSN" \
  --http-listen "$EXPLORER" --metrics-listen "" >"$RUN/gateway.log" 2>&1 &
PIDS+=($!)
if [[ -n "$EXPLORER" ]]; then
  build/consumers/audit/sluice-audit --metrics-listen "" >"$RUN/audit.log" 2>&1 &
  PIDS+=($!)
fi
build/producers/relay/sluice-relay --poll-ms 200 --metrics-listen "" >"$RUN/relay.log" 2>&1 &
PIDS+=($!)
# The story's tenant may have its demo tables (schema demo) profiled; nothing else.
build/consumers/profiler/sluice-profiler --allow-binding 'acme=demo.*' --metrics-listen "" >"$RUN/profiler.log" 2>&1 &
PIDS+=($!)

for _ in $(seq 1 100); do
  grep -q "listening on port" "$RUN/gateway.log" 2>/dev/null && break
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run: a service exited at start; its log:" >&2
      tail -n 20 "$RUN"/*.log >&2
      exit 1
    fi
  done
  sleep 0.1
done
echo "services: sluice-gateway on $GATEWAY, sluice-relay, sluice-profiler (logs in .run/story/)"
echo

build/cli/sluicectl story --gateway "$GATEWAY" --pg-dsn "$SLUICE_PG_DSN" --tenant acme

if [[ -n "$EXPLORER" ]]; then
  echo
  echo "Explorer: http://$EXPLORER/  (sign in with the analyst's token of tenant acme:"
  echo "  $SLUICE_STORY_REQUESTER_TOKEN )"
  echo "The services run until Ctrl-C (logs in .run/story/)."
  wait "${PIDS[0]}" || true
  exit 0
fi

echo
echo "The local stack is still running (Kafka $SLUICE_KAFKA_BOOTSTRAP, PostgreSQL port ${SLUICE_PG_PORT:-15432})."
echo "Try: build/cli/sluicectl tail --from-beginning --type data.quality.degraded --max 1"
echo "     psql \"\$SLUICE_PG_DSN\" -c 'SELECT canonical_key, quality_score, quality_grade, profiled_at FROM mdm_profile'"
echo "Stop it: bash dev/stack.sh down"
