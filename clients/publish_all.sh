#!/usr/bin/env bash
# Publishes one envelope with each client in turn and prints their JSON lines.
#   clients/publish_all.sh TARGET TOKEN VECTOR [--stream]
# TARGET is the gateway's HOST:PORT, VECTOR a file holding a binary sluice.v1.Envelope.
# Runs every client even when one fails; exits 1 if any failed. Run clients/build.sh first.
# SLUICE_CLIENTS (default "python go java node") picks the clients and their order.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS="$ROOT/clients"

if (( $# < 3 || $# > 4 )) || { (( $# == 4 )) && [[ "$4" != "--stream" ]]; }; then
  echo "usage: clients/publish_all.sh TARGET TOKEN VECTOR [--stream]" >&2
  exit 2
fi
args=(--target "$1" --token "$2" --vector "$3")
(( $# == 4 )) && args+=(--stream)

publish() {
  local lang="$1"; shift
  case "$lang" in
    python) "$ROOT/.cache/venv-clients/bin/python" "$CLIENTS/python/publish.py" "$@" ;;
    go)     "$CLIENTS/go/bin/publish" "$@" ;;
    java)   java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
              -cp "$CLIENTS/java/target/classes:$(cat "$CLIENTS/java/target/classpath.txt")" \
              dev.sluice.examples.Publish "$@" ;;
    node)   node "$CLIENTS/node/publish.js" "$@" ;;
    *)      echo "publish_all: unknown client '$lang'" >&2; return 2 ;;
  esac
}

failed=0
for lang in ${SLUICE_CLIENTS:-python go java node}; do
  publish "$lang" "${args[@]}" || failed=1
done
exit "$failed"
