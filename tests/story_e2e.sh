#!/usr/bin/env bash
# End to end: the main job's story (sluicectl story) against real sluice-gateway,
# sluice-relay and sluice-profiler processes on the local stack, isolated by a topic
# prefix and a PostgreSQL schema of its own. Passes when the story reaches
# data.quality.degraded with the whole chain sharing one correlation id, and the tenant's
# notification sink (sluice-triggers, a receiver on loopback) got exactly one quality
# notification and the approval's two (to its approvers, then to its requester).
# Binaries come from the environment (set by ctest): SLUICECTL, SLUICE_GATEWAY_BIN,
# SLUICE_RELAY_BIN, SLUICE_PROFILER_BIN, SLUICE_TRIGGERS_BIN.
set -euo pipefail

DSN="${SLUICE_PG_DSN:-host=127.0.0.1 port=15432 dbname=sluice user=postgres}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ID="$RANDOM$RANDOM"
PREFIX="it-story-$ID."
SCHEMA="it_story_$ID"
WORK="$(mktemp -d)"
PIDS=()
RECEIVER=""
HOOK=""
cleanup() {
  [[ -n "$RECEIVER" ]] && kill "$RECEIVER" 2>/dev/null || true
  [[ -n "$HOOK" ]] && kill "$HOOK" 2>/dev/null || true
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql "$DSN" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  for out in story.out story-noca.out; do
    TABLE="$(sed -n 's/^\[1\/6\] seeded \(demo\.[a-z0-9_]*\):.*/\1/p' "$WORK/$out" 2>/dev/null || true)"
    [[ -n "$TABLE" ]] && psql "$DSN" -qc "DROP TABLE IF EXISTS $TABLE" >/dev/null 2>&1 || true
  done
  "$SLUICECTL" --topic-prefix "$PREFIX" topics delete --yes >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "story_e2e: $*" >&2; for f in "$WORK"/*.log; do echo "== $f" >&2; tail -n 30 "$f" >&2; done; exit 1; }

psql "$DSN" -qc "CREATE SCHEMA $SCHEMA" >/dev/null
SDSN="$DSN options='-c search_path=$SCHEMA'"
"$SLUICECTL" --topic-prefix "$PREFIX" topics ensure >/dev/null
"$SLUICECTL" migrate --pg-dsn "$SDSN" >/dev/null

bash "$(dirname "${BASH_SOURCE[0]}")/../dev/story-tokens.sh" "$WORK"
# shellcheck source=/dev/null
source "$WORK/tokens.env"

# The gateway serves TLS, as in prod: the story verifies it with --tls-ca.
# shellcheck source=lib/test_ca.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/test_ca.sh"
(cd "$WORK" && ca ca sluice-test-ca && leaf gateway localhost "subjectAltName=DNS:localhost")
# Spans go to a stand-in OTLP collector.
python3 "$(dirname "${BASH_SOURCE[0]}")/lib/otlp_receiver.py" "$WORK/spans.jsonl" "$WORK/otlp.port" &
RECEIVER=$!
for _ in $(seq 1 100); do [[ -s "$WORK/otlp.port" ]] && break; sleep 0.1; done
[[ -s "$WORK/otlp.port" ]] || fail "the OTLP receiver did not start"
OTLP="http://127.0.0.1:$(cat "$WORK/otlp.port")"
# The tenant's notification sink: a webhook receiver that checks each signature.
SINK_SECRET="$(openssl rand -hex 24)"
printf '%s\n' "$SINK_SECRET" >"$WORK/sink.secret"
python3 "$(dirname "${BASH_SOURCE[0]}")/lib/webhook_receiver.py" "$WORK/notifications.jsonl" "$WORK/hook.port" \
  "$SINK_SECRET" &
HOOK=$!
for _ in $(seq 1 100); do [[ -s "$WORK/hook.port" ]] && break; sleep 0.1; done
[[ -s "$WORK/hook.port" ]] || fail "the webhook receiver did not start"
"$SLUICE_GATEWAY_BIN" --listen 127.0.0.1:0 --tokens "$WORK/tokens.textproto" --pg-dsn "$DSN" --pg-schema "$SCHEMA" \
  --tls-cert "$WORK/gateway.crt" --tls-key "$WORK/gateway.key" --otlp-endpoint "$OTLP" \
  --trigger-allow-http-loopback --topic-prefix "$PREFIX" --metrics-listen "" >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
"$SLUICE_RELAY_BIN" --pg-dsn "$DSN" --pg-schema "$SCHEMA" --topic-prefix "$PREFIX" --poll-ms 200 --metrics-listen "" >"$WORK/relay.log" 2>&1 &
PIDS+=($!)
SLUICE_LOG_FORMAT=json "$SLUICE_PROFILER_BIN" --pg-dsn "$DSN" --pg-schema "$SCHEMA" --topic-prefix "$PREFIX" --group "${PREFIX}profiler" \
  --allow-binding 'acme=demo.*' --otlp-endpoint "$OTLP" --metrics-listen "" >"$WORK/profiler.log" 2>&1 &
PIDS+=($!)
"$SLUICE_TRIGGERS_BIN" --pg-dsn "$DSN" --pg-schema "$SCHEMA" --topic-prefix "$PREFIX" --group "${PREFIX}triggers" \
  --tokens "$WORK/tokens.textproto" --allow-http-loopback --refresh-ms 200 --poll-ms 100 --metrics-listen "" \
  >"$WORK/triggers.log" 2>&1 &
PIDS+=($!)

PORT=""
for _ in $(seq 1 100); do
  PORT="$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$WORK/gateway.log" 2>/dev/null || true)"
  [[ -n "$PORT" ]] && break
  sleep 0.1
done
[[ -n "$PORT" ]] || fail "gateway did not start"

# The admin gives tenant acme a notification sink before the story starts.
"$SLUICECTL" notify create --gateway "localhost:$PORT" --tls-ca "$WORK/ca.pem" --token "$SLUICE_STORY_ADMIN_TOKEN" \
  --name story-hook --url "http://127.0.0.1:$(cat "$WORK/hook.port")/hook" --secret-file "$WORK/sink.secret" \
  >"$WORK/sink.out" 2>&1 || { cat "$WORK/sink.out" >&2; fail "sluicectl notify create failed"; }
grep -q "$SINK_SECRET" "$WORK/sink.out" && fail "the sink's secret was printed"

# Without the CA the story cannot reach the gateway, and says so at its first call.
if "$SLUICECTL" --topic-prefix "$PREFIX" story --gateway "localhost:$PORT" --pg-dsn "$DSN" --tenant acme \
  --rows 10 --timeout 5 >"$WORK/story-noca.out" 2>&1; then
  fail "the story reached the TLS gateway without --tls-ca"
fi
"$SLUICECTL" --topic-prefix "$PREFIX" story --gateway "localhost:$PORT" --tls-ca "$WORK/ca.pem" --pg-dsn "$DSN" --tenant acme \
  --rows 5000 --timeout 90 >"$WORK/story.out" 2>&1 \
  || { cat "$WORK/story.out" >&2; fail "sluicectl story failed"; }
cat "$WORK/story.out"

grep -q '^\[6/6\] data.quality.degraded: score 100.00 -> ' "$WORK/story.out" || fail "no degradation line"
CORR="$(sed -n 's/^The chain, correlation id \([0-9a-f-]*\), .*/\1/p' "$WORK/story.out")"
[[ -n "$CORR" ]] || fail "no chain printed"
for type in approval.created metadata.approved approval.approved data.refreshed \
            metadata.profile.completed data.quality.degraded; do
  grep -q "^  $type " "$WORK/story.out" || fail "the chain lacks $type"
done
[[ "$(grep -c '^  metadata.profile.completed ' "$WORK/story.out")" == 2 ]] || fail "want two profile.completed in the chain"
# One trace from CreateApproval through the approval, the outbox and the profiler to
# data.quality.degraded: every event of the chain carries a span of the story's trace,
# each a span of its own.
python3 - "$WORK/story.out" <<'PYEOF' || fail "the chain does not share the story's trace"
import re, sys
text = open(sys.argv[1]).read()
trace = re.search(r"^The chain, correlation id \S+, trace ([0-9a-f]{32}) ", text, re.M).group(1)
chain = text.split("\nThe chain, ", 1)[1].splitlines()[1:]
spans = [l.rsplit(None, 1)[1] for l in chain if l.startswith("  ")]
types = [l.split()[0] for l in chain if l.startswith("  ")]
assert "data.quality.degraded" in types and "approval.created" in types, types
bad = [(t, s) for t, s in zip(types, spans) if not re.fullmatch(trace + r"-[0-9a-f]{16}", s)]
assert not bad, f"not in trace {trace}: {bad}"
assert len(set(spans)) == len(spans), f"spans repeat: {spans}"
PYEOF
# The database agrees: two profiles of the entity, the second graded below the first.
GRADES="$(psql "$DSN" -Atc "SELECT string_agg(quality_grade, '' ORDER BY profiled_at) FROM $SCHEMA.mdm_profile")"
[[ "$GRADES" == A[B-F] ]] || fail "profile grades are '$GRADES', want A then worse"
# The reference's verification queries, on Sluice's schema (sql/verify/approval_chain.sql),
# find the story's approval, entry and latest profile.
APPROVAL="$(sed -n 's/^\[2\/6\] approval \([0-9a-f-]*\) requested by .*/\1/p' "$WORK/story.out")"
KEY="$(sed -n 's/^\[2\/6\] .*tier1 metadata "\([^"]*\)" bound to .*/\1/p' "$WORK/story.out")"
APPROVER="$(sed -n 's/^\[3\/6\] approved by \([^:]*\): .*/\1/p' "$WORK/story.out")"
[[ -n "$APPROVAL" && -n "$KEY" && -n "$APPROVER" ]] || fail "story output lacks the approval, key or approver"
psql "$SDSN" -X -At -F '|' -v ON_ERROR_STOP=1 -v tenant_id=acme -v approval_id="$APPROVAL" -v canonical_key="$KEY" \
  -v entity_urn="urn:sluice:demo:$KEY" -f "$ROOT/sql/verify/approval_chain.sql" >"$WORK/verify.out" 2>&1 \
  || { cat "$WORK/verify.out" >&2; fail "sql/verify/approval_chain.sql failed"; }
python3 - "$WORK/verify.out" "$APPROVER" "$KEY" "$(psql "$DSN" -Atc "SELECT quality_score FROM $SCHEMA.mdm_profile ORDER BY profiled_at DESC LIMIT 1")" <<'PYEOF' \
  || { cat "$WORK/verify.out" >&2; fail "the verification queries did not find the story"; }
import sys
rows = [l.split("|") for l in open(sys.argv[1]).read().splitlines() if l]
approver, key, score = sys.argv[2], sys.argv[3], float(sys.argv[4])
assert len(rows) == 3, rows
assert rows[0][0] == "approved" and rows[0][1] == approver and rows[0][2], rows[0]
assert rows[1][1] == key and rows[1][3] == "tier1" and rows[1][4] == "active", rows[1]
assert rows[2][1] == "urn:sluice:demo:" + key and abs(float(rows[2][5]) - score) < 1e-9, rows[2]
PYEOF
# Notifications: exactly one quality notification (the second profile and its
# data.quality.degraded are one; the first profile scored 100) and the approval's two,
# each signed with the sink's secret and sent once.
for _ in $(seq 1 200); do
  [[ "$(wc -l <"$WORK/notifications.jsonl" 2>/dev/null || echo 0)" -ge 3 ]] && break
  sleep 0.1
done
sleep 3  # anything extra would arrive by now
python3 - "$WORK/notifications.jsonl" "$CORR" "$KEY" "$APPROVAL" "$APPROVER" <<'PYEOF' \
  || { cat "$WORK/notifications.jsonl" >&2; fail "the sink did not get the story's notifications"; }
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
corr, key, approval, approver = sys.argv[2:6]
assert all(l["signature_ok"] and l["content_type"].startswith("application/json") for l in lines), lines
ids = [l["idempotency_key"] for l in lines]
assert len(ids) == len(set(ids)), f"a notification sent twice: {ids}"
quality = [l["body"] for l in lines if l["body"]["category"] == "quality"]
assert len(quality) == 1, f"want one quality notification, got {quality}"
q = quality[0]
assert q["entity_key"] == key and q["tier"] == "tier1" and q["correlation_id"] == corr, q
assert q["severity"] == "critical" and q["score"] < 95 and q["grade"] in "BCDF", q
approvals = {l["body"]["approval_status"]: l["body"] for l in lines if l["body"]["category"] == "approval"}
assert sorted(approvals) == ["approved", "pending"] and len(lines) == 3, lines
created, approved = approvals["pending"], approvals["approved"]
assert created["approval_id"] == approval and created["audience"] == "approvers", created
assert created["recipients"] == [approver], f"the approvers of metadata_steward: {created}"
assert approved["audience"] == "requester" and approved["recipients"] == ["analyst"], approved
PYEOF

# Every service stops cleanly on SIGTERM.
NAMES=(sluice-gateway sluice-relay sluice-profiler sluice-triggers)
for i in "${!PIDS[@]}"; do kill -TERM "${PIDS[$i]}"; done
for i in "${!PIDS[@]}"; do
  rc=0; wait "${PIDS[$i]}" || rc=$?
  [[ $rc == 0 ]] || fail "${NAMES[$i]} exited with status $rc on SIGTERM"
done
PIDS=()
# The services exported their spans on the way out: the approval's events (gateway), each
# profile run below the event that triggered it and its outcome events below the run
# (profiler), all in the story's trace and matching the chain's spans.
python3 - "$WORK/spans.jsonl" "$WORK/story.out" "$KEY" <<'PYEOF' || fail "the exported spans do not match the chain"
import json, re, sys
spans = {}
for line in open(sys.argv[1]):
    for rs in json.loads(line)["resourceSpans"]:
        service = rs["resource"]["attributes"][0]["value"]["stringValue"]
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                spans[s["spanId"]] = dict(s, service=service)
text = open(sys.argv[2]).read()
trace = re.search(r"^The chain, correlation id \S+, trace ([0-9a-f]{32}) ", text, re.M).group(1)
chain = [l.split() for l in text.split("\nThe chain, ", 1)[1].splitlines()[1:] if l.startswith("  ")]
span_of = {f[1]: f[-1].split("-")[1] for f in chain}   # event id -> span id
type_of = {f[1]: f[0] for f in chain}
cause_of = {f[1]: (f[4] if f[3] != "-" else None) for f in chain}  # "<- type id" or "<- -"
for event, span in span_of.items():
    kind = type_of[event]
    if kind == "data.refreshed":  # published by the story itself, which exports no spans
        continue
    s = spans.get(span)
    assert s is not None, f"no span for {kind} {event}"
    assert s["traceId"] == trace and s["name"] == "emit " + kind, s
    attrs = {a["key"]: a["value"]["stringValue"] for a in s["attributes"]}
    assert attrs["sluice.event.id"] == event, attrs
    if kind.startswith("metadata.profile") or kind == "data.quality.degraded":
        run = spans[s["parentSpanId"]]
        assert run["service"] == "sluice-profiler" and run["name"] == "profile " + sys.argv[3], run
        trigger = cause_of[event] if kind != "data.quality.degraded" else cause_of[cause_of[event]]
        assert run["parentSpanId"] == span_of[trigger], (run, trigger)
    else:
        assert s["service"] == "sluice-gateway", s
runs = [s for s in spans.values() if s["name"].startswith("profile ") and s["traceId"] == trace]
assert len(runs) == 2, runs
PYEOF
# The profiler logged JSON lines, and its job lines name the event and correlation they serve.
python3 - "$WORK/profiler.log" "$CORR" <<'PYEOF' || fail "profiler.log is not JSON lines with event context"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert lines and all({"ts", "level", "service", "msg"} <= l.keys() for l in lines), "fields missing"
assert any(l.get("correlation_id") == sys.argv[2] and l.get("event_id") for l in lines), "no line of the story's chain"
PYEOF
echo "story_e2e: ok (correlation $CORR, grades $GRADES)"
