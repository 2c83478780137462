#!/usr/bin/env bash
# The run command. On a fresh Debian 12 machine: installs what is missing, builds,
# brings the local stack up (Kafka + PostgreSQL on 127.0.0.1), provisions the catalog
# topics and runs the end-to-end demo: one event of each of the 13 types published
# through the producer and read back through a consumer group, printed as JSON.
# The stack stays up afterwards; stop it with: bash dev/stack.sh down
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
case "${1:-}" in
  -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "run: takes no arguments" >&2; exit 2 ;;
esac

bash dev/install-deps.sh
# shellcheck source=dev/env.sh
source dev/env.sh
bash dev/build.sh
bash dev/stack.sh up
build/cli/sluicectl topics ensure
build/cli/sluicectl demo
echo
echo "The local stack is still running (Kafka $SLUICE_KAFKA_BOOTSTRAP, PostgreSQL port ${SLUICE_PG_PORT:-15432})."
echo "Try: build/cli/sluicectl topics list    Stop it: bash dev/stack.sh down"
