#!/usr/bin/env bash
# Kafka client security for every Kafka-using service (--kafka-config and the
# SLUICE_KAFKA_* overrides, docs/deploy.md "Kafka TLS and SASL"). Starts a throwaway Kafka
# broker of its own from the dev jars (never the dev one on 19092), on free ports, with
#   SASL_SSL  SCRAM-SHA-512 over TLS; users created at storage format time, one per service;
#   SSL       mutual TLS: a client certificate of the test CA is required;
#   INTERNAL  plaintext, only for this script's topic provisioning and ACLs: its principal
#             User:ANONYMOUS is a super user (so are the controller and inter-broker links), which is
#             why it and CONTROLLER listen on 127.0.0.1 only;
# certificates made here with openssl (a CA, the broker's for 127.0.0.1 and localhost, a
# client's), given to Kafka as PEM. ACLs are enforced (StandardAuthorizer, no ACL = denied), one
# set per service principal as in docs/deploy.md "Kafka ACLs", topic names from the catalog. Then:
#   - sluice-gateway (SASL_SSL, properties file) accepts `sluicectl publish`, and its event-health
#     refresh (Kafka clients of its own) reports the audit group's lag;
#   - sluice-audit (SASL_SSL, properties file plus SLUICE_KAFKA_SASL_PASSWORD) stores that event
#     in a scratch PostgreSQL schema;
#   - sluice-profiler (mutual TLS, from SLUICE_KAFKA_* variables only) joins its group;
#   - sluice-relay (SASL_SSL) starts with its producer connected;
#   - the gateway's Subscribe and Replay (event_query_probe): an event published through it
#     arrives on an open Subscribe and comes back from a Replay of its offset;
#   - `sluicectl story` as the user and ACLs of the k8s/story Job (SLUICE_KAFKA_* only) reaches
#     data.quality.degraded through the gateway, relay and profiler above;
#   - sluicectl (SASL_SSL as an operator principal of its own, read-only ACLs): `topics list`
#     (--kafka-config), `tail` (SLUICE_KAFKA_CONFIG plus SLUICE_KAFKA_SASL_PASSWORD) and `replay`
#     show the catalog's topics and the published event;
#   - the relay's and the gateway's passwords change on the broker, which restarts: both end
#     on their own, non-zero, with "kafka authentication failed", while the audit and the
#     profiler reconnect and exit 0 on SIGTERM;
#   - ACLs refuse what a principal is not granted: the audit and the gateway writing where they
#     may not (the gateway: the approval topic, written by the relay only), the profiler reading a
#     topic outside its set, the relay reading at all;
#   - at start, a wrong password makes the relay, the audit, the gateway and sluicectl (topics
#     list, tail) exit non-zero with "kafka authentication failed", and so does the relay on the mutual-TLS listener
#     without a client certificate; a malformed --kafka-config line is refused naming
#     file:line; no log shows a password.
# Binaries come from the environment (set by ctest): SLUICECTL, SLUICE_GATEWAY_BIN,
# SLUICE_RELAY_BIN, SLUICE_AUDIT_BIN, SLUICE_PROFILER_BIN, SLUICE_EVENT_QUERY_PROBE. Needs the dev PostgreSQL
# (dev/stack.sh up), java and the Kafka jars (dev/install-deps.sh), openssl and python3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=dev/env.sh
source "$ROOT/dev/env.sh"
LIBS="$ROOT/.cache/kafka/libs"
for v in SLUICECTL SLUICE_GATEWAY_BIN SLUICE_RELAY_BIN SLUICE_AUDIT_BIN SLUICE_PROFILER_BIN SLUICE_EVENT_QUERY_PROBE; do
  [[ -x "${!v:-}" ]] || { echo "kafka_secure_test: $v must name a built binary" >&2; exit 1; }
done
command -v java >/dev/null || { echo "kafka_secure_test: java not found (dev/install-deps.sh)" >&2; exit 1; }
compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null \
  || { echo "kafka_secure_test: Kafka jars missing in $LIBS (dev/install-deps.sh)" >&2; exit 1; }

