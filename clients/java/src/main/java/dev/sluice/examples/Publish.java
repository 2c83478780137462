package dev.sluice.examples;

import dev.sluice.client.BatchingPublisher;
import dev.sluice.client.PublishException;
import dev.sluice.v1.Delivery;
import dev.sluice.v1.Envelope;
import dev.sluice.v1.EventGatewayGrpc;
import dev.sluice.v1.PublishRequest;
import dev.sluice.v1.PublishStreamRequest;
import dev.sluice.v1.PublishStreamResponse;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Publishes one binary sluice.v1.Envelope to the Sluice gateway and prints the delivery as one
 * JSON line.
 *
 * <pre>publish --target HOST:PORT --token TOKEN --vector PATH.binpb
 *         [--stream | --batch N [--batch-size M] [--invalid I]]</pre>
 *
 * <p>{@code --batch N} publishes the vector N times, each with a fresh id, through a {@link
 * BatchingPublisher} (batches of at most M events) and prints one JSON line per event, in order,
 * with its "index"; {@code --invalid I} gives event I the id "not-a-uuid", which the gateway
 * refuses.
 */
public final class Publish {
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  public static void main(String[] args) throws Exception {
    Map<String, String> opts = parseArgs(args);
    Envelope envelope = Envelope.parseFrom(Files.readAllBytes(Path.of(opts.get("--vector"))));
    Metadata headers = new Metadata();
    headers.put(AUTHORIZATION, "Bearer " + opts.get("--token"));

    ManagedChannel channel =
        Grpc.newChannelBuilder(opts.get("--target"), InsecureChannelCredentials.create()).build();
    int exit = 0;
    try {
      if (opts.containsKey("--batch")) {
        exit = publishBatch(EventGatewayGrpc.newStub(channel), opts.get("--token"), envelope,
            Integer.parseInt(opts.get("--batch")),
            Integer.parseInt(opts.getOrDefault("--batch-size", "500")),
            Integer.parseInt(opts.getOrDefault("--invalid", "-1")));
      } else {
        Delivery d;
        if (opts.containsKey("--stream")) {
          d = publishStream(EventGatewayGrpc.newStub(channel)
              .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
              .withDeadlineAfter(30, TimeUnit.SECONDS), envelope);
        } else {
          d = EventGatewayGrpc.newBlockingStub(channel)
              .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
              .withDeadlineAfter(30, TimeUnit.SECONDS)
              .publish(PublishRequest.newBuilder().setEnvelope(envelope).build())
              .getDelivery();
        }
        System.out.printf("{\"lang\":\"java\",%s}%n", deliveryJson(d));
      }
    } catch (StatusRuntimeException e) {
      Status s = e.getStatus();
      System.out.printf("{\"lang\":\"java\",\"error\":{\"code\":%d,\"message\":%s}}%n",
          s.getCode().value(), json(s.getDescription() == null ? "" : s.getDescription()));
      exit = 1;
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    System.exit(exit);
  }

  /** --batch: prints one line per event; returns the exit status (1 if any event failed). */
  static int publishBatch(EventGatewayGrpc.EventGatewayStub stub, String token, Envelope envelope,
      int n, int batchSize, int invalid) throws InterruptedException {
    List<CompletableFuture<Delivery>> futures = new ArrayList<>();
    try (BatchingPublisher publisher = new BatchingPublisher(
        stub, token, batchSize, 1_000_000, Duration.ofMillis(5), 4, Duration.ofSeconds(30))) {
      for (int i = 0; i < n; i++) {
        String id = i == invalid ? "not-a-uuid" : UUID.randomUUID().toString();
        futures.add(publisher.publish(envelope.toBuilder().setId(id).build()));
      }
    }
    int exit = 0;
    for (int i = 0; i < n; i++) {
      try {
        System.out.printf("{\"lang\":\"java\",\"index\":%d,%s}%n", i, deliveryJson(futures.get(i).get()));
      } catch (ExecutionException e) {
        PublishException p = (PublishException) e.getCause();
        System.out.printf("{\"lang\":\"java\",\"index\":%d,\"error\":{\"code\":%d,\"message\":%s,"
            + "\"field\":%s}}%n", i, p.code().value(), json(p.message()), json(p.field()));
        exit = 1;
      }
    }
    return exit;
  }

  private static String deliveryJson(Delivery d) {
    return String.format("\"eventId\":%s,\"topic\":%s,\"partition\":%d,\"offset\":%d,\"duplicate\":%b",
        json(d.getEventId()), json(d.getTopic()), d.getPartition(), d.getOffset(), d.getDuplicate());
  }

  /** One stream, one event: the sequence number pairs each response with its request. */
  static Delivery publishStream(EventGatewayGrpc.EventGatewayStub stub, Envelope envelope)
      throws InterruptedException {
    CompletableFuture<PublishStreamResponse> first = new CompletableFuture<>();
    StreamObserver<PublishStreamRequest> requests =
        stub.publishStream(new StreamObserver<PublishStreamResponse>() {
          @Override public void onNext(PublishStreamResponse response) {
            first.complete(response);
          }

          @Override public void onError(Throwable t) {
            first.completeExceptionally(t);
          }

          @Override public void onCompleted() {
            first.completeExceptionally(Status.UNKNOWN
                .withDescription("stream ended without a response").asRuntimeException());
          }
        });
    requests.onNext(PublishStreamRequest.newBuilder().setSequence(1).setEnvelope(envelope).build());
    requests.onCompleted();

    PublishStreamResponse response;
    try {
      response = first.get();
    } catch (ExecutionException e) {
      throw Status.fromThrowable(e.getCause()).asRuntimeException();
    }
    if (response.hasError()) {
      throw Status.fromCodeValue(response.getError().getCode())
          .withDescription(response.getError().getMessage()).asRuntimeException();
    }
    return response.getAck();
  }

  private static Map<String, String> parseArgs(String[] args) {
    Map<String, String> opts = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--stream")) {
        opts.put("--stream", "");
      } else if (args[i].matches("--(target|token|vector|batch|batch-size|invalid)") && i + 1 < args.length) {
        opts.put(args[i], args[++i]);
      } else {
        usage("unexpected argument: " + args[i]);
      }
    }
    for (String required : new String[] {"--target", "--token", "--vector"}) {
      if (!opts.containsKey(required)) {
        usage("missing " + required);
      }
    }
    return opts;
  }

  private static void usage(String why) {
    System.err.println(why);
    System.err.println("usage: publish --target HOST:PORT --token TOKEN --vector PATH.binpb"
        + " [--stream | --batch N [--batch-size M] [--invalid I]]");
    System.exit(2);
  }

  /** A JSON string literal. */
  private static String json(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        default -> {
          if (c < 0x20) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
        }
      }
    }
    return b.append('"').toString();
  }
}
