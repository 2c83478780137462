#!/usr/bin/env python3
"""A stand-in for the Sluice gateway's EventGateway service, for testing clients.

It checks the bearer token, records every envelope it receives, and answers a fake
delivery (the envelope's id, or a random UUID when it has none; topic "fake",
partition 0, offsets counting up from 0). It writes nothing to a broker.

  fake_gateway.py --token TOKEN [--reject-token TOKEN] [--host 127.0.0.1] [--port 0]
                  [--record FILE.jsonl] [--batch-delay SECONDS]

Prints "listening HOST:PORT" on stdout once it serves (port 0 picks a free port), then
runs until SIGTERM or SIGINT. Each received event appends one JSON line to --record:
  {"method": "Publish"|"PublishStream"|"PublishBatch", "sequence": N, "authorization": "...",
   "user_agent": "...", "envelope": "<base64 of the received envelope's bytes>"}
(PublishBatch records add "batch": the call's number, from 1, "batch_size", and
"concurrent": how many PublishBatch calls were being served, this one included; each
call is held --batch-delay seconds before it answers, so that calls overlap.)
The envelope bytes are the received request's envelope, re-serialized deterministically.
A call with any other token than --token or --reject-token fails with UNAUTHENTICATED
(and is recorded without an envelope); one with --reject-token is refused per event with
INVALID_ARGUMENT (a status for Publish, a PublishStreamResponse.error for PublishStream,
a PublishResult.error for PublishBatch). PublishBatch, like the gateway, also refuses an
event whose id is not a UUID (INVALID_ARGUMENT, field "id") and answers the others.
"""
import argparse
import base64
import json
import os
import signal
import sys
import threading
import time
import uuid
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python", "gen"))
from sluice.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
REJECT_MESSAGE = "rejected by the fake gateway"


class FakeGateway(gateway_pb2_grpc.EventGatewayServicer):
    def __init__(self, token, reject_token, record_path, batch_delay=0.0):
        self._token = token
        self._batch_delay = batch_delay
        self._serving_batches = 0
        self._reject_token = reject_token
        self._record_path = record_path
        self._lock = threading.Lock()
        self._offset = 0
        self._batches = 0
        self.records = []

    def _record(self, method, context, sequence=0, envelope=None, **extra):
        md = dict(context.invocation_metadata())
        rec = {
            "method": method,
            "sequence": sequence,
            "authorization": md.get("authorization", ""),
            "user_agent": md.get("user-agent", ""),
            **extra,
        }
        if envelope is not None:
            rec["envelope"] = base64.b64encode(envelope.SerializeToString(deterministic=True)).decode()
        with self._lock:
            self.records.append(rec)
            if self._record_path:
                with open(self._record_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")

    def _authorize(self, method, context):
        """Returns "ok" or "reject"; aborts the call with UNAUTHENTICATED otherwise."""
        auth = dict(context.invocation_metadata()).get("authorization", "")
        if auth == f"Bearer {self._token}":
            return "ok"
        if self._reject_token and auth == f"Bearer {self._reject_token}":
            return "reject"
        self._record(method, context)
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown bearer token")

    def _deliver(self, envelope):
        with self._lock:
            offset = self._offset
            self._offset += 1
        # Like the gateway, assign an id when the envelope has none.
        event_id = envelope.id or str(uuid.uuid4())
        return gateway_pb2.Delivery(event_id=event_id, topic="fake", partition=0, offset=offset)

    def Publish(self, request, context):
        verdict = self._authorize("Publish", context)
        self._record("Publish", context, envelope=request.envelope)
        if verdict == "reject":
            context.abort(INVALID_ARGUMENT, REJECT_MESSAGE)
        return gateway_pb2.PublishResponse(delivery=self._deliver(request.envelope))

    def PublishStream(self, request_iterator, context):
        verdict = self._authorize("PublishStream", context)
        for request in request_iterator:
            self._record("PublishStream", context, request.sequence, request.envelope)
            if verdict == "reject":
                error = gateway_pb2.PublishError(code=INVALID_ARGUMENT.value[0], message=REJECT_MESSAGE)
                yield gateway_pb2.PublishStreamResponse(sequence=request.sequence, error=error)
            else:
                yield gateway_pb2.PublishStreamResponse(sequence=request.sequence,
                                                        ack=self._deliver(request.envelope))

    def PublishBatch(self, request, context):
        verdict = self._authorize("PublishBatch", context)
        with self._lock:
            self._batches += 1
            self._serving_batches += 1
            batch, concurrent = self._batches, self._serving_batches
        try:
            time.sleep(self._batch_delay)
            return self._answer_batch(request, context, verdict, batch, concurrent)
        finally:
            with self._lock:
                self._serving_batches -= 1

    def _answer_batch(self, request, context, verdict, batch, concurrent):
        results = []
        for envelope in request.envelopes:
            self._record("PublishBatch", context, envelope=envelope, batch=batch, batch_size=len(request.envelopes),
                         concurrent=concurrent)
            if verdict == "reject":
                error = gateway_pb2.PublishError(code=INVALID_ARGUMENT.value[0], message=REJECT_MESSAGE)
            elif envelope.id and not is_uuid(envelope.id):
                error = gateway_pb2.PublishError(code=INVALID_ARGUMENT.value[0], message="id: must be a UUID",
                                                 field="id")
            else:
                results.append(gateway_pb2.PublishResult(ack=self._deliver(envelope)))
                continue
            results.append(gateway_pb2.PublishResult(error=error))
        return gateway_pb2.PublishBatchResponse(results=results)


def is_uuid(s):
    try:
        return str(uuid.UUID(s)) == s
    except ValueError:
        return False


def serve(token, reject_token=None, host="127.0.0.1", port=0, record_path=None, batch_delay=0.0):
    """Starts the fake; returns (server, servicer, bound port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    servicer = FakeGateway(token, reject_token, record_path, batch_delay)
    gateway_pb2_grpc.add_EventGatewayServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot listen on {host}:{port}")
    server.start()
    return server, servicer, bound


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", required=True)
    parser.add_argument("--reject-token")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record")
    parser.add_argument("--batch-delay", type=float, default=0.0)
    args = parser.parse_args()

    server, _, port = serve(args.token, args.reject_token, args.host, args.port, args.record, args.batch_delay)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"listening {args.host}:{port}", flush=True)
    stop.wait()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
