"""A batching publisher for the Sluice gateway, like a Kafka producer's batching.

    publisher = BatchingPublisher(stub, token)
    future = publisher.publish(envelope)      # a concurrent.futures.Future
    delivery = future.result()                # or raises PublishFailed
    publisher.close()                         # sends what is buffered, waits, stops

Events are buffered until max_batch_events are waiting (or the next one would take the
request over max_batch_bytes, which must stay under the gateway's --max-message-bytes,
1 MiB by default) or `linger` seconds passed since the first of them, then sent with one
PublishBatch call by a background thread. Each
future gets its own event's result: the Delivery, or PublishFailed with the gateway's
code, message and field. A failed call (UNAVAILABLE, a deadline, ...) fails every event
of its batch with the call's status.

Memory is bounded: at most max_in_flight_batches calls are out at once; when they are
and the buffer is full, publish() blocks until a call answers.
"""
import threading
import time
from concurrent.futures import Future

import grpc

from sluice.v1 import gateway_pb2


class PublishFailed(Exception):
    """One event was not published: `code` is the google.rpc.Code value (3 for
    INVALID_ARGUMENT, 14 for UNAVAILABLE, ...), `field` the offending field path or ""."""

    def __init__(self, code, message, field=""):
        super().__init__(f"code {code}: {message}" + (f" (field {field})" if field else ""))
        self.code, self.message, self.field = code, message, field


class BatchingPublisher:
    def __init__(self, stub, token, max_batch_events=500, linger=0.005, max_in_flight_batches=4, timeout=30,
                 max_batch_bytes=1_000_000):
        self._stub = stub
        self._metadata = [("authorization", f"Bearer {token}")]
        self._max_batch_events = max_batch_events
        self._max_batch_bytes = max_batch_bytes
        self._linger = linger
        self._max_in_flight = max_in_flight_batches
        self._timeout = timeout
        # Everything below is guarded by _cv; every change of state notifies it.
        self._cv = threading.Condition()
        self._buffer = []          # (envelope, future) not yet sent
        self._buffer_bytes = 0     # their size in a PublishBatchRequest
        self._full = False         # a publisher waits for an empty buffer
        self._send_by = 0.0        # when the buffer's linger expires (time.monotonic)
        self._in_flight = 0        # PublishBatch calls not yet answered
        self._unresolved = 0       # events whose future has no result yet
        self._flushing = 0         # flush() calls waiting: send without lingering
        self._closed = False
        self._sender = threading.Thread(target=self._run, name="sluice-batching", daemon=True)
        self._sender.start()

    def publish(self, envelope):
        """Buffers one event; returns a Future of its Delivery. Blocks while the buffer is full."""
        future = Future()
        size = envelope.ByteSize() + 6  # with its field tag and length
        with self._cv:
            while self._buffer and not self._closed and (len(self._buffer) >= self._max_batch_events or
                                                         self._buffer_bytes + size > self._max_batch_bytes):
                self._full = True
                self._cv.notify_all()
                self._cv.wait()
            if self._closed:
                raise RuntimeError("BatchingPublisher is closed")
            if not self._buffer:
                self._send_by = time.monotonic() + self._linger
            self._buffer.append((envelope, future))
            self._buffer_bytes += size
            self._unresolved += 1
            self._cv.notify_all()
        return future

    def flush(self):
        """Sends the buffer now and waits until no event is without its result (under concurrent
        publish() calls, that includes theirs)."""
        with self._cv:
            self._flushing += 1
            self._cv.notify_all()
            while self._unresolved:
                self._cv.wait()
            self._flushing -= 1

    def close(self):
        """Flushes, then stops the sender thread. publish() raises afterwards."""
        self.flush()
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._sender.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _run(self):
        while True:
            with self._cv:
                while True:
                    now = time.monotonic()
                    due = bool(self._buffer) and (len(self._buffer) >= self._max_batch_events or self._full
                                                  or self._flushing or self._closed or now >= self._send_by)
                    if due and self._in_flight < self._max_in_flight:
                        break
                    if self._closed and not self._buffer:
                        return
                    # Wake at the linger deadline, or when a call answers or an event arrives.
                    self._cv.wait(None if due or not self._buffer else self._send_by - now)
                batch, self._buffer, self._buffer_bytes, self._full = self._buffer, [], 0, False
                self._in_flight += 1
                self._cv.notify_all()  # room in the buffer for blocked publishers
            request = gateway_pb2.PublishBatchRequest(envelopes=[envelope for envelope, _ in batch])
            try:
                call = self._stub.PublishBatch.future(request, metadata=self._metadata, timeout=self._timeout)
            except Exception as e:  # e.g. the channel was closed
                self._resolve(batch, None, PublishFailed(grpc.StatusCode.UNKNOWN.value[0], str(e)))
            else:
                call.add_done_callback(lambda call, batch=batch: self._complete(batch, call))

    def _complete(self, batch, call):
        """Runs on a gRPC thread when a PublishBatch call has answered."""
        try:
            results = call.result().results
        except grpc.RpcError as e:  # the whole call failed: so did each of its events
            return self._resolve(batch, None, PublishFailed(e.code().value[0], e.details() or ""))
        if len(results) != len(batch):
            return self._resolve(batch, None, PublishFailed(
                grpc.StatusCode.INTERNAL.value[0], f"gateway answered {len(results)} results for {len(batch)} events"))
        self._resolve(batch, results, None)

    def _resolve(self, batch, results, failure):
        """Gives each event of `batch` its result, or `failure` when the call failed."""
        for i, (_, future) in enumerate(batch):
            if failure is not None:
                future.set_exception(PublishFailed(failure.code, failure.message))
            elif results[i].HasField("ack"):
                future.set_result(results[i].ack)
            else:
                e = results[i].error
                future.set_exception(PublishFailed(e.code, e.message, e.field))
        with self._cv:
            self._in_flight -= 1
            self._unresolved -= len(batch)
            self._cv.notify_all()