ID="$RANDOM$RANDOM"
PREFIX="it-ksec-$ID."
SCHEMA="it_ksec_$ID"
WORK="$(mktemp -d)"
BROKER_PID=""
PIDS=()
NAMES=()
SCHEMA_MADE=0
STORY_TABLE=""
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n "$BROKER_PID" ]]; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  if [[ $SCHEMA_MADE == 1 ]]; then
    psql "$SLUICE_PG_DSN" -X -q -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  fi
  if [[ -z "$STORY_TABLE" && -f "$WORK/sluicectl-story.log" ]]; then
    STORY_TABLE="$(sed -n 's/^\[1\/6\] seeded \(demo\.[a-z0-9_]*\):.*/\1/p' "$WORK/sluicectl-story.log")"
  fi
  [[ -z "$STORY_TABLE" ]] || psql "$SLUICE_PG_DSN" -X -q -c "DROP TABLE IF EXISTS $STORY_TABLE" >/dev/null 2>&1 || true
  [[ -z "${KSEC_KEEP:-}" ]] || cp "$WORK"/*.log "$KSEC_KEEP"/ 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  echo "kafka_secure_test: FAIL: $*" >&2
  for f in "$WORK"/*.log; do
    [[ -f "$f" ]] && { echo "== $f" >&2; tail -n 25 "$f" >&2; }
  done
  exit 1
}
cd "$WORK"

# --- certificates
source "$ROOT/tests/lib/test_ca.sh"  # ca, leaf
ca ca "sluice kafka test CA"
leaf broker 127.0.0.1 "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth"
leaf client sluice-profiler "extendedKeyUsage=clientAuth"
# Kafka's PEM key store: the (unencrypted PKCS#8) key and the certificate in one file.
cat broker.key broker.crt >broker-keystore.pem
cat client.key client.crt >client-keystore.pem  # the Java clients of the ACL checks below

# --- the throwaway broker
freeport() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
P_INTERNAL="$(freeport)"; P_CONTROLLER="$(freeport)"; P_SASL="$(freeport)"; P_MTLS="$(freeport)"
GW_METRICS="$(freeport)"
SASL_BOOTSTRAP="127.0.0.1:$P_SASL"
MTLS_BOOTSTRAP="127.0.0.1:$P_MTLS"
cat >server.properties <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$P_CONTROLLER
listeners=INTERNAL://127.0.0.1:$P_INTERNAL,CONTROLLER://127.0.0.1:$P_CONTROLLER,SASL_SSL://127.0.0.1:$P_SASL,SSL://127.0.0.1:$P_MTLS
advertised.listeners=INTERNAL://127.0.0.1:$P_INTERNAL,SASL_SSL://127.0.0.1:$P_SASL,SSL://127.0.0.1:$P_MTLS
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$WORK/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$WORK/ca.pem
listener.name.ssl.ssl.client.auth=required
# ACLs. A client certificate's principal is its subject DN as is (ssl.principal.mapping.rules
# DEFAULT): User:CN=sluice-profiler. ANONYMOUS is every PLAINTEXT connection: INTERNAL and
# CONTROLLER, both on 127.0.0.1 only.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
allow.everyone.if.no.acl.found=false
log.dirs=$WORK/kafka-data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
EOF
cat >log4j.properties <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$WORK/broker.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
EOF
cat >tools-log4j.properties <<EOF
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=%p %m (%c)%n
EOF
kafka_java() { java -Xmx256m -Dlog4j.configuration="file:$WORK/log4j.properties" -cp "$LIBS/*" "$@"; }
# Kafka's command-line clients (ACLs, the refused producers and consumers): log to stderr.
KAFKA_TOOL=(java -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
  -Dlog4j.configuration="file:$WORK/tools-log4j.properties" -cp "$LIBS/*")
kafka_tool() { "${KAFKA_TOOL[@]}" "$@"; }
secret() { openssl rand -hex 16; }
declare -A PASSWORD
SCRAM=()
for user in sluice-gateway sluice-relay sluice-audit sluicectl sluice-story; do
  PASSWORD[$user]="$(secret)"
  SCRAM+=(--add-scram "SCRAM-SHA-512=[name=$user,password=${PASSWORD[$user]}]")
done
CLUSTER_ID="$(kafka_java kafka.tools.StorageTool random-uuid)" || fail "StorageTool random-uuid"
kafka_java kafka.tools.StorageTool format -t "$CLUSTER_ID" -c server.properties "${SCRAM[@]}" \
  >format.log 2>&1 || fail "StorageTool format (with SCRAM users)"
start_broker() {
  java -Xmx512m -Xms128m -XX:+UseG1GC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$WORK/log4j.properties" -cp "$LIBS/*" kafka.Kafka server.properties \
    >>broker-stdout.log 2>&1 </dev/null &
  BROKER_PID=$!
  for _ in $(seq 1 300); do
    grep -q 'Kafka Server started' broker.log 2>/dev/null && return 0
    kill -0 "$BROKER_PID" 2>/dev/null || fail "the throwaway broker exited during startup"
    sleep 0.2
  done
  fail "the throwaway broker did not start within 60s"
}
start_broker

# Topics over the plaintext (super user) listener: provisioning comes before any ACL exists.
# sluicectl over SASL_SSL, as a principal with ACLs, is checked below.
"$SLUICECTL" --bootstrap "127.0.0.1:$P_INTERNAL" --topic-prefix "$PREFIX" topics ensure >topics.log 2>&1 \
  || fail "topics ensure on the throwaway broker"

# --- ACLs per service principal (docs/deploy.md "Kafka ACLs"), topic names from the catalog:
# all topics; those of the types a gateway accepts (not outbox_only); the profiler's three types.
mapfile -t CATALOG_TOPICS < <(python3 - "$ROOT/contracts/catalog.textproto" "$PREFIX" <<'PYEOF'
import re, sys
blocks, cur = [], None
for line in open(sys.argv[1], encoding="utf-8"):
    if m := re.match(r"^(\w+) \{", line):
        cur = (m.group(1), {})
    elif line.startswith("}") and cur:
        blocks.append(cur)
        cur = None
    elif cur and (m := re.match(r'^\s+(\w+): "?([^"]*)"?$', line.rstrip("\n"))):
        cur[1].setdefault(m.group(1), m.group(2))
topics = [b["name"] for k, b in blocks if k == "topics"]
types = {b["type"]: b for k, b in blocks if k == "event_types"}
gateway = sorted({b["topic"] for b in types.values() if b.get("outbox_only") != "true"})
profiler = sorted({types[t]["topic"] for t in ("metadata.profile.due", "data.refreshed", "metadata.approved")})
for group in (topics, gateway, profiler):
    print(" ".join(sys.argv[2] + t for t in group))
PYEOF
) || fail "could not read the catalog's topics"
read -r -a ALL_TOPICS <<<"${CATALOG_TOPICS[0]:-}"
read -r -a GATEWAY_TOPICS <<<"${CATALOG_TOPICS[1]:-}"
read -r -a PROFILER_TOPICS <<<"${CATALOG_TOPICS[2]:-}"
(( ${#ALL_TOPICS[@]} > 0 && ${#GATEWAY_TOPICS[@]} > 0 && ${#PROFILER_TOPICS[@]} > 0 )) \
  || fail "no topics derived from the catalog: ${CATALOG_TOPICS[*]}"
[[ " ${GATEWAY_TOPICS[*]} " != *" ${PREFIX}sluice.approval "* ]] \
  || fail "the approval topic would be writable by the gateway"
topic_args() { for t in "$@"; do printf -- '--topic\n%s\n' "$t"; done; }
mapfile -t ALL_ARGS < <(topic_args "${ALL_TOPICS[@]}")
mapfile -t GATEWAY_ARGS < <(topic_args "${GATEWAY_TOPICS[@]}")
mapfile -t PROFILER_ARGS < <(topic_args "${PROFILER_TOPICS[@]}")
GATEWAY_P=User:sluice-gateway RELAY_P=User:sluice-relay AUDIT_P=User:sluice-audit PROFILER_P=User:CN=sluice-profiler
CTL_P=User:sluicectl STORY_P=User:sluice-story
acl() {  # acl ARGS...: adds ACLs over the plaintext (super user) listener
  kafka_tool kafka.admin.AclCommand --bootstrap-server "127.0.0.1:$P_INTERNAL" --add "$@" >>acls.log 2>&1 \
    || fail "kafka-acls --add $*"
}
# Writes: the relay everything the outbox carries (any catalog type, so every topic); the
# gateway the topics of the types it accepts. Both producers are idempotent.
acl --allow-principal "$RELAY_P" --operation Write "${ALL_ARGS[@]}"
acl --allow-principal "$GATEWAY_P" --operation Write "${GATEWAY_ARGS[@]}"
acl --allow-principal "$RELAY_P" --allow-principal "$GATEWAY_P" --operation IdempotentWrite --cluster
# Reads: the audit and the gateway (Subscribe, Replay, lag) every topic; the profiler its own.
acl --allow-principal "$AUDIT_P" --allow-principal "$GATEWAY_P" --operation Read "${ALL_ARGS[@]}"
acl --allow-principal "$AUDIT_P" --operation Read --group "${PREFIX}audit"
acl --allow-principal "$PROFILER_P" --operation Read "${PROFILER_ARGS[@]}" --group "${PREFIX}profiler"
# The gateway: committed offsets of the --health-group groups (Describe: no join, no commit),
# and its own throwaway group ids (sluice-gateway-health, -subscribe-UUID, -replay-UUID).
acl --allow-principal "$GATEWAY_P" --operation Describe --group "${PREFIX}audit" --group "${PREFIX}profiler"
acl --allow-principal "$GATEWAY_P" --operation Read --resource-pattern-type prefixed --group sluice-gateway-
# sluicectl as a read-only operator: every topic (topics list, tail, replay) and its own
# throwaway group ids (sluicectl-tail-UUID; replay's reader never joins its group).
acl --allow-principal "$CTL_P" --operation Read "${ALL_ARGS[@]}"
acl --allow-principal "$CTL_P" --operation Read --resource-pattern-type prefixed --group sluicectl-
# The story Job's user, with exactly the ACLs of k8s/story/kafka-user.yaml: every topic, and
# its own watcher groups (sluicectl-story-RUN).
acl --allow-principal "$STORY_P" --operation Read "${ALL_ARGS[@]}"
acl --allow-principal "$STORY_P" --operation Read --resource-pattern-type prefixed --group sluicectl-story-
"$SLUICECTL" migrate --pg-schema "$SCHEMA" >migrate.log 2>&1 || fail "sluicectl migrate --pg-schema $SCHEMA"
SCHEMA_MADE=1
bash "$ROOT/dev/story-tokens.sh" "$WORK/tokens" >/dev/null
# shellcheck disable=SC1091
source "$WORK/tokens/tokens.env"

sasl_config() {  # sasl_config FILE USER [PASSWORD]: a --kafka-config for the SASL_SSL listener
  cat >"$1" <<EOF
# SCRAM over TLS; the broker's certificate must chain to the test CA.
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.username=$2

ssl.ca.location=$WORK/ca.pem
EOF
  [[ $# -lt 3 ]] || echo "sasl.password=$3" >>"$1"
}
sasl_config gateway.properties sluice-gateway "${PASSWORD[sluice-gateway]}"
sasl_config relay.properties sluice-relay "${PASSWORD[sluice-relay]}"
sasl_config audit.properties sluice-audit  # the password comes from SLUICE_KAFKA_SASL_PASSWORD
sasl_config sluicectl.properties sluicectl "${PASSWORD[sluicectl]}"
sasl_config sluicectl-nopass.properties sluicectl  # with SLUICE_KAFKA_SASL_PASSWORD

start() {  # start NAME COMMAND...: runs a service in the background, output in NAME.log
  local name="$1"
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  NAMES+=("$name")
}
alive() {
  for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[$i]}" 2>/dev/null || fail "${NAMES[$i]} exited"
  done
}
wait_for() {  # wait_for WHAT COMMAND...: up to 60s for COMMAND to succeed, services alive
  local what="$1"
  shift
  for _ in $(seq 1 300); do
    "$@" && return 0
    alive
    sleep 0.2
  done
  fail "$what"
}

# --- the services, connected
start sluice-gateway "$SLUICE_GATEWAY_BIN" --bootstrap "$SASL_BOOTSTRAP" --kafka-config gateway.properties \
  --listen 127.0.0.1:0 --tokens "$WORK/tokens/tokens.textproto" --topic-prefix "$PREFIX" --pg-schema "$SCHEMA" \
  --metrics-listen "127.0.0.1:$GW_METRICS" --health-group "${PREFIX}audit" --event-log-group "${PREFIX}audit" --health-interval-s 1
SLUICE_KAFKA_SASL_PASSWORD="${PASSWORD[sluice-audit]}" \
  start sluice-audit "$SLUICE_AUDIT_BIN" --bootstrap "$SASL_BOOTSTRAP" --kafka-config audit.properties \
  --pg-schema "$SCHEMA" --topic-prefix "$PREFIX" --group "${PREFIX}audit" --metrics-listen ""
SLUICE_KAFKA_SECURITY_PROTOCOL=SSL SLUICE_KAFKA_SSL_CA_LOCATION="$WORK/ca.pem" \
  SLUICE_KAFKA_SSL_CERTIFICATE_LOCATION="$WORK/client.crt" SLUICE_KAFKA_SSL_KEY_LOCATION="$WORK/client.key" \
  start sluice-profiler "$SLUICE_PROFILER_BIN" --bootstrap "$MTLS_BOOTSTRAP" --pg-schema "$SCHEMA" \
  --topic-prefix "$PREFIX" --group "${PREFIX}profiler" --metrics-listen "" --allow-binding 'acme=demo.*'
start sluice-relay "$SLUICE_RELAY_BIN" --bootstrap "$SASL_BOOTSTRAP" --kafka-config relay.properties \
  --pg-schema "$SCHEMA" --topic-prefix "$PREFIX" --metrics-listen ""

# The gateway prints its port once its producer is connected (it waits for that at start).
wait_for "the gateway did not start" grep -q 'sluice-gateway listening on port' sluice-gateway.log
GW_PORT="$(sed -n 's/^sluice-gateway listening on port \([0-9]*\)$/\1/p' sluice-gateway.log)"
EVENT_ID="$(python3 -c 'import uuid; print(uuid.uuid4())')"
cat >event.json <<EOF
{"id":"$EVENT_ID","tenantId":"acme","source":"etl.pipeline","dataRefreshed":{"entityUrn":"sales.orders",
 "service":{"schema":"public","table":"orders"},"refreshType":"REFRESH_TYPE_FULL",
 "completedAt":"2026-01-01T00:00:00Z","triggeredBy":{"actorId":"etl","actorType":"ACTOR_TYPE_SYSTEM"}}}
EOF
"$SLUICECTL" publish --gateway "127.0.0.1:$GW_PORT" --token "$SLUICE_STORY_ETL_TOKEN" event.json >publish.log 2>&1 \
  || fail "sluicectl publish through the gateway: $(cat publish.log)"
grep -q "^ok $EVENT_ID ${PREFIX}sluice.data\[" publish.log || fail "publish: $(cat publish.log)"

stored() {
  [[ "$(psql "$SLUICE_PG_DSN" -X -At -c "SELECT count(*) FROM $SCHEMA.event_log WHERE id = '$EVENT_ID'")" == 1 ]]
}
wait_for "the audit (SASL_SSL) did not store event $EVENT_ID" stored
wait_for "the profiler (mutual TLS) was never assigned partitions" \
  grep -q "consumer ${PREFIX}profiler: assigned [1-9][0-9]* partitions" sluice-profiler.log
wait_for "the relay did not start" grep -q 'relay: started' sluice-relay.log
# The gateway's own consumer-lag clients (GetEventHealth, sluice_consumer_lag) over SASL_SSL:
# the gauge exists for the audit's group once a refresh after its commit succeeded.
lag_gauge() {
  local metrics
  metrics="$(curl -fsS "http://127.0.0.1:$GW_METRICS/metrics" 2>/dev/null)" || return 1
  grep -q "^sluice_consumer_lag{.*group=\"${PREFIX}audit\"" <<<"$metrics"
}
wait_for "the gateway never measured the audit group's lag" lag_gauge

# The gateway's EventQueryService over SASL_SSL: Subscribe and Replay open Kafka readers of
# their own (the gateway's settings and ACLs). A second event, published by the probe.
PROBE_ID="$(python3 -c 'import uuid; print(uuid.uuid4())')"
sed "s/$EVENT_ID/$PROBE_ID/" event.json >probe-event.json
timeout 90 "$SLUICE_EVENT_QUERY_PROBE" "127.0.0.1:$GW_PORT" "$SLUICE_STORY_ETL_TOKEN" probe-event.json \
  >event-query-probe.log 2>&1 || fail "gateway Subscribe/Replay over SASL_SSL: $(cat event-query-probe.log)"
for step in publish subscribe replay; do
  grep -q "^$step ok $PROBE_ID" event-query-probe.log || fail "event_query_probe: no '$step ok': $(cat event-query-probe.log)"
done

# sluicectl with the same settings scheme as the services.
CTL=("$SLUICECTL" --bootstrap "$SASL_BOOTSTRAP" --topic-prefix "$PREFIX")
timeout 60 "${CTL[@]}" --kafka-config sluicectl.properties topics list >sluicectl-topics.log 2>&1 \
  || fail "sluicectl topics list over SASL_SSL: $(cat sluicectl-topics.log)"
for t in "${ALL_TOPICS[@]}"; do
  grep -Eq "^$t +[0-9]+ partitions" sluicectl-topics.log || fail "sluicectl topics list: $t not listed"
done
SLUICE_KAFKA_CONFIG=sluicectl-nopass.properties SLUICE_KAFKA_SASL_PASSWORD="${PASSWORD[sluicectl]}" \
  timeout 60 "${CTL[@]}" tail --type data.refreshed --tenant acme --from-beginning --max 1 \
  >sluicectl-tail.log 2>&1 || fail "sluicectl tail over SASL_SSL: $(cat sluicectl-tail.log)"
grep -q "\"id\": *\"$EVENT_ID\"" sluicectl-tail.log || fail "sluicectl tail did not print $EVENT_ID"
timeout 60 "${CTL[@]}" --kafka-config sluicectl.properties replay --type data.refreshed --tenant acme \
  >sluicectl-replay.log 2>&1 || fail "sluicectl replay over SASL_SSL: $(cat sluicectl-replay.log)"
grep -q "$EVENT_ID" sluicectl-replay.log || fail "sluicectl replay did not return $EVENT_ID"
grep -q "$PROBE_ID" sluicectl-replay.log || fail "sluicectl replay did not return $PROBE_ID"

# The governance story over the secured broker, configured like the k8s/story Job: only
# SLUICE_KAFKA_* variables, as the user sluice-story. Its chain runs through every service.
SLUICE_KAFKA_SECURITY_PROTOCOL=SASL_SSL SLUICE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 \
  SLUICE_KAFKA_SASL_USERNAME=sluice-story SLUICE_KAFKA_SASL_PASSWORD="${PASSWORD[sluice-story]}" \
  SLUICE_KAFKA_SSL_CA_LOCATION="$WORK/ca.pem" SLUICE_KAFKA_BOOTSTRAP="$SASL_BOOTSTRAP" \
  timeout 150 "$SLUICECTL" --topic-prefix "$PREFIX" story --gateway "127.0.0.1:$GW_PORT" --rows 2000 --timeout 60 \
  >sluicectl-story.log 2>&1 || fail "sluicectl story over SASL_SSL: $(tail -n 20 sluicectl-story.log)"
STORY_TABLE="$(sed -n 's/^\[1\/6\] seeded \(demo\.[a-z0-9_]*\):.*/\1/p' sluicectl-story.log)"
grep -q '^\[6/6\] data.quality.degraded: ' sluicectl-story.log || fail "the story did not reach data.quality.degraded"
for type in approval.created metadata.approved approval.approved data.refreshed metadata.profile.completed \
  data.quality.degraded; do
  grep -q "^  $type " sluicectl-story.log || fail "the story's chain lacks $type"
