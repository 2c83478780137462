#pragma once

#include <algorithm>
#include <cstddef>

#include "gateway/auth.h"
#include "gateway/publisher.h"
#include "gateway/stream_slots.h"
#include "sluice/v1/gateway.grpc.pb.h"

namespace sluice::gateway {

// Publish and PublishBatch use gRPC's callback API: no thread waits for the broker; the
// call finishes from the (last) delivery callback. PublishStream stays on the synchronous
// API. Borrows everything it is given; thread-safe.
class EventGatewayServiceImpl final
    : public v1::EventGateway::WithCallbackMethod_Publish<
          v1::EventGateway::WithCallbackMethod_PublishBatch<v1::EventGateway::Service>> {
 public:
  // `max_in_flight`: events of one PublishStream unanswered before it stops reading;
  // `max_batch_events`: envelopes of one PublishBatch or PublishStream message.
  EventGatewayServiceImpl(const TokenStore& tokens, Publisher& publisher, size_t max_in_flight, StreamSlots& slots,
                          size_t max_batch_events)
      : tokens_(tokens),
        publisher_(publisher),
        max_in_flight_(std::max<size_t>(1, max_in_flight)),
        slots_(slots),
        max_batch_events_(std::max<size_t>(1, max_batch_events)) {}

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* ctx, const v1::PublishRequest* req,
                                    v1::PublishResponse* resp) override;
  grpc::ServerUnaryReactor* PublishBatch(grpc::CallbackServerContext* ctx, const v1::PublishBatchRequest* req,
                                         v1::PublishBatchResponse* resp) override;
  grpc::Status PublishStream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::PublishStreamResponse, v1::PublishStreamRequest>* stream) override;

 private:
  const TokenStore& tokens_;
  Publisher& publisher_;
  const size_t max_in_flight_;
  StreamSlots& slots_;
  const size_t max_batch_events_;
};

}  // namespace sluice::gateway
