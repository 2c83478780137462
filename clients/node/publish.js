#!/usr/bin/env node
// Publishes one binary sluice.v1.Envelope to the Sluice gateway and prints the delivery as
// one JSON line.
//   node publish.js --target HOST:PORT --token TOKEN --vector PATH.binpb
//                   [--stream | --batch N [--batch-size M] [--invalid I]]
// --batch N publishes the vector N times, each with a fresh id, through a BatchingPublisher
// (batches of at most M events) and prints one JSON line per event, in order, with its
// "index"; --invalid I gives event I the id "not-a-uuid", which the gateway refuses.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const { parseArgs } = require("node:util");
const grpc = require("@grpc/grpc-js");
const { create, fromBinary } = require("@bufbuild/protobuf");
const { EnvelopeSchema } = require("./gen/sluice/v1/envelope_pb");
const {
  EventGateway, PublishRequestSchema, PublishStreamRequestSchema,
} = require("./gen/sluice/v1/gateway_pb");
const { makeClient } = require("./grpc_client");
const { BatchingPublisher } = require("./batching");

const EventGatewayClient = makeClient(EventGateway);

// Resolves to the Delivery; rejects with a gRPC error ({code, details}).
function publish(client, envelope, metadata, stream) {
  const options = { deadline: Date.now() + 30_000 };
  if (!stream) {
    const request = create(PublishRequestSchema, { envelope });
    return new Promise((resolve, reject) =>
      client.publish(request, metadata, options, (err, response) =>
        err ? reject(err) : resolve(response.delivery)));
  }
  // One stream, one event: the sequence number pairs each response with its request.
  return new Promise((resolve, reject) => {
    const call = client.publishStream(metadata, options);
    call.on("data", ({ result }) =>
      result.case === "ack" ? resolve(result.value)
        : reject({ code: result.value.code, details: result.value.message }));
    call.on("error", reject);
    call.on("end", () => reject({ code: grpc.status.UNKNOWN, details: "stream ended without a response" }));
    call.write(create(PublishStreamRequestSchema, { sequence: 1n, envelope }));
    call.end();
  });
}

const deliveryJson = (d) => ({
  eventId: d.eventId, topic: d.topic, partition: d.partition, offset: Number(d.offset), duplicate: d.duplicate,
});

// --batch: returns one output object per event, in order.
async function publishBatch(client, token, envelope, n, batchSize, invalid) {
  const publisher = new BatchingPublisher(client, token, { maxBatchEvents: batchSize });
  const results = [];
  for (let i = 0; i < n; i++) {
    const id = i === invalid ? "not-a-uuid" : crypto.randomUUID();
    await publisher.ready(); // waits while the buffer is full and every call slot is busy
    results.push(publisher.publish({ ...envelope, id }).then(
      (d) => ({ lang: "node", index: i, ...deliveryJson(d) }),
      (e) => ({ lang: "node", index: i, error: { code: e.code, message: e.details ?? "", field: e.field ?? "" } })));
  }
  await publisher.close();
  return Promise.all(results);
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      target: { type: "string" }, token: { type: "string" },
      vector: { type: "string" }, stream: { type: "boolean", default: false },
      batch: { type: "string", default: "0" }, "batch-size": { type: "string", default: "500" },
      invalid: { type: "string", default: "-1" },
    },
  });
  if (!args.target || !args.token || !args.vector) {
    console.error("usage: publish.js --target HOST:PORT --token TOKEN --vector PATH.binpb"
      + " [--stream | --batch N [--batch-size M] [--invalid I]]");
    process.exit(2);
  }
  const envelope = fromBinary(EnvelopeSchema, fs.readFileSync(args.vector));
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${args.token}`);

  const client = new EventGatewayClient(args.target, grpc.credentials.createInsecure());
  try {
    if (Number(args.batch) > 0) {
      const lines = await publishBatch(client, args.token, envelope, Number(args.batch),
        Number(args["batch-size"]), Number(args.invalid));
      for (const line of lines) console.log(JSON.stringify(line));
      if (lines.some((line) => line.error)) process.exitCode = 1;
      return;
    }
    const d = await publish(client, envelope, metadata, args.stream);
    console.log(JSON.stringify({ lang: "node", ...deliveryJson(d) }));
  } catch (err) {
    console.log(JSON.stringify({ lang: "node", error: { code: err.code, message: err.details ?? "" } }));
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

main();
