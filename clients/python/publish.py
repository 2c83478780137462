#!/usr/bin/env python3
"""Publish one binary sluice.v1.Envelope to the Sluice gateway and print the delivery as JSON.

usage: publish.py --target HOST:PORT --token TOKEN --vector PATH.binpb
                  [--stream | --batch N [--batch-size M] [--invalid I]]

--batch N publishes the vector N times, each with a fresh id, through a BatchingPublisher
(batches of at most M events) and prints one JSON line per event, in order, with its
"index"; --invalid I gives event I the id "not-a-uuid", which the gateway refuses.
"""
import argparse
import json
import os
import sys
import uuid

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))
from sluice.v1 import envelope_pb2, gateway_pb2, gateway_pb2_grpc  # noqa: E402
from batching import BatchingPublisher, PublishFailed  # noqa: E402


class StreamError(Exception):
    """A per-event failure reported inside a PublishStream response."""

    def __init__(self, error):
        super().__init__(error.message)
        self.error = error


def publish(stub, envelope, metadata, stream):
    """Returns the Delivery; raises grpc.RpcError, or StreamError for a per-event error."""
    if not stream:
        request = gateway_pb2.PublishRequest(envelope=envelope)
        return stub.Publish(request, metadata=metadata, timeout=30).delivery
    # One stream, one event: sequence numbers pair each response with its request.
    requests = iter([gateway_pb2.PublishStreamRequest(sequence=1, envelope=envelope)])
    for response in stub.PublishStream(requests, metadata=metadata, timeout=30):
        if response.HasField("error"):
            raise StreamError(response.error)
        return response.ack
    raise StreamError(gateway_pb2.PublishError(code=grpc.StatusCode.UNKNOWN.value[0],
                                               message="stream ended without a response"))


def delivery_json(d):
    return dict(eventId=d.event_id, topic=d.topic, partition=d.partition, offset=d.offset, duplicate=d.duplicate)


def publish_batch(stub, envelope, args):
    """--batch: returns one output dict per event, in order."""
    futures = []
    with BatchingPublisher(stub, args.token, max_batch_events=args.batch_size) as publisher:
        for i in range(args.batch):
            event = envelope_pb2.Envelope()
            event.CopyFrom(envelope)
            event.id = "not-a-uuid" if i == args.invalid else str(uuid.uuid4())
            futures.append(publisher.publish(event))
    lines = []
    for i, future in enumerate(futures):
        out = {"lang": "python", "index": i}
        try:
            out.update(delivery_json(future.result()))
        except PublishFailed as e:
            out["error"] = {"code": e.code, "message": e.message, "field": e.field}
        lines.append(out)
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="gateway HOST:PORT (plaintext gRPC)")
    parser.add_argument("--token", required=True, help="bearer token")
    parser.add_argument("--vector", required=True, help="file holding a binary sluice.v1.Envelope")
    parser.add_argument("--stream", action="store_true", help="use PublishStream instead of Publish")
    parser.add_argument("--batch", type=int, default=0, help="publish N copies with fresh ids in batches")
    parser.add_argument("--batch-size", type=int, default=500, help="events per PublishBatch call at most")
    parser.add_argument("--invalid", type=int, default=-1, help="with --batch: make event I invalid")
    args = parser.parse_args()

    envelope = envelope_pb2.Envelope()
    with open(args.vector, "rb") as f:
        envelope.ParseFromString(f.read())
    metadata = [("authorization", f"Bearer {args.token}")]

    out = {"lang": "python"}
    with grpc.insecure_channel(args.target) as channel:
        stub = gateway_pb2_grpc.EventGatewayStub(channel)
        if args.batch > 0:
            lines = publish_batch(stub, envelope, args)
            for line in lines:
                print(json.dumps(line, separators=(",", ":")))
            sys.stdout.flush()
            return 1 if any("error" in line for line in lines) else 0
        try:
            d = publish(stub, envelope, metadata, args.stream)
        except grpc.RpcError as e:
            out["error"] = {"code": e.code().value[0], "message": e.details() or ""}
        except StreamError as e:
            out["error"] = {"code": e.error.code, "message": e.error.message}
        else:
            out.update(delivery_json(d))
    print(json.dumps(out, separators=(",", ":")), flush=True)
    return 1 if "error" in out else 0


if __name__ == "__main__":
    sys.exit(main())
