#pragma once

#include "gateway/auth.h"
#include "gateway/publisher.h"
#include "sluice/v1/gateway.grpc.pb.h"

namespace sluice::gateway {

// NotifyDataRefreshed: builds a data.refreshed event from the request and publishes it
// through the Publisher, waiting for the broker's acknowledgement.
class DataRefreshServiceImpl final : public v1::DataRefreshService::Service {
 public:
  DataRefreshServiceImpl(const TokenStore& tokens, Publisher& publisher) : tokens_(tokens), publisher_(publisher) {}

  grpc::Status NotifyDataRefreshed(grpc::ServerContext* ctx, const v1::NotifyDataRefreshedRequest* req,
                                   v1::NotifyDataRefreshedResponse* resp) override;

 private:
  const TokenStore& tokens_;
  Publisher& publisher_;
};

}  // namespace sluice::gateway
