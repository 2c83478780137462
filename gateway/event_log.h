#pragma once

#include <absl/status/statusor.h>

#include "common/pg_pool.h"
#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "sluice/v1/event_query.pb.h"

namespace sluice::gateway {

// ListEvents and GetEvent over event_log. Thread-safe.
class EventLog {
 public:
  // GetEventResponse.chain holds at most this many events.
  static constexpr int kMaxChain = 200;
  EventLog(common::PgPool& pool, const contracts::Catalog& catalog, const contracts::Authorizer& authz)
      : pool_(pool), catalog_(catalog), authz_(authz) {}
  absl::StatusOr<v1::ListEventsResponse> List(const v1::Principal& who, const v1::ListEventsRequest& req);
  absl::StatusOr<v1::GetEventResponse> Get(const v1::Principal& who, const v1::GetEventRequest& req);

 private:
  common::PgPool& pool_;
  const contracts::Catalog& catalog_;
  const contracts::Authorizer& authz_;
};

}  // namespace sluice::gateway
