#!/usr/bin/env python3
"""Checks every client against a running fake_gateway.py (see check_clients.sh).

For each golden vector, unary and --stream, runs publish_all.sh with the good token and
checks each client's JSON line and that the envelope the fake received equals the vector
(deterministic serializations). Then checks that a wrong token yields UNAUTHENTICATED and
a refused event INVALID_ARGUMENT, as error JSON with exit status 1. Last, each client's
batching publisher (publish --batch): every event gets its own result in order, the one
invalid event its own error with the field, batches stay within --batch-size and the
calls in flight within 4, and a failed call (wrong token) fails every event of it.

  check_clients.py --target HOST:PORT --token T --wrong-token W --reject-token R --records FILE
"""
import argparse
import base64
import glob
import json
import os
import subprocess
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python", "gen"))
from sluice.v1 import envelope_pb2  # noqa: E402

LANGS = os.environ.get("SLUICE_CLIENTS", "python go java node").split()
USER_AGENTS = {"python": "grpc-python/", "go": "grpc-go/", "java": "grpc-java-", "node": "grpc-node-js/"}
UNAUTHENTICATED, INVALID_ARGUMENT = 16, 3
BATCH, BATCH_SIZE, INVALID, MAX_IN_FLIGHT = 25, 10, 3, 4  # MAX_IN_FLIGHT: the publishers' default


