package dev.sluice.client;

import dev.sluice.v1.Delivery;
import dev.sluice.v1.Envelope;
import dev.sluice.v1.EventGatewayGrpc;
import dev.sluice.v1.PublishBatchRequest;
import dev.sluice.v1.PublishBatchResponse;
import dev.sluice.v1.PublishError;
import dev.sluice.v1.PublishResult;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Publishes events to the Sluice gateway in batches, like a Kafka producer: events are buffered
 * until {@code maxBatchEvents} are waiting (or the next one would take the request over {@code
 * maxBatchBytes}, which must stay under the gateway's --max-message-bytes, 1 MiB by default) or
 * {@code linger} passed since the first of them, then a background thread sends them with one
 * PublishBatch call on the async stub.
 *
 * <pre>{@code
 * try (var publisher = new BatchingPublisher(EventGatewayGrpc.newStub(channel), token)) {
 *   CompletableFuture<Delivery> f = publisher.publish(envelope);
 *   f.join();  // the Delivery, or a CompletionException caused by a PublishException
 * }
 * }</pre>
 *
 * <p>Each future completes with its own event's result; a failed call (UNAVAILABLE, a deadline,
 * ...) fails every event of its batch with the call's status. Memory is bounded: at most {@code
 * maxInFlightBatches} calls are out at once; when they are and the buffer is full, {@link
 * #publish} blocks until a call answers.
 */
public final class BatchingPublisher implements AutoCloseable {
  private record Pending(Envelope envelope, CompletableFuture<Delivery> future) {}

  private final EventGatewayGrpc.EventGatewayStub stub;
  private final int maxBatchEvents;
  private final int maxBatchBytes;
  private final long lingerNanos;
  private final int maxInFlightBatches;
  private final Duration timeout;
  private final Thread sender;

  // Everything below is guarded by lock; every change of state signals `changed`.
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private List<Pending> buffer = new ArrayList<>();  // not yet sent
  private int bufferBytes;  // their size in a PublishBatchRequest
  private boolean full;     // a publisher waits for an empty buffer
  private long sendBy;     // System.nanoTime() when the buffer's linger expires
  private int inFlight;    // PublishBatch calls not yet answered
  private int unresolved;  // events whose future is not complete
  private int flushing;    // flush() calls waiting: send without lingering
  private boolean closed;

  /** 500 events (1 MB) per batch, 5 ms linger, 4 batches in flight, 30 s per call. */
  public BatchingPublisher(EventGatewayGrpc.EventGatewayStub stub, String token) {
    this(stub, token, 500, 1_000_000, Duration.ofMillis(5), 4, Duration.ofSeconds(30));
  }

  public BatchingPublisher(EventGatewayGrpc.EventGatewayStub stub, String token, int maxBatchEvents,
      int maxBatchBytes, Duration linger, int maxInFlightBatches, Duration timeout) {
    Metadata headers = new Metadata();
    headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
    this.stub = stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    this.maxBatchEvents = maxBatchEvents;
    this.maxBatchBytes = maxBatchBytes;
    this.lingerNanos = linger.toNanos();
    this.maxInFlightBatches = maxInFlightBatches;
    this.timeout = timeout;
    this.sender = new Thread(this::run, "sluice-batching");
    sender.setDaemon(true);
    sender.start();
  }

  /** Buffers one event; blocks while the buffer is full. The future completes with its Delivery. */
  public CompletableFuture<Delivery> publish(Envelope envelope) throws InterruptedException {
    CompletableFuture<Delivery> future = new CompletableFuture<>();
    int size = envelope.getSerializedSize() + 6;  // with its field tag and length
    lock.lock();
    try {
      while (!buffer.isEmpty() && !closed
          && (buffer.size() >= maxBatchEvents || bufferBytes + size > maxBatchBytes)) {
        full = true;
        changed.signalAll();
        changed.await();
      }
      if (closed) {
        throw new IllegalStateException("BatchingPublisher is closed");
      }
      if (buffer.isEmpty()) {
        sendBy = System.nanoTime() + lingerNanos;
      }
      buffer.add(new Pending(envelope, future));
      bufferBytes += size;
      unresolved++;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
    return future;
  }

  /**
   * Sends the buffer now and waits until no event is without its result (under concurrent {@link
   * #publish} calls, that includes theirs).
   */
  public void flush() throws InterruptedException {
    lock.lock();
    try {
      flushing++;
      changed.signalAll();
      try {
        while (unresolved > 0) {
          changed.await();
        }
      } finally {
        flushing--;
      }
    } finally {
      lock.unlock();
    }
  }

  /** Flushes, then stops the sender thread; {@link #publish} throws afterwards. */
  @Override
  public void close() throws InterruptedException {
    flush();
    lock.lock();
    try {
      closed = true;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
    sender.join();
  }

  private void run() {
    while (true) {
      List<Pending> batch;
      lock.lock();
      try {
        while (true) {
          long now = System.nanoTime();
          boolean due = !buffer.isEmpty()
              && (buffer.size() >= maxBatchEvents || full || flushing > 0 || closed
                  || now - sendBy >= 0);
          if (due && inFlight < maxInFlightBatches) {
            break;
          }
          if (closed && buffer.isEmpty()) {
            return;
          }
          // Wake at the linger deadline, or when a call answers or an event arrives.
          if (due || buffer.isEmpty()) {
            changed.awaitUninterruptibly();
          } else {
            changed.awaitNanos(sendBy - now);
          }
        }
        batch = buffer;
        buffer = new ArrayList<>();
        bufferBytes = 0;
        full = false;
        inFlight++;
        changed.signalAll();  // room in the buffer for blocked publishers
      } catch (InterruptedException e) {
        return;  // nobody else interrupts this thread
      } finally {
        lock.unlock();
      }
      send(batch);
    }
  }

  private void send(List<Pending> batch) {
    PublishBatchRequest.Builder request = PublishBatchRequest.newBuilder();
    batch.forEach(p -> request.addEnvelopes(p.envelope()));
    stub.withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS).publishBatch(request.build(),
        new StreamObserver<PublishBatchResponse>() {
          private PublishBatchResponse response;

          @Override public void onNext(PublishBatchResponse r) {
            response = r;
          }

          @Override public void onError(Throwable t) {  // the whole call failed: so did each event
            Status s = Status.fromThrowable(t);
            resolve(batch, null, s.getCode(), s.getDescription());
          }

          @Override public void onCompleted() {
            if (response == null || response.getResultsCount() != batch.size()) {
              resolve(batch, null, Status.Code.INTERNAL, "gateway answered "
                  + (response == null ? 0 : response.getResultsCount()) + " results for "
                  + batch.size() + " events");
            } else {
              resolve(batch, response.getResultsList(), null, null);
            }
          }
        });
  }

  /** Completes each event's future with its result, or with the call's failure. */
  private void resolve(
      List<Pending> batch, List<PublishResult> results, Status.Code code, String message) {
    for (int i = 0; i < batch.size(); i++) {
      CompletableFuture<Delivery> future = batch.get(i).future();
      if (results == null) {
        future.completeExceptionally(new PublishException(code, message == null ? "" : message, ""));
      } else if (results.get(i).hasAck()) {
        future.complete(results.get(i).getAck());
      } else {
        PublishError e = results.get(i).getError();
        Status.Code errorCode = Status.fromCodeValue(e.getCode()).getCode();
        future.completeExceptionally(new PublishException(errorCode, e.getMessage(), e.getField()));
      }
    }
    lock.lock();
    try {
      inFlight--;
      unresolved -= batch.size();
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }
}
