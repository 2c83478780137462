#!/usr/bin/env bash
# Proves the four clients against a fake gateway: builds them, runs the Go batching tests, starts
# clients/testing/fake_gateway.py on a free 127.0.0.1 port, publishes every golden vector
# (contracts/vectors/*.binpb) with clients/publish_all.sh, unary and --stream, checks that
# the envelopes received equal the vectors and that a wrong token gives error JSON and
# exit 1, and each client's batching publisher (--batch: per-event results, the invalid
# event's own error, batch sizes, calls in flight, a refused call failing every event),
# then stops the fake. Ends with "N passed, N failed"; exits non-zero on a failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TESTING="$ROOT/clients/testing"
PY="$ROOT/.cache/venv-clients/bin/python"

"$ROOT/clients/build.sh"

# The Go batching package's own tests (against an in-process fake EventGateway).
(cd "$ROOT/clients/go" && GOPATH="$ROOT/.cache/go" GOMODCACHE="$ROOT/.cache/go/pkg/mod" GOCACHE="$ROOT/.cache/go/cache" \
  GOFLAGS="-modcacherw -buildvcs=false" go test ./batching)

work="$(mktemp -d)"
fake_pid=""
cleanup() {
  if [[ -n "$fake_pid" ]]; then kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

token="good-$RANDOM$RANDOM" reject_token="reject-$RANDOM$RANDOM"
"$PY" "$TESTING/fake_gateway.py" --host 127.0.0.1 --port 0 --token "$token" --batch-delay 0.05 \
  --reject-token "$reject_token" --record "$work/records.jsonl" >"$work/fake.out" 2>"$work/fake.err" &
fake_pid=$!
for _ in $(seq 100); do
  grep -q '^listening ' "$work/fake.out" 2>/dev/null && break
  kill -0 "$fake_pid" 2>/dev/null || { echo "check_clients: fake gateway died:" >&2; cat "$work/fake.err" >&2; exit 1; }
  sleep 0.1
done
target="$(awk '/^listening /{print $2}' "$work/fake.out")"
[[ -n "$target" ]] || { echo "check_clients: fake gateway did not start" >&2; exit 1; }
touch "$work/records.jsonl"

"$PY" "$TESTING/check_clients.py" --target "$target" --token "$token" --wrong-token "wrong-token" \
  --reject-token "$reject_token" --records "$work/records.jsonl"
