#!/usr/bin/env bash
# Publishes one envelope with each client in turn and prints their JSON lines.
#   clients/publish_all.sh TARGET TOKEN VECTOR [--stream | --batch N [--batch-size M] [--invalid I]]
# TARGET is the gateway's HOST:PORT, VECTOR a file holding a binary sluice.v1.Envelope.
# With --batch each client publishes N copies (fresh ids) through its batching publisher
# and prints one line per event (see clients/README.md).
# Runs every client even when one fails; exits 1 if any failed. Run clients/build.sh first.
# SLUICE_CLIENTS (default "python go java node") picks the clients and their order.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS="$ROOT/clients"

usage() {
  echo "usage: clients/publish_all.sh TARGET TOKEN VECTOR [--stream | --batch N [--batch-size M] [--invalid I]]" >&2
  exit 2
}
(( $# >= 3 )) || usage
args=(--target "$1" --token "$2" --vector "$3")
shift 3
if [[ "${1:-}" == "--stream" ]]; then
  (( $# == 1 )) || usage
  args+=(--stream)
elif [[ "${1:-}" == "--batch" ]]; then
  (( $# >= 2 )) || usage
  args+=(--batch "$2")
  shift 2
  while (( $# )); do
    [[ "$1" == --batch-size || "$1" == --invalid ]] && (( $# >= 2 )) || usage
    args+=("$1" "$2")
    shift 2
  done
elif (( $# )); then
  usage
fi

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
