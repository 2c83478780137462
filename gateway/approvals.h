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
#include "gateway/auth.h"
#include "sluice/v1/approval_service.grpc.pb.h"

namespace sluice::gateway {

// The bounded PostgreSQL pool and InTransaction live in common/pg_pool.h.
using common::InTransaction;
using common::PgPool;

// The entity tables behind approvals, shared with `sluicectl audit verify`.
// "GLOBAL_METADATA", "KPI", "GLOSSARY", "BUSINESS_RULE"; nullptr for other types.
const char* EntityTypeDb(v1::EntityType type);
v1::EntityType EntityTypeOf(std::string_view db);
// "mdm_global_metadata", ...; unique on (tenant_id, canonical_key). nullptr for other types.
const char* EntityTable(v1::EntityType type);
// What approving does to the entity table: $1 tenant, $2 canonical key, $3 payload JSON,
// $4 tier ("tier1"). Returns the entity id and its state before the change (NULL: new).
const char* EntityUpsertSql(v1::EntityType type);

// The approval workflow (the ApprovalService RPCs without gRPC), on PostgreSQL with the
// transactional outbox. Thread-safe.
class Approvals {
 public:
  // `authz` decides tenants, roles and requester != decider; the role an approval needs
  // comes from its policy, never from the request.
  Approvals(PgPool& pool, const contracts::Catalog& catalog, const contracts::Authorizer& authz)
      : pool_(pool), catalog_(catalog), authz_(authz) {}

  absl::StatusOr<v1::Approval> Create(const v1::Principal& who, const v1::CreateApprovalRequest& req);
  absl::StatusOr<v1::Approval> Get(const v1::Principal& who, const v1::GetApprovalRequest& req);
  absl::StatusOr<v1::ListApprovalsResponse> List(const v1::Principal& who, const v1::ListApprovalsRequest& req);
  absl::StatusOr<v1::ApproveResponse> Approve(const v1::Principal& who, const v1::ApproveRequest& req);
  absl::StatusOr<v1::RejectResponse> Reject(const v1::Principal& who, const v1::RejectRequest& req);
  absl::StatusOr<v1::Approval> Cancel(const v1::Principal& who, const v1::CancelRequest& req);

 private:
  PgPool& pool_;
  const contracts::Catalog& catalog_;
  const contracts::Authorizer& authz_;
};

// The gRPC face of Approvals (synchronous API; each call runs one transaction).
class ApprovalServiceImpl final : public v1::ApprovalService::Service {
 public:
  ApprovalServiceImpl(const TokenStore& tokens, Approvals& approvals) : tokens_(tokens), approvals_(approvals) {}
  grpc::Status CreateApproval(grpc::ServerContext*, const v1::CreateApprovalRequest*, v1::CreateApprovalResponse*) override;
  grpc::Status GetApproval(grpc::ServerContext*, const v1::GetApprovalRequest*, v1::GetApprovalResponse*) override;
  grpc::Status ListApprovals(grpc::ServerContext*, const v1::ListApprovalsRequest*, v1::ListApprovalsResponse*) override;
  grpc::Status Approve(grpc::ServerContext*, const v1::ApproveRequest*, v1::ApproveResponse*) override;
  grpc::Status Reject(grpc::ServerContext*, const v1::RejectRequest*, v1::RejectResponse*) override;
  grpc::Status Cancel(grpc::ServerContext*, const v1::CancelRequest*, v1::CancelResponse*) override;

 private:
  const TokenStore& tokens_;
  Approvals& approvals_;
};

}  // namespace sluice::gateway