done

alive
for name in sluice-gateway sluice-relay sluice-audit sluice-profiler sluicectl-topics sluicectl-tail sluicectl-replay \
  sluicectl-story; do
  # A refusal is what counts: our own "kafka authentication failed", the broker's "Authentication
  # failed" answer to SASL, a failed TLS handshake, or never reaching a broker. A reader that is
  # closed as soon as it is done (sluicectl replay, the gateway's Replay) can cut its group
  # coordinator connection short mid-login, which librdkafka logs as "SASL authentication
  # error: SaslAuthenticateRequest failed: Local: Broker transport failure": not a refusal.
  connection_errors='has not reached a broker|kafka authentication failed|SSL handshake failed|SASL authentication error: Authentication failed'
  if grep -Eq "$connection_errors" "$name.log"; then
    fail "$name logged a Kafka connection error: $(grep -E "$connection_errors" "$name.log" | head -n 5)"
  fi
  # Its ACLs cover all it does (a refused topic or group is logged by librdkafka, not fatal).
  if grep -Eiq 'authorization failed|AUTHORIZATION_FAILED|not authorized' "$name.log"; then
    fail "$name logged a Kafka authorization error: $(grep -Ei 'authorization failed|AUTHORIZATION_FAILED|not authorized' "$name.log" | head -n 5)"
  fi
