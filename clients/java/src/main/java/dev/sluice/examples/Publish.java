package dev.sluice.examples;

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
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Publishes one binary sluice.v1.Envelope to the Sluice gateway and prints the delivery as one
 * JSON line.
 *
 * <pre>publish --target HOST:PORT --token TOKEN --vector PATH.binpb [--stream]</pre>
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
      System.out.printf("{\"lang\":\"java\",\"eventId\":%s,\"topic\":%s,\"partition\":%d,"
              + "\"offset\":%d,\"duplicate\":%b}%n",
          json(d.getEventId()), json(d.getTopic()), d.getPartition(), d.getOffset(),
          d.getDuplicate());
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
      } else if (args[i].matches("--(target|token|vector)") && i + 1 < args.length) {
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
    System.err.println("usage: publish --target HOST:PORT --token TOKEN --vector PATH.binpb [--stream]");
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
