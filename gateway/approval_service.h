#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <string_view>

#include "gateway/approvals.h"
#include "gateway/auth.h"
#include "sluice/v1/approval_service.grpc.pb.h"

namespace sluice::gateway {

// The gRPC face of Approvals (synchronous API; each call runs one transaction). Counts
// what each successful call decided in sluice_approvals_total{entity_type, tier,
// decision}: created, approved, rejected or cancelled, by the approval's entity type and
// tier (closed sets: at most 4 x 6 x 5 series).
class ApprovalServiceImpl final : public v1::ApprovalService::Service {
 public:
  ApprovalServiceImpl(const TokenStore& tokens, Approvals& approvals, prometheus::Registry& registry);
  grpc::Status CreateApproval(grpc::ServerContext*, const v1::CreateApprovalRequest*,
                              v1::CreateApprovalResponse*) override;
  grpc::Status GetApproval(grpc::ServerContext*, const v1::GetApprovalRequest*, v1::GetApprovalResponse*) override;
  grpc::Status ListApprovals(grpc::ServerContext*, const v1::ListApprovalsRequest*,
                             v1::ListApprovalsResponse*) override;
  grpc::Status Approve(grpc::ServerContext*, const v1::ApproveRequest*, v1::ApproveResponse*) override;
  grpc::Status Reject(grpc::ServerContext*, const v1::RejectRequest*, v1::RejectResponse*) override;
  grpc::Status Cancel(grpc::ServerContext*, const v1::CancelRequest*, v1::CancelResponse*) override;

 private:
  void Count(const v1::Approval& a, std::string_view decision);

  const TokenStore& tokens_;
  Approvals& approvals_;
  prometheus::Family<prometheus::Counter>& decisions_;
};

}  // namespace sluice::gateway