done

# --- ACLs refuse what a principal was not granted: Kafka's own console clients as that
# principal (properties for the Java client), each must end naming the authorization error.
java_sasl() {  # java_sasl FILE USER
  cat >"$1" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$2" password="${PASSWORD[$2]}";
ssl.truststore.type=PEM
ssl.truststore.location=$WORK/ca.pem
EOF
}
java_sasl audit-java.properties sluice-audit
java_sasl gateway-java.properties sluice-gateway
java_sasl relay-java.properties sluice-relay
cat >profiler-java.properties <<EOF
security.protocol=SSL
ssl.truststore.type=PEM
ssl.truststore.location=$WORK/ca.pem
ssl.keystore.type=PEM
ssl.keystore.location=$WORK/client-keystore.pem
EOF
denied() {  # denied NAME EXCEPTION COMMAND...: COMMAND ends (within 60 s) refused with EXCEPTION
  # (the console consumer exits 0 after "terminating consumer process", hence no status check)
  local name="$1" want="$2" rc=0
  shift 2
  "$@" >"$WORK/$name.log" 2>&1 || rc=$?
  [[ $rc != 124 ]] || fail "$name: still running after 60s"
  grep -q "$want" "$name.log" || fail "$name: exit $rc without $want"
  if grep -q 'Processed a total of [1-9]' "$name.log"; then fail "$name: read a record"; fi
}
produce_as() {  # produce_as CONFIG BOOTSTRAP TOPIC: one record, synchronously, not idempotent (so
  # the refusal is the topic's Write, not the cluster's IdempotentWrite)
  echo "acl-probe" | timeout 60 "${KAFKA_TOOL[@]}" kafka.tools.ConsoleProducer --bootstrap-server "$2" --topic "$3" \
    --producer.config "$1" --producer-property enable.idempotence=false --producer-property max.block.ms=20000 \
    --request-required-acks all --message-send-max-retries 0 --sync
}
consume_as() {  # consume_as CONFIG BOOTSTRAP TOPIC: partition 0 from the start, no group
  timeout 60 "${KAFKA_TOOL[@]}" org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$2" --topic "$3" \
    --consumer.config "$1" --partition 0 --offset earliest --max-messages 1 --timeout-ms 20000 </dev/null
}
denied acl-audit-writes TopicAuthorizationException \
  produce_as audit-java.properties "$SASL_BOOTSTRAP" "${PREFIX}sluice.data"
