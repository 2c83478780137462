#include "gateway/approval_service.h"

#include <utility>

#include "gateway/grpc_status.h"

namespace sluice::gateway {

#define SLUICE_APPROVAL_RPC(Method, Call, Assign)                                                    \
  grpc::Status ApprovalServiceImpl::Method(grpc::ServerContext* ctx, const v1::Method##Request* req, \
                                           v1::Method##Response* resp) {                             \
    auto who = tokens_.Authenticate(*ctx);                                                           \
    if (!who.ok()) return ToGrpcStatus(who.status());                                                \
    auto r = approvals_.Call(**who, *req);                                                           \
    if (!r.ok()) return ToGrpcStatus(r.status());                                                    \
    Assign;                                                                                          \
    return grpc::Status::OK;                                                                         \
  }

SLUICE_APPROVAL_RPC(CreateApproval, Create, *resp->mutable_approval() = *std::move(r))
SLUICE_APPROVAL_RPC(GetApproval, Get, *resp->mutable_approval() = *std::move(r))
SLUICE_APPROVAL_RPC(ListApprovals, List, *resp = *std::move(r))
SLUICE_APPROVAL_RPC(Approve, Approve, *resp = *std::move(r))
SLUICE_APPROVAL_RPC(Reject, Reject, *resp = *std::move(r))
SLUICE_APPROVAL_RPC(Cancel, Cancel, *resp->mutable_approval() = *std::move(r))
#undef SLUICE_APPROVAL_RPC

}  // namespace sluice::gateway
