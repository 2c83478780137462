#!/usr/bin/env bash
# Source me:  . dev/env.sh
# Exports the coordinates of the local stack (dev/stack.sh) and puts buf on PATH.
# No `set -euo pipefail` here on purpose: this file runs inside your own shell.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  echo "usage: source dev/env.sh   (exports SLUICE_ROOT, SLUICE_KAFKA_BOOTSTRAP, SLUICE_PG_DSN, SLUICE_KAFKA_LIBS; adds .cache/npm/node_modules/.bin to PATH)"
  [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]] && exit 0
  echo "env.sh: error: this file must be sourced, not executed" >&2
  exit 2
fi

SLUICE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SLUICE_ROOT
export SLUICE_KAFKA_BOOTSTRAP="127.0.0.1:${SLUICE_KAFKA_PORT:-19092}"
export SLUICE_PG_DSN="host=127.0.0.1 port=${SLUICE_PG_PORT:-15432} dbname=sluice user=postgres"
export SLUICE_KAFKA_LIBS="$SLUICE_ROOT/.cache/kafka/libs"
case ":$PATH:" in
  *":$SLUICE_ROOT/.cache/npm/node_modules/.bin:"*) ;;
  *) export PATH="$SLUICE_ROOT/.cache/npm/node_modules/.bin:$PATH" ;;
esac