denied acl-gateway-writes-approval TopicAuthorizationException \
  produce_as gateway-java.properties "$SASL_BOOTSTRAP" "${PREFIX}sluice.approval"
denied acl-profiler-reads-approval TopicAuthorizationException \
  consume_as profiler-java.properties "$MTLS_BOOTSTRAP" "${PREFIX}sluice.approval"
denied acl-relay-reads TopicAuthorizationException \
  consume_as relay-java.properties "$SASL_BOOTSTRAP" "${PREFIX}sluice.data"
alive

# --- credentials refused after start: the relay's and the gateway's passwords change on the
# broker, which then restarts, so every client logs in again. Those two must end on their own
# (non-zero, "kafka authentication failed"); the audit and the profiler, still welcome, stay.
for user in sluice-relay sluice-gateway; do
  kafka_java kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$P_INTERNAL" --alter --entity-type users \
    --entity-name "$user" --add-config "SCRAM-SHA-512=[password=rotated-$(secret)]" >>rotate.log 2>&1 \
    || fail "could not change the password of $user"
done
kill -TERM "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
mv broker.log broker-first.log
start_broker
exited() {  # exited NAME: the service's process ended
  local i
  for i in "${!PIDS[@]}"; do
    [[ "${NAMES[$i]}" == "$1" ]] && ! kill -0 "${PIDS[$i]}" 2>/dev/null && return 0
  done
  return 1
}
for _ in $(seq 1 450); do
  exited sluice-relay && exited sluice-gateway && break
  sleep 0.2
