#!/usr/bin/env node
// Publishes one binary sluice.v1.Envelope to the Sluice gateway and prints the delivery as
// one JSON line.
//   node publish.js --target HOST:PORT --token TOKEN --vector PATH.binpb [--stream]
"use strict";
const fs = require("node:fs");
const { parseArgs } = require("node:util");
const grpc = require("@grpc/grpc-js");
const { create, fromBinary } = require("@bufbuild/protobuf");
const { EnvelopeSchema } = require("./gen/sluice/v1/envelope_pb");
const {
  EventGateway, PublishRequestSchema, PublishStreamRequestSchema,
} = require("./gen/sluice/v1/gateway_pb");
const { makeClient } = require("./grpc_client");

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

async function main() {
  const { values: args } = parseArgs({
    options: {
      target: { type: "string" }, token: { type: "string" },
      vector: { type: "string" }, stream: { type: "boolean", default: false },
    },
  });
  if (!args.target || !args.token || !args.vector) {
    console.error("usage: publish.js --target HOST:PORT --token TOKEN --vector PATH.binpb [--stream]");
    process.exit(2);
  }
  const envelope = fromBinary(EnvelopeSchema, fs.readFileSync(args.vector));
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${args.token}`);

  const client = new EventGatewayClient(args.target, grpc.credentials.createInsecure());
  try {
    const d = await publish(client, envelope, metadata, args.stream);
    console.log(JSON.stringify({
      lang: "node", eventId: d.eventId, topic: d.topic, partition: d.partition,
      offset: Number(d.offset), duplicate: d.duplicate,
    }));
  } catch (err) {
    console.log(JSON.stringify({ lang: "node", error: { code: err.code, message: err.details ?? "" } }));
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

main();
