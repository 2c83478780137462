#!/usr/bin/env bash
# PostgreSQL over verified TLS for every service. Starts a throwaway PostgreSQL 15 of its
# own (never the dev one on 15432) with ssl=on, a server certificate for 127.0.0.1 and
# localhost and a client CA, both from a CA made here with openssl, and a pg_hba that only
# has `hostssl ... cert` for 127.0.0.1: no plain connection, no connection without a
# client certificate. Then, with
#   DSN="host=127.0.0.1 port=P dbname=sluice_tls user=postgres sslmode=verify-full
#        sslrootcert=ca.pem sslcert=client.crt sslkey=client.key"
#   - sluicectl migrate and sluice-scheduler --dry-run exit 0, and so does migrate with the
#     same settings as a postgresql:// URI;
#   - sluice-relay, sluice-audit, sluice-profiler (--pg-dsn and --source-dsn) and
#     sluice-gateway (its pool, opened by the event-health refresh at start) each show up
#     in the server's pg_stat_ssl over TLS with the client certificate, are still running,
#     log no PostgreSQL error and exit 0 on SIGTERM;
#   - sslrootcert naming another CA makes migrate and the scheduler fail with libpq's
#     "certificate verify failed"; sslmode=disable and a DSN without the client
#     certificate are refused by the server;
#   - with the TLS settings in libpq's environment (PGSSLMODE=verify-full, PGSSLROOTCERT,
#     PGSSLCERT, PGSSLKEY) and a DSN without them, migrate and the scheduler connect, while
#     PGSSLROOTCERT naming another CA or a host name the certificate lacks is refused.
# Binaries come from the environment (set by ctest): SLUICECTL, SLUICE_GATEWAY_BIN,
# SLUICE_RELAY_BIN, SLUICE_AUDIT_BIN, SLUICE_PROFILER_BIN, SLUICE_SCHEDULER_BIN.
# Needs the dev Kafka (dev/stack.sh up) and PostgreSQL 15's server binaries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=dev/env.sh
source "$ROOT/dev/env.sh"
PG_BIN="${SLUICE_PG_BIN:-/usr/lib/postgresql/15/bin}"
for v in SLUICECTL SLUICE_GATEWAY_BIN SLUICE_RELAY_BIN SLUICE_AUDIT_BIN SLUICE_PROFILER_BIN SLUICE_SCHEDULER_BIN; do
  [[ -x "${!v:-}" ]] || { echo "pg_tls_test: $v must name a built binary" >&2; exit 1; }
done

# PostgreSQL refuses to run as root: as root the server runs as the postgres OS user, like
# dev/postgres.sh does.
if [[ $EUID -eq 0 ]]; then AS=(runuser -u postgres --); else AS=(); fi
as_server() { (cd / && "${AS[@]}" "$@"); }