done
for i in "${!PIDS[@]}"; do
  case "${NAMES[$i]}" in
    sluice-relay | sluice-gateway)
      kill -0 "${PIDS[$i]}" 2>/dev/null && fail "${NAMES[$i]} still runs 90s after its password changed"
      rc=0
      wait "${PIDS[$i]}" || rc=$?
      [[ $rc != 0 ]] || fail "${NAMES[$i]} exited 0 after its password changed"
      grep -q 'kafka authentication failed' "${NAMES[$i]}.log" \
        || fail "${NAMES[$i]} exited $rc without 'kafka authentication failed'"
      ;;
    *)
      kill -0 "${PIDS[$i]}" 2>/dev/null || fail "${NAMES[$i]} exited after the broker restarted"
      kill -TERM "${PIDS[$i]}"
      rc=0
      wait "${PIDS[$i]}" || rc=$?
      [[ $rc == 0 ]] || fail "${NAMES[$i]} exited with status $rc on SIGTERM"
      ;;
  esac
done
PIDS=()
NAMES=()

# --- refused: each must exit on its own, non-zero, naming the authentication failure.
refused() {  # refused NAME COMMAND...
  local name="$1" rc=0
  shift
  timeout 90 "$@" >"$WORK/$name.log" 2>&1 || rc=$?
  [[ $rc != 0 ]] || fail "$name: exited 0"
  [[ $rc != 124 ]] || fail "$name: still running after 90s (retrying instead of failing)"
  grep -q 'kafka authentication failed' "$name.log" || fail "$name: exit $rc without 'kafka authentication failed'"
}
WRONG="wrong-$(secret)"
SLUICE_KAFKA_SASL_PASSWORD="$WRONG" refused relay-wrong-password "$SLUICE_RELAY_BIN" --bootstrap "$SASL_BOOTSTRAP" \
  --kafka-config relay.properties --pg-schema "$SCHEMA" --topic-prefix "$PREFIX" --metrics-listen ""