class Checker:
    def __init__(self, args):
        self.args = args
        self.seen_records = 0
        self.passed = 0
        self.failures = []

    def new_records(self):
        with open(self.args.records) as f:
            records = [json.loads(line) for line in f if line.strip()]
        fresh, self.seen_records = records[self.seen_records:], len(records)
        return fresh

    def run(self, token, vector, stream, extra=()):
        cmd = [os.path.join(ROOT, "clients", "publish_all.sh"), self.args.target, token, vector, *extra]
        if stream:
            cmd.append("--stream")
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
        return p.returncode, lines, p.stderr, self.new_records()

    def expect(self, case, problems):
        if problems:
            self.failures.append(f"FAIL {case}: " + "; ".join(problems))
        else:
            self.passed += 1

    def check_vector(self, vector, stream):
        envelope = envelope_pb2.Envelope()
        with open(vector, "rb") as f:
            envelope.ParseFromString(f.read())
        want = envelope.SerializeToString(deterministic=True)
        mode = "stream" if stream else "unary"
        rc, lines, stderr, records = self.run(self.args.token, vector, stream)
        if rc != 0 or len(lines) != len(LANGS) or len(records) != len(LANGS):
            self.failures.append(f"FAIL {os.path.basename(vector)} {mode}: exit {rc}, {len(lines)} lines, "
                                 f"{len(records)} received; stdout/stderr: {lines} {stderr[-2000:]}")
        for i, lang in enumerate(LANGS):
            out = lines[i] if i < len(lines) else {}
            rec = records[i] if i < len(records) else {}
            problems = []
            if out.get("lang") != lang or "error" in out:
                problems.append(f"output {out}")
            elif (out.get("topic") != "fake" or out.get("partition") != 0 or out.get("duplicate") is not False
                  or not isinstance(out.get("offset"), int) or out.get("eventId") != envelope.id):
                problems.append(f"delivery fields {out}")
            if not rec.get("user_agent", "").startswith(USER_AGENTS[lang]):
                problems.append(f"received from {rec.get('user_agent')!r}")
            if rec.get("method") != ("PublishStream" if stream else "Publish"):
                problems.append(f"method {rec.get('method')}")
            if stream and rec.get("sequence") != 1:
                problems.append(f"sequence {rec.get('sequence')}")
            if rec.get("authorization") != f"Bearer {self.args.token}":
                problems.append(f"authorization {rec.get('authorization')!r}")
            got = envelope_pb2.Envelope()
            got.ParseFromString(base64.b64decode(rec.get("envelope", "")))
            if got.SerializeToString(deterministic=True) != want:
                problems.append(f"received envelope differs from the vector: {got}")
            self.expect(f"{lang} {os.path.basename(vector)} {mode}", problems)

    def check_error(self, vector, token, stream, code):
        mode = "stream" if stream else "unary"
        rc, lines, stderr, records = self.run(token, vector, stream)
        if rc != 1:
            self.failures.append(f"FAIL publish_all.sh with token {token!r} ({mode}) exited {rc}, want 1")
        for i, lang in enumerate(LANGS):
            out = lines[i] if i < len(lines) else {}
            rec = records[i] if i < len(records) else {}
            problems = []
            err = out.get("error") if isinstance(out.get("error"), dict) else {}
            if out.get("lang") != lang or set(out) != {"lang", "error"} or err.get("code") != code \
                    or not isinstance(err.get("message"), str) or not err.get("message"):
                problems.append(f"output {out} (stderr: {stderr[-1000:]})")
            if rec.get("authorization") != f"Bearer {token}":
                problems.append(f"authorization {rec.get('authorization')!r}")
            self.expect(f"{lang} token {token!r} {mode} -> code {code}", problems)

    def check_batch(self, vector):
        envelope = envelope_pb2.Envelope()
        with open(vector, "rb") as f:
            envelope.ParseFromString(f.read())
        envelope.ClearField("id")
        want = envelope.SerializeToString(deterministic=True)
        rc, lines, stderr, records = self.run(self.args.token, vector, False,
                                              ["--batch", str(BATCH), "--batch-size", str(BATCH_SIZE),
                                               "--invalid", str(INVALID)])
        if rc != 1:  # one event was refused
            self.failures.append(f"FAIL publish_all.sh --batch exited {rc}, want 1; stderr: {stderr[-2000:]}")
        for i, lang in enumerate(LANGS):
            mine = [line for line in lines if line.get("lang") == lang]
            recs = records[i * BATCH:(i + 1) * BATCH]
            problems = []
            if [line.get("index") for line in mine] != list(range(BATCH)):
                problems.append(f"indexes {[line.get('index') for line in mine]}")
            acks = [line for line in mine if line.get("index") != INVALID]
            bad = next((line for line in mine if line.get("index") == INVALID), {})
            if bad.get("error") != {"code": INVALID_ARGUMENT, "message": bad.get("error", {}).get("message"),
                                    "field": "id"} or not bad["error"]["message"]:
                problems.append(f"invalid event's line {bad}")
            if any("error" in a or a.get("topic") != "fake" or not isinstance(a.get("offset"), int) for a in acks):
                problems.append(f"acks {[a for a in acks if 'error' in a or a.get('topic') != 'fake']}")
            ids = [a.get("eventId") for a in acks]
            if len(set(a.get("offset") for a in acks)) != len(acks) or len(set(ids)) != len(acks) \
                    or not all(is_uuid(x) for x in ids):
                problems.append(f"offsets or ids not distinct UUIDs: {acks}")
            if len(recs) != BATCH or any(r.get("method") != "PublishBatch" for r in recs):
                problems.append(f"received {len(recs)} events, methods {set(r.get('method') for r in recs)}")
            if any(not r.get("user_agent", "").startswith(USER_AGENTS[lang])
                   or r.get("authorization") != f"Bearer {self.args.token}" for r in recs):
                problems.append("user agent or authorization")
            sizes = {r.get("batch"): r.get("batch_size") for r in recs}
            if any(n > BATCH_SIZE for n in sizes.values()) or sum(sizes.values()) != BATCH:
                problems.append(f"batch sizes {sizes}")
            if any(r.get("concurrent", 0) > MAX_IN_FLIGHT for r in recs):
                problems.append(f"calls in flight {max(r.get('concurrent', 0) for r in recs)} > {MAX_IN_FLIGHT}")
            received_ids = set()
            for r in recs:
                got = envelope_pb2.Envelope()
                got.ParseFromString(base64.b64decode(r.get("envelope", "")))
                received_ids.add(got.id)
                got.ClearField("id")
                if got.SerializeToString(deterministic=True) != want:
                    problems.append("a received envelope differs from the vector beyond its id")
                    break
            if received_ids != set(ids) | {"not-a-uuid"}:
                problems.append("received ids differ from the printed ones")
            self.expect(f"{lang} --batch {BATCH} in {len(sizes)} calls (at most "
                        f"{max((r.get('concurrent', 0) for r in recs), default=0)} at once)", problems)

    def check_batch_call_failure(self, vector):
        rc, lines, stderr, _ = self.run(self.args.wrong_token, vector, False, ["--batch", "5"])
        for lang in LANGS:
            mine = [line for line in lines if line.get("lang") == lang]
            problems = []
            if rc != 1 or len(mine) != 5 or any(line.get("error", {}).get("code") != UNAUTHENTICATED for line in mine):
                problems.append(f"exit {rc}, lines {mine} (stderr: {stderr[-1000:]})")
            self.expect(f"{lang} --batch with a wrong token -> code {UNAUTHENTICATED} for every event", problems)


def is_uuid(s):
    try:
        return str(uuid.UUID(s)) == s
    except (TypeError, ValueError):
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--target", "--token", "--wrong-token", "--reject-token", "--records"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()

    vectors = sorted(glob.glob(os.path.join(ROOT, "contracts", "vectors", "*.binpb")))
    if not vectors:
        sys.exit("check_clients: no vectors in contracts/vectors")
    checker = Checker(args)
    for vector in vectors:
        for stream in (False, True):
            checker.check_vector(vector, stream)
    for stream in (False, True):
        checker.check_error(vectors[0], args.wrong_token, stream, UNAUTHENTICATED)
        checker.check_error(vectors[0], args.reject_token, stream, INVALID_ARGUMENT)
    checker.check_batch(os.path.join(ROOT, "contracts", "vectors", "data.refreshed.binpb"))
    checker.check_batch_call_failure(vectors[0])

    for failure in checker.failures:
        print(failure)
    print(f"clients: {len(vectors)} vectors x unary/stream x {len(LANGS)} clients, plus error and batch cases")
    print(f"{checker.passed} passed, {len(checker.failures)} failed")
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main())