ID="$RANDOM$RANDOM"
PREFIX="it-pgtls-$ID."
WORK="$(mktemp -d)"
PGDIR="$WORK/pg"  # data, socket, server key: owned by the server user
PIDS=()
TOPICS=0
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -f "$PGDIR/data/postmaster.pid" ]]; then
    as_server "$PG_BIN/pg_ctl" stop -D "$PGDIR/data" -m immediate -w -t 20 -s >/dev/null 2>&1 || true
  fi
  if [[ $TOPICS == 1 ]]; then "$SLUICECTL" --topic-prefix "$PREFIX" topics delete --yes >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  echo "pg_tls_test: FAIL: $*" >&2
  for f in "$WORK"/*.log "$PGDIR/server.log"; do
    [[ -f "$f" ]] && { echo "== $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

# --- certificates: a CA, the server's (127.0.0.1 and localhost), a client's (CN = user),
# and an unrelated CA with the same subject layout.
cd "$WORK"
source "$ROOT/tests/lib/test_ca.sh"  # ca, leaf
ca ca "sluice test CA"
ca other "sluice other CA"
leaf server 127.0.0.1 "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
leaf client postgres "extendedKeyUsage=clientAuth"

# --- the throwaway server
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
chmod 711 "$WORK"
mkdir -p "$PGDIR"
cp server.crt server.key ca.pem "$PGDIR/"
[[ $EUID -eq 0 ]] && chown -R postgres:postgres "$PGDIR"
chmod 700 "$PGDIR"
as_server "$PG_BIN/initdb" -D "$PGDIR/data" -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8 \
  >"$WORK/initdb.log" 2>&1 || fail "initdb failed"
as_server tee -a "$PGDIR/data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PGDIR'
max_connections = 50
fsync = off
ssl = on
ssl_cert_file = '$PGDIR/server.crt'
ssl_key_file = '$PGDIR/server.key'
ssl_ca_file = '$PGDIR/ca.pem'
EOF
# TCP only with TLS and a client certificate of the CA; the Unix socket (this script's
# admin queries) stays trusted.
as_server tee "$PGDIR/data/pg_hba.conf" >/dev/null <<EOF
local   all  all                trust
hostssl all  all  127.0.0.1/32  cert
EOF
as_server "$PG_BIN/pg_ctl" start -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 -s </dev/null >/dev/null 2>&1 \
  || fail "the throwaway PostgreSQL did not start"
admin() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGDIR" -p "$PORT" -U postgres -At "$@"; }
admin -d postgres -c "CREATE DATABASE sluice_tls" >/dev/null || fail "create database"

DSN="host=127.0.0.1 port=$PORT dbname=sluice_tls user=postgres sslmode=verify-full sslrootcert=$WORK/ca.pem"
DSN+=" sslcert=$WORK/client.crt sslkey=$WORK/client.key"
URI="postgresql://postgres@127.0.0.1:$PORT/sluice_tls?sslmode=verify-full&sslrootcert=$WORK/ca.pem"
URI+="&sslcert=$WORK/client.crt&sslkey=$WORK/client.key"
OUT="$WORK/out.txt"

# --- one-shot commands
"$SLUICECTL" migrate --pg-dsn "$DSN" >"$OUT" 2>&1 || { cat "$OUT" >&2; fail "sluicectl migrate over verify-full"; }
grep -q ' applied, 0 already in place$' "$OUT" || { cat "$OUT" >&2; fail "migrate did not apply the migrations"; }
"$SLUICECTL" migrate --pg-dsn "$URI" >"$OUT" 2>&1 || { cat "$OUT" >&2; fail "sluicectl migrate with a postgresql:// URI"; }
grep -q '^0 applied, [1-9][0-9]* already in place$' "$OUT" || { cat "$OUT" >&2; fail "migrate (URI) saw another database"; }
"$SLUICE_SCHEDULER_BIN" --pg-dsn "$DSN" --dry-run >"$OUT" 2>&1 || { cat "$OUT" >&2; fail "sluice-scheduler --dry-run"; }
grep -q '(dry run: nothing emitted)' "$OUT" || { cat "$OUT" >&2; fail "scheduler printed no dry-run summary"; }

# A server certificate from another CA is refused by the client, whatever the server allows.
BAD_CA="${DSN/sslrootcert=$WORK\/ca.pem/sslrootcert=$WORK/other.pem}"
[[ "$BAD_CA" != "$DSN" ]] || fail "could not swap the CA in the DSN"
refused() {  # refused WHAT PATTERN COMMAND...: COMMAND exits non-zero and says PATTERN
  local what="$1" pattern="$2"
  shift 2
  if "$@" >"$OUT" 2>&1; then cat "$OUT" >&2; fail "$what: succeeded"; fi
  grep -q "$pattern" "$OUT" || { cat "$OUT" >&2; fail "$what: failed without '$pattern'"; }
}
refused "migrate trusting another CA" "certificate verify failed" "$SLUICECTL" migrate --pg-dsn "$BAD_CA"
refused "scheduler trusting another CA" "certificate verify failed" "$SLUICE_SCHEDULER_BIN" --pg-dsn "$BAD_CA" --dry-run
# The server refuses what pg_hba does not allow: no TLS, or TLS without a client certificate.
refused "migrate with sslmode=disable" 'no pg_hba.conf entry .*no encryption' \
  "$SLUICECTL" migrate --pg-dsn "host=127.0.0.1 port=$PORT dbname=sluice_tls user=postgres sslmode=disable"
refused "migrate without a client certificate" 'certificate' \
  "$SLUICECTL" migrate --pg-dsn "${DSN%% sslcert=*}"

# The same settings from libpq's environment instead of the DSN, as the prod overlay gives
# them (k8s/overlays/prod/patches/pg-tls.yaml: PGSSLMODE, PGSSLROOTCERT beside a `uri`
# without sslmode). libpq reads them for what the DSN leaves unset, so nothing of ours may
# clear or override them.
PLAIN_DSN="host=127.0.0.1 port=$PORT dbname=sluice_tls user=postgres"
PGENV=(env PGSSLMODE=verify-full "PGSSLROOTCERT=$WORK/ca.pem" "PGSSLCERT=$WORK/client.crt" "PGSSLKEY=$WORK/client.key")
"${PGENV[@]}" "$SLUICECTL" migrate --pg-dsn "$PLAIN_DSN" >"$OUT" 2>&1 || { cat "$OUT" >&2; fail "migrate with PGSSL* variables"; }
grep -q '^0 applied, [1-9][0-9]* already in place$' "$OUT" || { cat "$OUT" >&2; fail "migrate (PGSSL* variables) saw another database"; }
"${PGENV[@]}" "$SLUICE_SCHEDULER_BIN" --pg-dsn "$PLAIN_DSN" --dry-run >"$OUT" 2>&1 || { cat "$OUT" >&2; fail "scheduler with PGSSL* variables"; }
# PGSSLROOTCERT is the CA used, and PGSSLMODE=verify-full checks the host name (a root
# certificate alone would give verify-ca, which accepts any name).
refused "migrate with PGSSLROOTCERT naming another CA" "certificate verify failed" \
  "${PGENV[@]}" "PGSSLROOTCERT=$WORK/other.pem" "$SLUICECTL" migrate --pg-dsn "$PLAIN_DSN"
refused "migrate with PGSSLMODE=verify-full and another host name" "does not match host name" \
  "${PGENV[@]}" "$SLUICECTL" migrate --pg-dsn "host=db.invalid hostaddr=127.0.0.1 port=$PORT dbname=sluice_tls user=postgres"

# --- long-running services; application_name tells their connections apart on the server.
"$SLUICECTL" --topic-prefix "$PREFIX" topics ensure >"$OUT" 2>&1 || { cat "$OUT" >&2; fail "topics ensure"; }
TOPICS=1
bash "$ROOT/dev/story-tokens.sh" "$WORK/tokens" >/dev/null
NAMES=(sluice-relay sluice-audit sluice-profiler sluice-gateway)
"$SLUICE_RELAY_BIN" --pg-dsn "$DSN application_name=tls-relay" --topic-prefix "$PREFIX" --metrics-listen "" \
  >"$WORK/sluice-relay.log" 2>&1 &
PIDS+=($!)
"$SLUICE_AUDIT_BIN" --pg-dsn "$DSN application_name=tls-audit" --topic-prefix "$PREFIX" --group "${PREFIX}audit" \
  --metrics-listen "" >"$WORK/sluice-audit.log" 2>&1 &
PIDS+=($!)
"$SLUICE_PROFILER_BIN" --pg-dsn "$DSN application_name=tls-profiler" \
  --source-dsn "$DSN application_name=tls-profiler-source" --topic-prefix "$PREFIX" --group "${PREFIX}profiler" \
  --metrics-listen "" >"$WORK/sluice-profiler.log" 2>&1 &
PIDS+=($!)
"$SLUICE_GATEWAY_BIN" --pg-dsn "$DSN application_name=tls-gateway" --listen 127.0.0.1:0 \
  --tokens "$WORK/tokens/tokens.textproto" --topic-prefix "$PREFIX" --metrics-listen "" \
  >"$WORK/sluice-gateway.log" 2>&1 &
PIDS+=($!)

# Each connection the services hold, as the server sees it: over TLS, with the client
# certificate. The gateway opens its pool lazily; its event-health refresh, which runs
# right after start, takes the first connection.
tls_clients() {
  admin -d postgres -c "SELECT string_agg(DISTINCT a.application_name, ' ' ORDER BY a.application_name)
    FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
    WHERE a.application_name LIKE 'tls-%' AND s.ssl AND s.client_dn = '/CN=postgres'"
}
WANT="tls-audit tls-gateway tls-profiler tls-profiler-source tls-relay"
SEEN=""
for _ in $(seq 1 150); do
  SEEN="$(tls_clients)"
  [[ "$SEEN" == "$WANT" ]] && break
  for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[$i]}" 2>/dev/null || fail "${NAMES[$i]} exited (connected over TLS so far: '$SEEN')"
  done
  sleep 0.2
done
[[ "$SEEN" == "$WANT" ]] || fail "over TLS with the client certificate: '$SEEN', want '$WANT'"
# Nothing went over TCP without TLS.
PLAIN="$(admin -d postgres -c "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
  WHERE a.client_addr IS NOT NULL AND NOT s.ssl")"
[[ "$PLAIN" == 0 ]] || fail "$PLAIN TCP connections without TLS"

# A few seconds on, every service still runs and still holds its TLS connections (the
# consumers have joined their groups and polled by then).
sleep 3
for i in "${!PIDS[@]}"; do
  kill -0 "${PIDS[$i]}" 2>/dev/null || fail "${NAMES[$i]} is no longer running"
done
SEEN="$(tls_clients)"
[[ "$SEEN" == "$WANT" ]] || fail "after a few seconds, over TLS: '$SEEN', want '$WANT'"
for i in "${!PIDS[@]}"; do kill -TERM "${PIDS[$i]}"; done
for i in "${!PIDS[@]}"; do
  rc=0
  wait "${PIDS[$i]}" || rc=$?
  [[ $rc == 0 ]] || fail "${NAMES[$i]} exited with status $rc on SIGTERM"
done
PIDS=()
for n in "${NAMES[@]}"; do
  if grep -Eiq 'postgres connect|SSL error|certificate|pg_hba' "$WORK/$n.log"; then
    fail "$n logged a PostgreSQL connection error"
  fi
done
echo "pg_tls_test: ok (port $PORT: migrate, scheduler and 4 services over verify-full with a client certificate;" \
  "another CA, sslmode=disable and no client certificate refused)"