SLUICE_KAFKA_SASL_PASSWORD="$WRONG" refused audit-wrong-password "$SLUICE_AUDIT_BIN" --bootstrap "$SASL_BOOTSTRAP" \
  --kafka-config audit.properties --pg-schema "$SCHEMA" --topic-prefix "$PREFIX" --group "${PREFIX}audit" \
  --metrics-listen ""
SLUICE_KAFKA_SASL_PASSWORD="$WRONG" refused gateway-wrong-password "$SLUICE_GATEWAY_BIN" \
  --bootstrap "$SASL_BOOTSTRAP" --kafka-config gateway.properties --listen 127.0.0.1:0 \
  --tokens "$WORK/tokens/tokens.textproto" --topic-prefix "$PREFIX" --metrics-listen ""
grep -q 'SASL authentication error' relay-wrong-password.log || fail "relay: no SASL error in the log"
# sluicectl: one line saying so, not a timeout after librdkafka's endless retries.
SLUICE_KAFKA_SASL_PASSWORD="$WRONG" refused sluicectl-topics-wrong-password "$SLUICECTL" \
  --bootstrap "$SASL_BOOTSTRAP" --kafka-config sluicectl.properties --topic-prefix "$PREFIX" topics list
SLUICE_KAFKA_CONFIG=sluicectl-nopass.properties SLUICE_KAFKA_SASL_PASSWORD="$WRONG" \
  refused sluicectl-tail-wrong-password "$SLUICECTL" --bootstrap "$SASL_BOOTSTRAP" --topic-prefix "$PREFIX" \
  tail --type data.refreshed --from-beginning --max 1
