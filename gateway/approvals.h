#pragma once

#include <absl/status/statusor.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "contracts/catalog.h"
#include "gateway/auth.h"
#include "sluice/v1/approval_service.grpc.pb.h"

namespace sluice::gateway {

// A few PostgreSQL connections shared by request threads. Thread-safe.
class PgPool {
 public:
  PgPool(std::string dsn, std::string schema, size_t max_idle = 8)
      : dsn_(std::move(dsn)), schema_(std::move(schema)), max_idle_(max_idle) {}
  // A connection for the caller's exclusive use, returned to the pool by Release.
  absl::StatusOr<std::unique_ptr<common::PgConnection>> Acquire();
  // Back to the pool; a connection that failed with kUnavailable is closed instead.
  void Release(std::unique_ptr<common::PgConnection> conn, const absl::Status& last);

 private:
  const std::string dsn_, schema_;
  const size_t max_idle_;
  std::mutex mu_;
  std::vector<std::unique_ptr<common::PgConnection>> idle_;
};

// Runs `body` in a transaction on a pooled connection; rolls back on any error.
// A pooled connection whose server went away (restart, failover) fails at BEGIN, before
// anything was done: it is dropped and the transaction starts once more on a new one.
template <class T, class F>
absl::StatusOr<T> InTransaction(PgPool& pool, F&& body) {
  auto conn = pool.Acquire();
  if (!conn.ok()) return conn.status();
  absl::Status s = (*conn)->ExecScript("BEGIN");
  if (s.code() == absl::StatusCode::kUnavailable) {
    pool.Release(*std::move(conn), s);  // closes it
    conn = pool.Acquire();
    if (!conn.ok()) return conn.status();
    s = (*conn)->ExecScript("BEGIN");
  }
  absl::StatusOr<T> result = s.ok() ? body(**conn) : absl::StatusOr<T>(s);
  if (result.ok()) {
    s = (*conn)->ExecScript("COMMIT");
    if (!s.ok()) result = s;
  } else {
    (void)(*conn)->ExecScript("ROLLBACK");
  }
  pool.Release(*std::move(conn), result.status());
  return result;
}

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
  Approvals(PgPool& pool, const contracts::Catalog& catalog) : pool_(pool), catalog_(catalog) {}

  absl::StatusOr<v1::Approval> Create(const v1::Principal& who, const v1::CreateApprovalRequest& req);
  absl::StatusOr<v1::Approval> Get(const v1::Principal& who, const v1::GetApprovalRequest& req);
  absl::StatusOr<v1::ListApprovalsResponse> List(const v1::Principal& who, const v1::ListApprovalsRequest& req);
  absl::StatusOr<v1::ApproveResponse> Approve(const v1::Principal& who, const v1::ApproveRequest& req);
  absl::StatusOr<v1::RejectResponse> Reject(const v1::Principal& who, const v1::RejectRequest& req);
  absl::StatusOr<v1::Approval> Cancel(const v1::Principal& who, const v1::CancelRequest& req);

 private:
  PgPool& pool_;
  const contracts::Catalog& catalog_;
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
  absl::StatusOr<const v1::Principal*> Who(grpc::ServerContext* ctx) const;
  const TokenStore& tokens_;
  Approvals& approvals_;
};

}  // namespace sluice::gateway
