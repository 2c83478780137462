"use strict";
// Publishes events to the Sluice gateway in batches, like a Kafka producer: events are
// buffered until maxBatchEvents are waiting (or the next one would take the request over
// maxBatchBytes, which must stay under the gateway's --max-message-bytes, 1 MiB by default)
// or lingerMs passed since the first of them, then sent with one PublishBatch call. Each
// publish() promise settles with its own event's result.
//
//   const publisher = new BatchingPublisher(client, token);
//   await publisher.ready();                       // room in the buffer (back-pressure)
//   const delivery = await publisher.publish(envelope);  // or rejects with a PublishError
//   await publisher.close();
//
// Memory is bounded: at most maxInFlightBatches calls are out at once; when they are and the
// buffer is full, publish() rejects at once with a BackpressureError (Node cannot block the
// caller); `await publisher.ready()` before publishing waits for room instead.
const grpc = require("@grpc/grpc-js");
const { create, toBinary } = require("@bufbuild/protobuf");
const { EnvelopeSchema } = require("./gen/sluice/v1/envelope_pb");
const { PublishBatchRequestSchema } = require("./gen/sluice/v1/gateway_pb");

// Why one event was not published: the gateway's per-event error, or the status of the
// failed call that carried it. Shaped like a grpc-js error: code (grpc.status), details,
// plus field (the offending field path for INVALID_ARGUMENT, else "").
class PublishError extends Error {
  constructor(code, details, field = "") {
    super(`${grpc.status[code] ?? code}: ${details}${field ? ` (field ${field})` : ""}`);
    this.name = "PublishError";
    Object.assign(this, { code, details, field });
  }
}

// publish() while the buffer is full and maxInFlightBatches calls are out.
class BackpressureError extends Error {
  constructor() {
    super("BatchingPublisher buffer is full; await ready() first");
    this.name = "BackpressureError";
  }
}

class BatchingPublisher {
  #client; #metadata; #maxBatchEvents; #maxBatchBytes; #lingerMs; #maxInFlight; #timeoutMs;
  #buffer = [];       // {envelope, resolve, reject} not yet sent
  #bufferBytes = 0;   // their size in a PublishBatchRequest
  #timer = null;      // the buffer's linger
  #due = false;       // the linger expired: send as soon as a call may go out
  #full = false;      // the next event did not fit in maxBatchBytes
  #inFlight = 0;      // PublishBatch calls not yet answered
  #unresolved = 0;    // events whose promise has not settled
  #flushWaiters = []; // resolve functions of flush(): wait for #unresolved == 0
  #roomWaiters = [];  // resolve functions of ready(): wait for room in the buffer
  #closed = false;

  // client: an EventGateway client from grpc_client.js's makeClient.
  constructor(client, token, {
    maxBatchEvents = 500, maxBatchBytes = 1_000_000, lingerMs = 5, maxInFlightBatches = 4, timeoutMs = 30_000,
  } = {}) {
    this.#client = client;
    this.#metadata = new grpc.Metadata();
    this.#metadata.set("authorization", `Bearer ${token}`);
    this.#maxBatchEvents = maxBatchEvents;
    this.#maxBatchBytes = maxBatchBytes;
    this.#lingerMs = lingerMs;
    this.#maxInFlight = maxInFlightBatches;
    this.#timeoutMs = timeoutMs;
  }

  // Buffers one event; resolves to its Delivery, rejects with a PublishError (or, at once,
  // a BackpressureError when the buffer is full).
  publish(envelope) {
    if (this.#closed) return Promise.reject(new Error("BatchingPublisher is closed"));
    const size = toBinary(EnvelopeSchema, envelope).length + 6; // with its field tag and length
    if (this.#buffer.length > 0 && this.#bufferBytes + size > this.#maxBatchBytes) {
      this.#full = true; // this event starts the next batch: send this one first
      this.#drain();
    }
    if (!this.#hasRoom()) return Promise.reject(new BackpressureError());
    return new Promise((resolve, reject) => {
      this.#buffer.push({ envelope, resolve, reject });
      this.#bufferBytes += size;
      this.#unresolved++;
      if (this.#buffer.length === 1) {
        this.#timer = setTimeout(() => { this.#due = true; this.#drain(); }, this.#lingerMs);
      }
      this.#drain();
    });
  }

  // Resolves once publish() would accept an event.
  ready() {
    if (this.#hasRoom()) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  // Sends the buffer now; resolves once no event is unsettled (including any published
  // meanwhile).
  flush() {
    if (this.#unresolved === 0) return Promise.resolve();
    const done = new Promise((resolve) => this.#flushWaiters.push(resolve));
    this.#drain();
    return done;
  }

  // Flushes; publish() rejects afterwards. The client stays open (it is the caller's).
  async close() {
    this.#closed = true;
    await this.flush();
  }

  #hasRoom() {
    return this.#buffer.length < this.#maxBatchEvents && !this.#full;
  }

  // Sends the buffer if it is due and a call may go out.
  #drain() {
    const due = this.#due || this.#full || this.#flushWaiters.length > 0 || !this.#hasRoom();
    if (this.#buffer.length === 0 || !due || this.#inFlight >= this.#maxInFlight) return;
    const batch = this.#buffer;
    this.#buffer = [];
    this.#bufferBytes = 0;
    clearTimeout(this.#timer);
    this.#due = this.#full = false;
    this.#inFlight++;
    for (const resolve of this.#roomWaiters.splice(0)) resolve();
    const request = create(PublishBatchRequestSchema, { envelopes: batch.map((e) => e.envelope) });
    this.#client.publishBatch(request, this.#metadata, { deadline: Date.now() + this.#timeoutMs },
      (err, response) => this.#complete(batch, err, response));
  }

  #complete(batch, err, response) {
    const results = response?.results ?? [];
    if (!err && results.length !== batch.length) {
      const details = `gateway answered ${results.length} results for ${batch.length} events`;
      err = { code: grpc.status.INTERNAL, details };
    }
    batch.forEach(({ resolve, reject }, i) => {
      if (err) return reject(new PublishError(err.code, err.details ?? "")); // the whole call failed
      const { result } = results[i];
      if (result.case === "ack") return resolve(result.value);
      reject(new PublishError(result.value?.code ?? grpc.status.UNKNOWN, result.value?.message ?? "no result",
        result.value?.field ?? ""));
    });
    this.#inFlight--;
    this.#unresolved -= batch.length;
    if (this.#unresolved === 0) for (const resolve of this.#flushWaiters.splice(0)) resolve();
    this.#drain();
  }
}

module.exports = { BatchingPublisher, PublishError, BackpressureError };
