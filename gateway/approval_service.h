#pragma once

#include "gateway/approvals.h"
#include "gateway/auth.h"
#include "sluice/v1/approval_service.grpc.pb.h"

namespace sluice::gateway {

// The gRPC face of Approvals (synchronous API; each call runs one transaction).
class ApprovalServiceImpl final : public v1::ApprovalService::Service {
 public:
  ApprovalServiceImpl(const TokenStore& tokens, Approvals& approvals) : tokens_(tokens), approvals_(approvals) {}
  grpc::Status CreateApproval(grpc::ServerContext*, const v1::CreateApprovalRequest*,
                              v1::CreateApprovalResponse*) override;
  grpc::Status GetApproval(grpc::ServerContext*, const v1::GetApprovalRequest*, v1::GetApprovalResponse*) override;
  grpc::Status ListApprovals(grpc::ServerContext*, const v1::ListApprovalsRequest*,
                             v1::ListApprovalsResponse*) override;
  grpc::Status Approve(grpc::ServerContext*, const v1::ApproveRequest*, v1::ApproveResponse*) override;
  grpc::Status Reject(grpc::ServerContext*, const v1::RejectRequest*, v1::RejectResponse*) override;
  grpc::Status Cancel(grpc::ServerContext*, const v1::CancelRequest*, v1::CancelResponse*) override;

 private:
  const TokenStore& tokens_;
  Approvals& approvals_;
};

}  // namespace sluice::gateway
