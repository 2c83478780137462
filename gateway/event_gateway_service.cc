#include "gateway/event_gateway_service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "common/strings.h"
#include "contracts/validate.h"
#include "gateway/grpc_status.h"

namespace sluice::gateway {
namespace {

// A per-event error message for PublishStream, at most 1 KiB: some echo the caller's
// input ("unknown event type \"<type>\""), and acks waiting for a slow client are held
// in memory. Cut at a UTF-8 character boundary (a proto3 string must stay valid UTF-8).
std::string ShortMessage(absl::string_view m) {
  constexpr size_t kMax = 1024;
  if (m.size() <= kMax) return std::string(m);
  size_t n = kMax;
  while (n > 0 && (static_cast<unsigned char>(m[n]) & 0xC0) == 0x80) --n;
  return common::Cat(m.substr(0, n), "...");
}

// A failed event's status, flattened the way PublishStream and PublishBatch answer it.
void SetError(const absl::Status& s, v1::PublishError* e) {
  e->set_code(static_cast<int>(s.code()));
  e->set_message(ShortMessage(s.message()));
  if (auto f = contracts::FieldPathOf(s)) e->set_field(*f);
}

void SetResult(absl::StatusOr<v1::Delivery> r, v1::PublishResult* out) {
  if (r.ok()) {
    *out->mutable_ack() = *std::move(r);
  } else {
    SetError(r.status(), out->mutable_error());
  }
}

// Why a message of `n` envelopes is refused whole, or OK; `what` names the message kind.
absl::Status CheckBatchSize(size_t n, size_t max_batch_events, std::string_view what) {
  if (n == 0) return contracts::InvalidField("envelopes", "empty");
  if (n > max_batch_events)
    return contracts::InvalidField("envelopes", common::Cat(n, " events, more than the limit of ", max_batch_events,
                                                            " per ", what, " (--max-batch-events); nothing published"));
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* EventGatewayServiceImpl::Publish(grpc::CallbackServerContext* ctx,
                                                           const v1::PublishRequest* req, v1::PublishResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto who = tokens_.Authenticate(*ctx);
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  publisher_.Publish(**who, req->envelope(), WorkflowContextOf(*ctx), [reactor, resp](absl::StatusOr<v1::Delivery> d) {
    if (!d.ok()) return reactor->Finish(ToGrpcStatus(d.status()));
    *resp->mutable_delivery() = *std::move(d);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

// Every envelope goes through Publisher::Publish on its own; the results are placed by
// index into a response sized up front (each callback writes only its own element, so
// they need no lock), and the last callback to arrive finishes the call. The response so
// holds at most max_batch_events results, and no thread waits for the broker.
grpc::ServerUnaryReactor* EventGatewayServiceImpl::PublishBatch(grpc::CallbackServerContext* ctx,
                                                                const v1::PublishBatchRequest* req,
                                                                v1::PublishBatchResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto who = tokens_.Authenticate(*ctx);
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  const size_t n = static_cast<size_t>(req->envelopes_size());
  if (absl::Status s = CheckBatchSize(n, max_batch_events_, "request"); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  struct Batch {
    // A constructor, not an aggregate: clang 14 (the fuzz build) has no parenthesized
    // aggregate initialization for make_shared.
    Batch(grpc::ServerUnaryReactor* r, v1::PublishBatchResponse* p, size_t n) : reactor(r), resp(p), remaining(n) {}
    grpc::ServerUnaryReactor* reactor;
    v1::PublishBatchResponse* resp;
    std::atomic<size_t> remaining;
  };
  resp->mutable_results()->Reserve(static_cast<int>(n));
  for (size_t i = 0; i < n; ++i) resp->add_results();
  auto batch = std::make_shared<Batch>(reactor, resp, n);
  const WorkflowContext wctx = WorkflowContextOf(*ctx);
  // `req` and `resp` live until Finish, which the last callback calls: nothing here reads
  // `req` after handing over its last envelope (`done` may run before Publish returns).
  // The envelopes are moved out rather than copied: gRPC allocated the request for this
  // call alone (it is not a const object) and nothing reads it after this loop.
  auto* envelopes = const_cast<v1::PublishBatchRequest*>(req)->mutable_envelopes();
  for (size_t i = 0; i < n; ++i) {
    publisher_.Publish(**who, std::move(*envelopes->Mutable(static_cast<int>(i))), wctx,
                       [batch, i](absl::StatusOr<v1::Delivery> r) {
                         SetResult(std::move(r), batch->resp->mutable_results(static_cast<int>(i)));
                         if (batch->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1)
                           batch->reactor->Finish(grpc::Status::OK);
                       });
  }
  return reactor;
}

// One thread reads (this one), one writes responses as they complete. Reading pauses
// while max_in_flight events are unanswered, counting both those waiting for the broker
// and those whose response is not yet written: a client that never reads its responses
// (so Write blocks) stops the reading too, and gRPC's flow control then pushes back on
// it. A message of n envelopes takes n of those places (its results wait for its last
// event), so the count is of events, not messages; it is read once one place is free and
// then waits, read, for the other n - 1. A stream so holds at most max_in_flight events
// and results, plus the one message waiting for its places.
grpc::Status EventGatewayServiceImpl::PublishStream(
    grpc::ServerContext* ctx, grpc::ServerReaderWriter<v1::PublishStreamResponse, v1::PublishStreamRequest>* stream) {
  auto who = tokens_.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  auto slot = slots_.Acquire((*who)->name());
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  const WorkflowContext wctx = WorkflowContextOf(*ctx);

  struct Ready {
    v1::PublishStreamResponse response;
    size_t events;  // places it holds in `unanswered`
  };
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Ready> ready;
    size_t unanswered = 0;  // events read, and their response not yet written (or dropped: client gone)
    bool reading_done = false;
    bool write_failed = false;
    void Push(v1::PublishStreamResponse r, size_t events) {
      std::lock_guard lock(mu);
      ready.push_back({std::move(r), events});
      cv.notify_all();
    }
  };
  // The results of one message with envelopes, filled by index (each callback writes only
  // its own element); the last one hands the response to the writer.
  struct Pending {
    v1::PublishStreamResponse response;
    std::atomic<size_t> remaining;
  };
  auto sh = std::make_shared<Shared>();
  std::thread writer([sh, stream] {
    std::unique_lock lock(sh->mu);
    for (;;) {
      sh->cv.wait(lock, [&] { return !sh->ready.empty() || (sh->reading_done && sh->unanswered == 0); });
      if (sh->ready.empty()) return;  // all answered
      Ready r = std::move(sh->ready.front());
      sh->ready.pop_front();
      const bool write = !sh->write_failed;
      lock.unlock();
      // No buffer_hint: a synchronous Write with it does not complete until a later
      // write flushes it, and this loop waits for each Write before the next.
      const bool ok = write && stream->Write(r.response);
      lock.lock();
      if (!ok) sh->write_failed = true;  // client gone; keep draining completions
      sh->unanswered -= r.events;
      sh->cv.notify_all();
    }
  });

  // Waits until `events` more fit (false: the client is gone or cancelled), then takes them.
  auto take = [&](size_t events) {
    std::unique_lock lock(sh->mu);
    while (sh->unanswered + events > max_in_flight_ && !sh->write_failed && !ctx->IsCancelled())
      sh->cv.wait_for(lock, std::chrono::milliseconds(200));  // also notices cancellation
    if (sh->write_failed || ctx->IsCancelled()) return false;
    sh->unanswered += events;
    return true;
  };

  v1::PublishStreamRequest req;
  for (;;) {
    {
      // Waits before reading, so nothing more is taken from the client while full.
      std::unique_lock lock(sh->mu);
      while (sh->unanswered >= max_in_flight_ && !sh->write_failed && !ctx->IsCancelled())
        sh->cv.wait_for(lock, std::chrono::milliseconds(200));
      if (sh->write_failed || ctx->IsCancelled()) break;
    }
    if (!stream->Read(&req)) break;
    const uint64_t seq = req.sequence();
    const size_t n = static_cast<size_t>(req.envelopes_size());
    if (n == 0) {  // one event, as before envelopes existed (the wait above freed its place)
      {
        std::lock_guard lock(sh->mu);
        ++sh->unanswered;
      }
      publisher_.Publish(**who, std::move(*req.mutable_envelope()), wctx, [sh, seq](absl::StatusOr<v1::Delivery> r) {
        v1::PublishStreamResponse resp;
        resp.set_sequence(seq);
        if (r.ok()) {
          *resp.mutable_ack() = *std::move(r);
        } else {
          SetError(r.status(), resp.mutable_error());
        }
        sh->Push(std::move(resp), 1);
      });
      continue;
    }
    absl::Status refused =
        req.has_envelope()
            ? contracts::InvalidField("envelopes", "set together with envelope: a message carries one or the other")
            : CheckBatchSize(n, max_batch_events_, "message");
    if (refused.ok() && n > max_in_flight_)
      refused = contracts::InvalidField(
          "envelopes", common::Cat(n, " events, more than one stream may have unanswered (", max_in_flight_,
                                   ", --max-in-flight-per-stream); nothing published, send smaller messages"));
    if (!refused.ok()) {  // the whole message; the stream goes on
      if (!take(1)) break;
      v1::PublishStreamResponse resp;
      resp.set_sequence(seq);
      SetError(refused, resp.mutable_error());
      sh->Push(std::move(resp), 1);
      continue;
    }
    if (!take(n)) break;
    auto pending = std::make_shared<Pending>();
    pending->response.set_sequence(seq);
    pending->response.mutable_results()->Reserve(static_cast<int>(n));
    for (size_t i = 0; i < n; ++i) pending->response.add_results();
    pending->remaining.store(n, std::memory_order_relaxed);
    for (size_t i = 0; i < n; ++i) {
      publisher_.Publish(**who, std::move(*req.mutable_envelopes(static_cast<int>(i))), wctx,
                         [sh, pending, i, n](absl::StatusOr<v1::Delivery> r) {
                           SetResult(std::move(r), pending->response.mutable_results(static_cast<int>(i)));
                           if (pending->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1)
                             sh->Push(std::move(pending->response), n);
                         });
    }
  }
  {
    std::lock_guard lock(sh->mu);
    sh->reading_done = true;
    sh->cv.notify_all();
  }
  writer.join();
  if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled by the client");
  return grpc::Status::OK;
}

}  // namespace sluice::gateway
