#include "gateway/event_gateway_service.h"

#include <algorithm>
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

// One thread reads (this one), one writes acknowledgements as they complete. Reading
// pauses while max_in_flight events are unanswered, counting both those waiting for the
// broker and those whose acknowledgement is not yet written: a client that never reads
// its acks (so Write blocks) stops the reading too, and gRPC's flow control then
// pushes back on it. A stream so holds at most max_in_flight events and acks.
grpc::Status EventGatewayServiceImpl::PublishStream(
    grpc::ServerContext* ctx, grpc::ServerReaderWriter<v1::PublishStreamResponse, v1::PublishStreamRequest>* stream) {
  auto who = tokens_.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  auto slot = slots_.Acquire((*who)->name());
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  const WorkflowContext wctx = WorkflowContextOf(*ctx);

  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<v1::PublishStreamResponse> ready;
    size_t unanswered = 0;  // read, and the ack not yet written (or dropped: client gone)
    bool reading_done = false;
    bool write_failed = false;
  };
  auto sh = std::make_shared<Shared>();
  std::thread writer([sh, stream] {
    std::unique_lock lock(sh->mu);
    for (;;) {
      sh->cv.wait(lock, [&] { return !sh->ready.empty() || (sh->reading_done && sh->unanswered == 0); });
      if (sh->ready.empty()) return;  // all answered
      v1::PublishStreamResponse r = std::move(sh->ready.front());
      sh->ready.pop_front();
      const bool write = !sh->write_failed;
      lock.unlock();
      // No buffer_hint: a synchronous Write with it does not complete until a later
      // write flushes it, and this loop waits for each Write before the next.
      const bool ok = write && stream->Write(r);
      lock.lock();
      if (!ok) sh->write_failed = true;  // client gone; keep draining completions
      --sh->unanswered;
      sh->cv.notify_all();
    }
  });

  v1::PublishStreamRequest req;
  for (;;) {
    {
      // Waits before reading, so nothing more is taken from the client while full.
      std::unique_lock lock(sh->mu);
      while (sh->unanswered >= max_in_flight_ && !sh->write_failed && !ctx->IsCancelled())
        sh->cv.wait_for(lock, std::chrono::milliseconds(200));  // also notices cancellation
      if (sh->write_failed || ctx->IsCancelled()) break;
    }
    if (!stream->Read(&req)) break;
    {
      std::lock_guard lock(sh->mu);
      ++sh->unanswered;
    }
    const uint64_t seq = req.sequence();
    publisher_.Publish(**who, std::move(*req.mutable_envelope()), wctx, [sh, seq](absl::StatusOr<v1::Delivery> r) {
      v1::PublishStreamResponse resp;
      resp.set_sequence(seq);
      if (r.ok()) {
        *resp.mutable_ack() = *std::move(r);
      } else {
        auto* e = resp.mutable_error();
        e->set_code(static_cast<int>(r.status().code()));
        e->set_message(ShortMessage(r.status().message()));
        if (auto f = contracts::FieldPathOf(r.status())) e->set_field(*f);
      }
      std::lock_guard lock(sh->mu);
      sh->ready.push_back(std::move(resp));
      sh->cv.notify_all();
    });
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
