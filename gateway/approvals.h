#pragma once

#include <absl/status/statusor.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/pg_pool.h"
#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "sluice/v1/approval_service.pb.h"

namespace sluice::gateway {

// The bounded PostgreSQL pool and InTransaction live in common/pg_pool.h.
using common::InTransaction;
using common::PgPool;

// Entity types, tiers, lanes and statuses and their database spellings, the entity
// tables and their upserts: contracts/governance.h.

// The approval workflow (the ApprovalService RPCs without gRPC), on PostgreSQL with the
// transactional outbox. Thread-safe.
class Approvals {
 public:
  // `authz` decides tenants, roles and requester != decider; the role an approval needs
  // comes from its policy, never from the request.
  Approvals(PgPool& pool, const contracts::Catalog& catalog, const contracts::Authorizer& authz)
      : pool_(pool), catalog_(catalog), authz_(authz) {}

  // `trace`: the call's W3C traceparent ("" or invalid: none). Create stores it with the
  // approval; every event an approval emits carries a child span of the deciding call's
  // trace, or of the stored one when the decision came without a trace.
  absl::StatusOr<v1::Approval> Create(const v1::Principal& who, const v1::CreateApprovalRequest& req,
                                      const std::string& trace = "");
  absl::StatusOr<v1::Approval> Get(const v1::Principal& who, const v1::GetApprovalRequest& req);
  absl::StatusOr<v1::ListApprovalsResponse> List(const v1::Principal& who, const v1::ListApprovalsRequest& req);
  absl::StatusOr<v1::ApproveResponse> Approve(const v1::Principal& who, const v1::ApproveRequest& req,
                                              const std::string& trace = "");
  absl::StatusOr<v1::RejectResponse> Reject(const v1::Principal& who, const v1::RejectRequest& req,
                                            const std::string& trace = "");
  absl::StatusOr<v1::Approval> Cancel(const v1::Principal& who, const v1::CancelRequest& req);

 private:
  PgPool& pool_;
  const contracts::Catalog& catalog_;
  const contracts::Authorizer& authz_;
};

}  // namespace sluice::gateway