for name in sluicectl-topics-wrong-password sluicectl-tail-wrong-password; do
  grep -q '^sluicectl: kafka authentication failed (.*SASL authentication error' "$name.log" \
    || fail "$name: no 'sluicectl: kafka authentication failed ... SASL authentication error' line"
done
# Mutual TLS without a client certificate: the broker refuses the handshake.
SLUICE_KAFKA_SECURITY_PROTOCOL=SSL SLUICE_KAFKA_SSL_CA_LOCATION="$WORK/ca.pem" \
  refused relay-no-client-certificate "$SLUICE_RELAY_BIN" --bootstrap "$MTLS_BOOTSTRAP" --pg-schema "$SCHEMA" \
  --topic-prefix "$PREFIX" --metrics-listen ""

# A malformed line is refused before anything connects, naming file and line (not its text).
printf 'security.protocol=SASL_SSL\n# a comment\nsasl.password %s\n' "$WRONG" >malformed.properties
rc=0
"$SLUICE_RELAY_BIN" --bootstrap "$SASL_BOOTSTRAP" --kafka-config malformed.properties --metrics-listen "" \
  >malformed.log 2>&1 || rc=$?
[[ $rc != 0 ]] || fail "a malformed --kafka-config was accepted"
grep -q "malformed.properties:3: " malformed.log || fail "the malformed line was not named: $(cat malformed.log)"

# No log shows a password, right or wrong.
for f in "$WORK"/*.log; do
  for p in "${PASSWORD[@]}" "$WRONG"; do
    if grep -qF -- "$p" "$f"; then fail "$(basename "$f") shows a password"; fi
  done
done
echo "kafka_secure_test: ok (SASL_SSL SCRAM-SHA-512: gateway publish, audit stored, relay connected; mutual TLS:" \
  "profiler joined; gateway Subscribe and Replay; sluicectl topics list, tail, replay; ACLs refused audit and gateway writes, profiler and relay reads; passwords changed while running (relay, gateway), wrong password at start (relay, audit," \
  "gateway, sluicectl topics list and tail) and no client certificate (relay) exit non-zero)"
