#pragma once

#include <absl/status/statusor.h>

#include "common/pg_pool.h"
#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "sluice/v1/event_query.pb.h"

namespace sluice::gateway {

// ListEvents over event_log. Thread-safe.
class EventLog {
 public:
  EventLog(common::PgPool& pool, const contracts::Catalog& catalog, const contracts::Authorizer& authz)
      : pool_(pool), catalog_(catalog), authz_(authz) {}
  absl::StatusOr<v1::ListEventsResponse> List(const v1::Principal& who, const v1::ListEventsRequest& req);

 private:
  common::PgPool& pool_;
  const contracts::Catalog& catalog_;
  const contracts::Authorizer& authz_;
};

}  // namespace sluice::gateway
