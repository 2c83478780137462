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
