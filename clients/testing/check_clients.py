#!/usr/bin/env python3
"""Checks every client against a running fake_gateway.py (see check_clients.sh).

For each golden vector, unary and --stream, runs publish_all.sh with the good token and
checks each client's JSON line and that the envelope the fake received equals the vector
(deterministic serializations). Then checks that a wrong token yields UNAUTHENTICATED and
a refused event INVALID_ARGUMENT, as error JSON with exit status 1.

  check_clients.py --target HOST:PORT --token T --wrong-token W --reject-token R --records FILE
"""
import argparse
import base64
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python", "gen"))
from sluice.v1 import envelope_pb2  # noqa: E402

LANGS = os.environ.get("SLUICE_CLIENTS", "python go java node").split()
USER_AGENTS = {"python": "grpc-python/", "go": "grpc-go/", "java": "grpc-java-", "node": "grpc-node-js/"}
UNAUTHENTICATED, INVALID_ARGUMENT = 16, 3


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

    def run(self, token, vector, stream):
        cmd = [os.path.join(ROOT, "clients", "publish_all.sh"), self.args.target, token, vector]
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

    for failure in checker.failures:
        print(failure)
    print(f"clients: {len(vectors)} vectors x unary/stream x {len(LANGS)} clients, plus error cases")
    print(f"{checker.passed} passed, {len(checker.failures)} failed")
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main())
