#!/usr/bin/env python3
"""Chaos run of Sluice: a three-broker Kafka of its own, the real services, events published
through the gateway while processes (and one broker) are SIGKILLed, then the invariants.

Run through tests/chaos/run.sh, which picks the Python with grpcio (the clients venv), puts a
hard deadline on the run and cleans up whatever this program leaves behind. See README.md.
"""
import argparse
import collections
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python", "gen"))

import grpc  # noqa: E402
from google.protobuf import timestamp_pb2, json_format  # noqa: E402
from sluice.v1 import (approval_service_pb2, approval_service_pb2_grpc, common_pb2,  # noqa: E402
                       envelope_pb2, gateway_pb2, gateway_pb2_grpc)

LIBS = os.path.join(ROOT, ".cache", "kafka", "libs")
# Set from --bin-dir in main(): run.sh copies the binaries there, so a rebuild in the
# shared build dir during the run cannot pull one out from under a restart.
SLUICECTL = ""
BINS = {}
TENANTS = ["tenant-a", "tenant-b", "tenant-c"]
TENANT_WEIGHTS = [5, 3, 2]
T0 = time.monotonic()


def log(msg):
    print(f"[chaos {time.monotonic() - T0:7.1f}s] {msg}", flush=True)


def uuid7():
    b = bytearray((time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10))
    b[6] = 0x70 | (b[6] & 0x0F)
    b[8] = 0x80 | (b[8] & 0x3F)
    return str(uuid.UUID(bytes=bytes(b)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, timeout=120, check=True, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... exited {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p


class Pg:
    def __init__(self, dsn):
        self.dsn = dsn

    def q(self, sql, timeout=120):
        return run(["psql", self.dsn, "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql], timeout=timeout).stdout

    def rows(self, sql):
        return [line.split("|") for line in self.q(sql).splitlines() if line]

    def one(self, sql):
        return self.q(sql).strip()


class Proc:
    """One child process that the chaos thread may SIGKILL and restart. Its pid is kept in
    WORK/pids/<name> so run.sh's EXIT trap can reap it even if this program is killed."""

    def __init__(self, name, argv, work, env=None):
        self.name, self.argv, self.work, self.env = name, argv, work, env
        self.proc = None
        self.kills = 0
        self.unexpected = []  # exit codes of exits nobody asked for
        self.lock = threading.Lock()

    def start(self):
        with self.lock:
            logf = open(os.path.join(self.work, "logs", f"{self.name}.log"), "ab")
            logf.write(f"\n==== start {time.strftime('%H:%M:%S')}\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=self.env)
            logf.close()
            with open(os.path.join(self.work, "pids", self.name), "w") as f:
                f.write(str(self.proc.pid))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check(self):
        """Notes an exit we did not cause; returns True if the process is gone."""
        with self.lock:
            if self.proc is not None and self.proc.poll() is not None:
                self.unexpected.append(self.proc.returncode)
                self.proc = None
                return True
        return False

    def kill(self):
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
                self.kills += 1
            self.proc = None

    def stop(self, grace=20):
        with self.lock:
            if self.proc is None:
                return None
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    self.proc.send_signal(signal.SIGKILL)
                    self.proc.wait()
            rc, self.proc = self.proc.returncode, None
            try:
                os.unlink(os.path.join(self.work, "pids", self.name))
            except FileNotFoundError:
                pass
            return rc


# ---------------------------------------------------------------- Kafka (three KRaft nodes)

class Kafka:
    def __init__(self, work, port_base, heap):
        self.work = work
        self.ports = [port_base + i for i in range(3)]
        self.cports = [port_base + 10 + i for i in range(3)]
        self.bootstrap = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        self.heap = heap
        self.nodes = []
        self.tools_log4j = os.path.join(work, "kafka", "tools-log4j.properties")

    def tool(self, *args, timeout=120, check=True):
        return run(["java", "-Xmx256m", f"-Dlog4j.configuration=file:{self.tools_log4j}", "-cp", f"{LIBS}/*",
                    *args], timeout=timeout, check=check)

    def setup(self):
        for p in self.ports + self.cports:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", p)) == 0:
                    raise RuntimeError(f"port {p} is in use (choose another --port-base)")
        base = os.path.join(self.work, "kafka")
        os.makedirs(base, exist_ok=True)
        with open(self.tools_log4j, "w") as f:
            f.write("log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
                    "log4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"
                    "log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n\n")
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, c in enumerate(self.cports))
        cluster_id = self.tool("kafka.tools.StorageTool", "random-uuid").stdout.strip()
        for i in range(3):
            d = os.path.join(base, f"node{i + 1}")
            os.makedirs(os.path.join(d, "data"), exist_ok=True)
            props, log4j = os.path.join(d, "server.properties"), os.path.join(d, "log4j.properties")
            with open(props, "w") as f:
                f.write(f"""process.roles=broker,controller
node.id={i + 1}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{self.ports[i]},CONTROLLER://127.0.0.1:{self.cports[i]}
advertised.listeners=PLAINTEXT://127.0.0.1:{self.ports[i]}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={d}/data
num.partitions=12
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
""")
            with open(log4j, "w") as f:
                f.write(f"""log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={d}/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=1
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
""")
            self.tool("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", props, "--ignore-formatted")
            argv = ["java", f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                    f"-Dlog4j.configuration=file:{log4j}", f"-Dkafka.logs.dir={d}", "-cp", f"{LIBS}/*",
                    "kafka.Kafka", props]
            self.nodes.append(Proc(f"kafka{i + 1}", argv, self.work))
        for n in self.nodes:
            n.start()
        self.wait_ready(list(range(3)), 180)

    def wait_ready(self, idx, timeout):
        deadline = time.monotonic() + timeout
        want = {f"127.0.0.1:{self.ports[i]} " for i in idx}
        while True:
            for i in idx:
                if self.nodes[i].check():
                    raise RuntimeError(f"kafka{i + 1} exited during startup (see logs/kafka{i + 1}.log)")
            p = self.tool("kafka.admin.BrokerApiVersionsCommand", "--bootstrap-server", self.bootstrap,
                          timeout=60, check=False)
            got = {w for w in want if any(line.startswith(w) for line in p.stdout.splitlines())}
            if got == want:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"brokers {sorted(want - got)} not answering after {timeout}s")
            time.sleep(1)

    def end_offsets(self, prefix):
        p = self.tool("org.apache.kafka.tools.GetOffsetShell", "--bootstrap-server", self.bootstrap,
                      "--topic", f"{prefix}.*", "--time", "-1", timeout=120)
        out = {}
        for line in p.stdout.splitlines():
            topic, part, off = line.rsplit(":", 2)
            out[(topic, int(part))] = int(off)
        return out

    def committed(self, group):
        p = self.tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server",
                      self.bootstrap, "--describe", "--group", group, timeout=120)
        out = {}
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) >= 5 and f[0] == group and f[2].isdigit():
                out[(f[1], int(f[2]))] = None if f[3] == "-" else int(f[3])
        return out


# ---------------------------------------------------------------- events

class Ledger:
    """What the gateway acknowledged, keyed by (tenant, id)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}
        self.errors = collections.Counter()  # per-event error codes (retried)
        self.stream_failures = 0
        self.permanent = []  # events refused for good (a bug in this program or the gateway)
        self.retried = 0

    def ack(self, tenant, d):
        with self.lock:
            self.acked[(tenant, d.event_id)] = (d.topic, d.partition, d.offset)

    def count(self):
        with self.lock:
            return len(self.acked)


def ts_now():
    t = timestamp_pb2.Timestamp()
    t.GetCurrentTime()
    return t


def make_event(kind, tenant, templates, n, refresh=None):
    e = envelope_pb2.Envelope()
    e.CopyFrom(templates[kind])
    e.id = uuid7()
    e.tenant_id = tenant
    e.occurred_at.CopyFrom(ts_now())
    e.ClearField("ttl_ms")
    e.correlation_id = e.id
    e.ClearField("traceparent")
    if kind == "data.refreshed":
        e.source = "etl.pipeline"
        r = e.data_refreshed
        schema, table = refresh if refresh else ("chaos_nowhere", f"t{n % 50}")
        r.entity_urn = f"urn:sluice:chaos:{table}"
        r.service.schema, r.service.table = schema, table
        r.rows_affected = 100000 if refresh else 10 + n % 1000
        r.completed_at.CopyFrom(ts_now())
    else:
        e.source = "metadata-studio.api"
    return e


class Publisher:
    """Feeds events at a target rate into a shared queue; worker threads drain it with
    PublishStream, recording acks and re-queueing (same id) whatever was not acknowledged."""

    def __init__(self, target, token, ledger, total, rate, workers, templates, stop):
        self.target, self.token, self.ledger = target, token, ledger
        self.total, self.rate, self.workers = total, rate, workers
        self.templates, self.stop = templates, stop
        self.queue = collections.deque()
        self.cv = threading.Condition()
        self.generated = 0
        self.in_flight = 0
        self.feeders = 2  # the generator and the approvals thread, which adds bound-table refreshes

    def submit(self, envelopes, front=False):
        with self.cv:
            if front:
                self.queue.extendleft(reversed(envelopes))
            else:
                self.queue.extend(envelopes)
            self.cv.notify_all()

    def generator(self):
        kinds = ["metadata.changed"] * 4 + ["kpi.changed"] * 4 + ["data.refreshed"] * 2
        rng = random.Random(7)
        start = time.monotonic()
        while self.generated < self.total and not self.stop.is_set():
            due = min(self.total, int((time.monotonic() - start) * self.rate) + 1)
            batch = []
            while self.generated < due:
                tenant = rng.choices(TENANTS, TENANT_WEIGHTS)[0]
                batch.append(make_event(kinds[self.generated % len(kinds)], tenant, self.templates, self.generated))
                self.generated += 1
            if batch:
                self.submit(batch)
            time.sleep(0.05)
        self.feeder_done()

    def take(self, n):
        with self.cv:
            while not self.queue and not self.stop.is_set():
                if self.feeders == 0 and self.outstanding() == 0:
                    return None
                self.cv.wait(0.2)
            if self.stop.is_set():
                return None
            out = []
            while self.queue and len(out) < n:
                out.append(self.queue.popleft())
            self.in_flight += len(out)
            return out

    def feeder_done(self):
        with self.cv:
            self.feeders -= 1
            self.cv.notify_all()

    def outstanding(self):
        return len(self.queue) + self.in_flight

    def finish(self, n):
        with self.cv:
            self.in_flight -= n
            self.cv.notify_all()

    def worker(self):
        md = [("authorization", f"Bearer {self.token}")]
        channel = grpc.insecure_channel(self.target)
        stub = gateway_pb2_grpc.EventGatewayStub(channel)
        while True:
            chunk = self.take(200)
            if chunk is None:
                break
            pending = {i + 1: e for i, e in enumerate(chunk)}
            retry = []
            try:
                reqs = (gateway_pb2.PublishStreamRequest(sequence=s, envelope=e) for s, e in list(pending.items()))
                for r in stub.PublishStream(reqs, metadata=md, timeout=60):
                    e = pending.pop(r.sequence, None)
                    if e is None:
                        continue
                    if r.HasField("ack"):
                        self.ledger.ack(e.tenant_id, r.ack)
                    else:
                        code = next((c for c in grpc.StatusCode if c.value[0] == r.error.code), grpc.StatusCode.UNKNOWN)
                        with self.ledger.lock:
                            self.ledger.errors[code.name] += 1
                        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED):
                            with self.ledger.lock:
                                self.ledger.permanent.append((e.id, code.name, r.error.message))
                        else:
                            retry.append(e)
            except grpc.RpcError as err:
                with self.ledger.lock:
                    self.ledger.stream_failures += 1
                    self.ledger.errors[f"stream:{err.code().name}"] += 1
            retry.extend(pending.values())  # unanswered: may or may not be stored; resend the same id
            if retry:
                with self.ledger.lock:
                    self.ledger.retried += len(retry)
                self.submit(retry, front=True)
            self.finish(len(chunk))
            if retry:
                time.sleep(0.3)
        channel.close()


class Approvals:
    """Creates and approves metadata entries through ApprovalService (outbox + relay path).
    A few are tier1 entries bound to seeded tables, which the profiler profiles."""

    def __init__(self, target, requester, steward, count, bound_tables, data_schema, stop, ledger, publisher):
        self.target, self.requester, self.steward = target, requester, steward
        self.count, self.bound, self.data_schema = count, bound_tables, data_schema
        self.stop, self.ledger, self.publisher = stop, ledger, publisher
        self.approved = []  # (tenant, approval id)
        self.created = 0
        self.errors = collections.Counter()
        self.refreshes_sent = 0

    def call(self, fn, req, token, what):
        md = [("authorization", f"Bearer {token}")]
        while not self.stop.is_set():
            try:
                return fn(req, metadata=md, timeout=15)
            except grpc.RpcError as e:
                self.errors[f"{what}:{e.code().name}"] += 1
                if e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED):
                    raise
                if what == "approve" and e.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    return None  # decided already: an earlier attempt's answer was lost
                time.sleep(0.5)
        return None

    def run(self, duration_s):
        try:
            self._run(duration_s)
        except Exception as e:  # noqa: BLE001 - counted; verify() fails on it
            self.errors[f"fatal:{type(e).__name__}: {e}"] += 1
        finally:
            self.publisher.feeder_done()

    def _run(self, duration_s):
        channel = grpc.insecure_channel(self.target)
        stub = approval_service_pb2_grpc.ApprovalServiceStub(channel)
        interval = duration_s / max(1, self.count)
        rng = random.Random(11)
        for i in range(self.count):
            if self.stop.is_set():
                break
            bound = i < len(self.bound)
            tenant = "tenant-a" if bound else rng.choice(TENANTS)
            key = f"chaos_entry_{i}"
            payload = {"label": f"Chaos entry {i}", "tier": "tier1" if bound else "tier3", "domain": "chaos",
                       "entityUrn": f"urn:sluice:chaos:{self.bound[i] if bound else key}"}
            if bound:
                payload["binding"] = {"schema": self.data_schema, "table": self.bound[i]}
                payload["columnRules"] = [{"column": "id", "unique": True}, {"column": "amount", "min": 0, "max": 1000}]
            req = approval_service_pb2.CreateApprovalRequest(
                tenant_id=tenant, entity_type=common_pb2.ENTITY_TYPE_METADATA, entity_key=key,
                tier=common_pb2.TIER_1 if bound else common_pb2.TIER_3, lane=common_pb2.LANE_GOVERNED)
            json_format.ParseDict(payload, req.payload)
            created = self.call(stub.CreateApproval, req, self.requester, "create")
            if created is None:
                break
            self.created += 1
            aid = created.approval.id
            self.call(stub.Approve, approval_service_pb2.ApproveRequest(tenant_id=tenant, id=aid), self.steward,
                      "approve")
            got = self.call(stub.GetApproval, approval_service_pb2.GetApprovalRequest(tenant_id=tenant, id=aid),
                            self.requester, "get")
            if got is not None and got.approval.status == common_pb2.APPROVAL_STATUS_APPROVED:
                self.approved.append((tenant, aid))
            else:
                self.errors["not_approved"] += 1
            # Now and then a big refresh of a bound table: the profiler profiles it again.
            if self.bound and i % 5 == 4:
                table = self.bound[(i // 5) % len(self.bound)]
                self.publisher.submit([make_event("data.refreshed", "tenant-a", self.publisher.templates, i,
                                                  refresh=(self.data_schema, table))])
                self.refreshes_sent += 1
            self.stop.wait(interval)
        channel.close()


# ---------------------------------------------------------------- the run

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--work", required=True, help="data dir (run.sh: .run/chaos/<id>)")
    ap.add_argument("--port-base", type=int, default=29092)
    ap.add_argument("--publish-s", type=float, default=0, help="spread publishing over this long (0: auto)")
    ap.add_argument("--drain-s", type=float, default=240, help="longest wait for the pipeline to settle")
    ap.add_argument("--quiet-s", type=float, default=15, help="settled when event_log stops growing this long")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--kafka-heap", default="512m")
    ap.add_argument("--tamper", action="store_true",
                    help="delete one acknowledged event from event_log before the checks: they must fail")
    ap.add_argument("--bin-dir", default="", help="sluicectl and the services (default: WORK/bin, else build/)")
    args = ap.parse_args()
    global SLUICECTL
    bin_dir = args.bin_dir or os.path.join(os.path.abspath(args.work), "bin")
    def find(name, *build_path):
        p = os.path.join(bin_dir, name)
        return p if os.path.exists(p) else os.path.join(ROOT, "build", *build_path, name)
    SLUICECTL = find("sluicectl", "cli")
    BINS.update(gateway=find("sluice-gateway", "gateway"), relay=find("sluice-relay", "producers", "relay"),
                audit=find("sluice-audit", "consumers", "audit"),
                profiler=find("sluice-profiler", "consumers", "profiler"))
    rng = random.Random(args.seed)
    work = os.path.abspath(args.work)
    for d in ("logs", "pids"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    run_id = os.path.basename(work).replace("-", "_")
    prefix = f"chaos-{run_id}."
    schema, data_schema = f"chaos_{run_id}", f"chaos_{run_id}_data"
    with open(os.path.join(work, "schemas"), "w") as f:
        f.write(f"{schema}\n{data_schema}\n")
    dsn = os.environ.get("SLUICE_PG_DSN", "host=127.0.0.1 port=15432 dbname=sluice user=postgres")
    pg = Pg(dsn)
    sdsn = f"{dsn} options='-c search_path={schema}'"
    publish_s = args.publish_s or max(45.0, args.events / 1500.0)
    log(f"seed {args.seed}, {args.events} events over ~{publish_s:.0f}s, prefix {prefix}, schema {schema}")

    kafka = Kafka(work, args.port_base, args.kafka_heap)
    procs = {}
    stop = threading.Event()
    def on_term(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup below must run to its end
        raise SystemExit("SIGTERM (deadline reached)")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    failures = []
    try:
        kafka.setup()
        log(f"kafka up: {kafka.bootstrap}")
        run([SLUICECTL, "--bootstrap", kafka.bootstrap, "--topic-prefix", prefix, "topics", "ensure",
             "--replication-factor", "3"])
        desc = kafka.tool("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", kafka.bootstrap, "--describe",
                          "--topics-with-overrides").stdout
        rf = {f[0].split()[1]: f[3].split()[1] for f in (l.split("\t") for l in desc.splitlines()
                                                           if l.startswith("Topic:")) if len(f) > 3}
        log(f"topics (replication factor): {rf}; brokers default min.insync.replicas=2")
        if len(rf) < 5 or set(rf.values()) != {"3"}:
            raise RuntimeError(f"want five topics with replication factor 3, got {rf}")
        pg.q(f"CREATE SCHEMA {schema}; CREATE SCHEMA {data_schema};")
        run([SLUICECTL, "migrate", "--pg-dsn", sdsn])
        bound = [f"orders_{i}" for i in range(3)]
        for t in bound:
            pg.q(f"CREATE TABLE {data_schema}.{t} AS SELECT g AS id, (g % 1200)::numeric AS amount,"
                 f" 'c' || g AS customer FROM generate_series(1, 20000) g")
        # Tokens (gateway/README.md: SHA-256 of each token in a sluice.v1.TokenFile).
        import hashlib
        toks = {k: os.urandom(24).hex() for k in ("pub", "req", "stew")}
        sha = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in toks.items()}
        tenants = " ".join(f'tenants: "{t}"' for t in TENANTS)
        tokfile = os.path.join(work, "tokens.textproto")
        with open(tokfile, "w") as f:
            f.write(f'principals {{ name: "publisher" token_sha256: "{sha["pub"]}" {tenants} }}\n'
                    f'principals {{ name: "analyst" token_sha256: "{sha["req"]}" {tenants} }}\n'
                    f'principals {{ name: "steward" token_sha256: "{sha["stew"]}" {tenants} roles: "metadata_steward" }}\n')
        gw_port = free_port()
        target = f"127.0.0.1:{gw_port}"
        common = ["--bootstrap", kafka.bootstrap, "--topic-prefix", prefix]
        audit_group, profiler_group = f"{prefix}audit", f"{prefix}profiler"
        procs["gateway"] = Proc("gateway", [BINS["gateway"], "--listen", target, "--tokens", tokfile, "--pg-dsn", dsn,
                                            "--pg-schema", schema, "--metrics-listen", "", "--shutdown-grace-s", "5",
                                            "--health-group", audit_group, *common], work)
        procs["relay"] = Proc("relay", [BINS["relay"], "--pg-dsn", dsn, "--pg-schema", schema, "--poll-ms", "200",
                                        "--metrics-listen", "", *common], work)
        procs["audit"] = Proc("audit", [BINS["audit"], "--pg-dsn", dsn, "--pg-schema", schema, "--group", audit_group,
                                        "--metrics-listen", "", *common], work)
        procs["profiler"] = Proc("profiler", [BINS["profiler"], "--pg-dsn", dsn, "--pg-schema", schema, "--group",
                                              profiler_group, "--allow-binding", f"tenant-a={data_schema}.*",
                                              "--lease-s", "8", "--heartbeat-s", "2", "--retry-backoff-s", "2",
                                              "--max-attempts", "6", "--metrics-listen", "", *common], work)
        for p in procs.values():
            p.start()
        wait_port(gw_port, procs["gateway"], 30)
        log(f"services up; gateway on {target}")

        templates = {}
        for kind in ("metadata.changed", "kpi.changed", "data.refreshed"):
            e = envelope_pb2.Envelope()
            with open(os.path.join(ROOT, "contracts", "vectors", f"{kind}.binpb"), "rb") as f:
                e.ParseFromString(f.read())
            templates[kind] = e
        ledger = Ledger()
        pub = Publisher(target, toks["pub"], ledger, args.events, args.events / publish_s, 4, templates, stop)
        n_approvals = max(12, args.events // 400)
        appr = Approvals(target, toks["req"], toks["stew"], n_approvals, bound, data_schema, stop, ledger, pub)

        # The chaos schedule, as fractions of the publishing window.
        plan = []
        for name, n in (("gateway", 3), ("relay", 2), ("audit", 3), ("profiler", 2)):
            for _ in range(n):
                plan.append((rng.uniform(0.1, 0.9), "kill", name))
        broker = rng.randrange(3)
        plan.append((rng.uniform(0.25, 0.4), "broker-down", broker))
        plan.append((rng.uniform(0.65, 0.8), "broker-up", broker))
        plan.sort()
        chaos_log = []

        threads = [threading.Thread(target=pub.generator, daemon=True),
                   threading.Thread(target=appr.run, args=(publish_s * 0.9,), daemon=True)]
        threads += [threading.Thread(target=pub.worker, daemon=True) for _ in range(pub.workers)]
        t_pub = time.monotonic()
        for t in threads:
            t.start()
        for frac, action, what in plan:
            while time.monotonic() - t_pub < frac * publish_s:
                supervise(procs, chaos_log)
                time.sleep(0.2)
            if action == "kill":
                procs[what].kill()
                delay = rng.uniform(0.5, 3.0)
                chaos_log.append(f"{time.monotonic() - T0:6.1f}s SIGKILL {what} (acked {ledger.count()}), back in {delay:.1f}s")
                log(chaos_log[-1])
                time.sleep(delay)
                procs[what].start()
            elif action == "broker-down":
                kafka.nodes[what].kill()
                chaos_log.append(f"{time.monotonic() - T0:6.1f}s SIGKILL kafka{what + 1} (acked {ledger.count()})")
                log(chaos_log[-1])
            else:
                kafka.nodes[what].start()
                chaos_log.append(f"{time.monotonic() - T0:6.1f}s restart kafka{what + 1}")
                log(chaos_log[-1])
        while any(t.is_alive() for t in threads):
            supervise(procs, chaos_log)
            for t in threads:
                t.join(0.5)
            if time.monotonic() - t_pub > publish_s * 4 + 300:
                stop.set()
                failures.append("publishing did not finish in 4x its window + 300s")
                break
        log(f"published: {ledger.count()} acked of {args.events} (+{appr.refreshes_sent} bound refreshes), "
            f"{ledger.retried} resends of unacknowledged events, {ledger.stream_failures} broken streams; approvals created "
            f"{appr.created}, approved {len(appr.approved)}")
        kafka.wait_ready([broker], 120)  # every broker back before the checks

        # Settle: event_log stops growing, the outbox is empty, no profile job open.
        t_drain = time.monotonic()
        last, last_change = -1, time.monotonic()
        while True:
            supervise(procs, chaos_log)
            n = int(pg.one(f"SELECT count(*) FROM {schema}.event_log"))
            unsent = int(pg.one(f"SELECT count(*) FROM {schema}.event_outbox WHERE sent_at IS NULL"))
            open_jobs = int(pg.one(f"SELECT count(*) FROM {schema}.mdm_profile_job WHERE status IN ('pending','running')"))
            if n != last:
                last, last_change = n, time.monotonic()
            # A flat event_log alone is not enough: after a SIGKILL a group stays in its
            # rebalance until the dead member's session times out (10 s), consuming nothing.
            # The profiler's group first: a data.refreshed it has not yet read makes a new job,
            # whose profile event goes through the outbox to the audit log. Then, in that
            # order, no open job, nothing unsent, and the audit group at the end.
            if time.monotonic() - last_change >= args.quiet_s and unsent == 0 and open_jobs == 0:
                behind = {"profiler": group_lag(kafka, prefix, profiler_group, own_topics=True)}
                if behind["profiler"] == 0:
                    open_jobs = int(pg.one(f"SELECT count(*) FROM {schema}.mdm_profile_job WHERE status IN ('pending','running')"))
                    unsent = int(pg.one(f"SELECT count(*) FROM {schema}.event_outbox WHERE sent_at IS NULL"))
                    if open_jobs == 0 and unsent == 0:
                        behind["audit"] = group_lag(kafka, prefix, audit_group)
                        if behind["audit"] == 0:
                            break
                log(f"event_log flat at {n} rows for {time.monotonic() - last_change:.0f}s, but lag {behind}, "
                    f"open jobs {open_jobs}, unsent {unsent}")
                last_change = time.monotonic() - args.quiet_s + 5  # look again in 5 s
            if time.monotonic() - t_drain > args.drain_s:
                log(f"drain deadline: event_log {n}, unsent {unsent}, open jobs {open_jobs}")
                break
            time.sleep(1)
        log(f"settled after {time.monotonic() - t_drain:.0f}s: event_log {last} rows")

        if args.tamper:
            tenant, eid = next(iter(ledger.acked))
            pg.q(f"DELETE FROM {schema}.event_log WHERE tenant_id = '{tenant}' AND id = '{eid}'")
            log(f"--tamper: deleted ({tenant}, {eid}) from event_log")
        failures += verify(pg, kafka, schema, prefix, audit_group, ledger, appr, procs, chaos_log, work)
    except SystemExit as e:
        failures.append(f"aborted: {e}")
    except Exception as e:  # noqa: BLE001 - reported, then cleanup
        failures.append(f"error: {type(e).__name__}: {e}")
    finally:
        stop.set()
        for name, p in procs.items():
            rc = p.stop()
            if rc not in (None, 0):
                failures.append(f"{name} exited {rc} on SIGTERM at the end")
        for n in kafka.nodes:
            n.stop(30)
        for name in list(procs) + [n.name for n in kafka.nodes]:
            try:
                os.unlink(os.path.join(work, "pids", name))
            except FileNotFoundError:
                pass
    if failures:
        print("\nCHAOS: FAIL", flush=True)
        for f in failures:
            print(f"  - {f}", flush=True)
        for name in procs:
            path = os.path.join(work, "logs", f"{name}.log")
            if os.path.exists(path):
                print(f"== last lines of {name}.log", flush=True)
                with open(path, errors="replace") as f:
                    print("".join(f.readlines()[-15:]), flush=True)
        return 1
    print("\nCHAOS: PASS", flush=True)
    return 0


def wait_port(port, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.check():
            raise RuntimeError(f"{proc.name} exited during startup")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not listening on {port} after {timeout}s")


def group_lag(kafka, prefix, group, own_topics=False):
    """Records on the topics not yet committed by the group. own_topics: only the topics the
    group has committed anything on (a consumer of a few topics, like the profiler); a
    partition of such a topic without a commit counts from 0."""
    committed = kafka.committed(group)  # first: a commit never passes the end read after it
    ends = kafka.end_offsets(prefix)
    topics = {t for t, _ in committed}
    return sum(max(0, e - (committed.get(k) or 0)) for k, e in ends.items() if not own_topics or k[0] in topics)


def supervise(procs, chaos_log):
    """A service that died without being killed is a finding; restart it and carry on."""
    for name, p in procs.items():
        if p.check():
            chaos_log.append(f"{time.monotonic() - T0:6.1f}s UNEXPECTED exit of {name} (rc {p.unexpected[-1]}), restarted")
            log(chaos_log[-1])
            p.start()


def verify(pg, kafka, schema, prefix, audit_group, ledger, appr, procs, chaos_log, work):
    bad = []
    table = []

    def row(check, value, ok):
        table.append((check, value, "ok" if ok else "VIOLATION"))
        if not ok:
            bad.append(f"{check}: {value}")

    # (a) every acknowledged event in event_log, once per (tenant, id).
    stored = collections.Counter()
    for tenant, eid in pg.rows(f"SELECT tenant_id, id FROM {schema}.event_log"):
        stored[(tenant, eid)] += 1
    acked = dict(ledger.acked)
    missing = [k for k in acked if k not in stored]
    dup = [k for k, c in stored.items() if c > 1]
    row("(a) acknowledged events", f"{len(acked)}", len(acked) > 0)
    row("(a) acknowledged but not in event_log", f"{len(missing)}" + (f" e.g. {missing[:3]}" if missing else ""),
        not missing)
    row("(a) (tenant, id) stored more than once", f"{len(dup)}", not dup)
    row("(a) events refused for good by the gateway", f"{len(ledger.permanent)}" +
        (f" e.g. {ledger.permanent[:2]}" if ledger.permanent else ""), not ledger.permanent)
    # Each approved approval's approval.approved reached event_log (outbox -> relay -> Kafka -> audit).
    corr = {c for (c,) in pg.rows(f"SELECT correlation_id FROM {schema}.event_log WHERE type = 'approval.approved'")}
    lost = [a for _, a in appr.approved if a not in corr]
    row("(a) approvals approved / approval.approved missing", f"{len(appr.approved)} / {len(lost)}",
        not lost and len(appr.approved) > 0)

    # (b) outbox drained.
    unsent, total = pg.rows(f"SELECT count(*) FILTER (WHERE sent_at IS NULL), count(*) FROM {schema}.event_outbox")[0]
    row("(b) event_outbox unsent / total", f"{unsent} / {total}", int(unsent) == 0)

    # (c) no stuck profile job.
    jobs = dict((s, int(c)) for s, c in pg.rows(f"SELECT status, count(*) FROM {schema}.mdm_profile_job GROUP BY 1"))
    expired = int(pg.one(f"SELECT count(*) FROM {schema}.mdm_profile_job WHERE status = 'running' AND lease_expires_at < now()"))
    overdue = int(pg.one(f"SELECT count(*) FROM {schema}.mdm_profile_job WHERE status = 'pending' AND next_attempt_at < now() - interval '30 seconds'"))
    row("(c) profile jobs by status", json.dumps(jobs, sort_keys=True), True)
    row("(c) running with expired lease / pending overdue >30s", f"{expired} / {overdue}", expired == 0 and overdue == 0)
    profiles = int(pg.one(f"SELECT count(*) FROM {schema}.mdm_profile"))
    row("(c) profiles stored", f"{profiles}", profiles > 0)

    # (d) audit offsets: committed >= end for every partition; rows per topic == distinct
    # (tenant, id) on the topic minus dead letters. All of it up to the end offsets taken
    # here: the services still run, and the scheduler may ask for a profile meanwhile.
    ends = kafka.end_offsets(prefix)
    committed = kafka.committed(audit_group)
    lagging = [(t, p, committed.get((t, p)), e) for (t, p), e in sorted(ends.items())
               if e > 0 and (committed.get((t, p)) or 0) < e]
    row("(d) partitions with records / committed < end", f"{sum(1 for e in ends.values() if e > 0)} / {len(lagging)}" +
        (f" e.g. {lagging[:3]}" if lagging else ""), not lagging)
    snapshot = ", ".join(f"('{t}', {p}, {e})" for (t, p), e in sorted(ends.items())) or "('', 0, 0)"
    below_end = (f"JOIN (VALUES {snapshot}) AS e(topic, part, end_offset) ON x.topic = e.topic"
                 f" AND x.\"partition\" = e.part AND x.\"offset\" < e.end_offset")
    rows_by_topic = dict((t, int(c)) for t, c in pg.rows(
        f"SELECT x.topic, count(*) FROM {schema}.event_log x {below_end} GROUP BY 1"))
    dead_by_topic = dict((t, int(c)) for t, c in pg.rows(
        f"SELECT x.topic, count(DISTINCT (x.tenant_id, x.event_id)) FROM {schema}.event_dead_letter x {below_end}"
        " GROUP BY 1"))
    topics = sorted({t for t, _ in ends})
    for t in topics:
        out = os.path.join(work, f"replay-{t}.jsonl")
        run([SLUICECTL, "--bootstrap", kafka.bootstrap, "replay", "--topic", t, "--output", out], timeout=600)
        ids, records = set(), 0
        with open(out) as f:
            for line in f:
                if not line.strip():
                    continue
                j = json.loads(line)
                if int(j["offset"]) >= ends.get((t, int(j["partition"])), 0):
                    continue  # written after the snapshot
                env = j.get("envelope", j)
                ids.add((env.get("tenantId", ""), env.get("id", "")))
                records += 1
        end_total = sum(e for (tt, _), e in ends.items() if tt == t)
        stored_n, dead_n = rows_by_topic.get(t, 0), dead_by_topic.get(t, 0)
        row(f"(d) {t.removeprefix(prefix)}: records/end, distinct ids, event_log rows + dead letters",
            f"{records}/{end_total}, {len(ids)}, {stored_n} + {dead_n}",
            records == end_total and stored_n + dead_n == len(ids))
        os.unlink(out)

    crashed = {n: p.unexpected for n, p in procs.items() if p.unexpected}
    row("services exiting on their own", json.dumps(crashed) if crashed else "none", not crashed)
    kills = {n: p.kills for n, p in procs.items()}
    kills.update({n.name: n.kills for n in kafka.nodes if n.kills})
    row("SIGKILLs delivered", json.dumps(kills), True)
    row("per-event errors retried / broken streams", f"{dict(ledger.errors)} / {ledger.stream_failures}", True)
    fatal = [k for k in appr.errors if k.startswith("fatal:")]
    row("approval call errors retried", json.dumps({k: v for k, v in appr.errors.items() if k not in fatal}), True)
    row("approvals thread stopped by an error", fatal[0] if fatal else "no", not fatal)

    w = max(len(c) for c, _, _ in table)
    print("\nChaos timeline:", flush=True)
    for line in chaos_log:
        print(f"  {line}")
    print("\nSummary:")
    for c, v, s in table:
        print(f"  {c:<{w}}  {s:<9}  {v}")
    sys.stdout.flush()
    return bad


if __name__ == "__main__":
    sys.exit(main())
