#!/usr/bin/env bash
# Start/stop the whole local stack: Kafka (dev/kafka.sh) and PostgreSQL (dev/postgres.sh).
set -euo pipefail

DEV="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  echo "usage: dev/stack.sh {up|down|status}   (up = kafka + postgres start, down = both stop)"
}

case "${1:-}" in
  up)
    "$DEV/kafka.sh" start
    "$DEV/postgres.sh" start
    ;;
  down)
    # Stop both even if one fails; report failure at the end.
    rc=0
    "$DEV/kafka.sh" stop || rc=1
    "$DEV/postgres.sh" stop || rc=1
    exit "$rc"
    ;;
  status)
    # Exit 0 only if both are up and answering.
    rc=0
    "$DEV/kafka.sh" status || rc=1
    "$DEV/postgres.sh" status || rc=1
    exit "$rc"
    ;;
  -h|--help|help) usage ;;
  "") usage >&2; exit 2 ;;
  *) echo "stack: unknown command '$1'" >&2; usage >&2; exit 2 ;;
esac
