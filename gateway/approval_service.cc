#include "gateway/approval_service.h"

#include <utility>

#include "contracts/governance.h"
#include "contracts/validate.h"
#include "gateway/grpc_status.h"
#include "gateway/publisher.h"

namespace sluice::gateway {

ApprovalServiceImpl::ApprovalServiceImpl(const TokenStore& tokens, Approvals& approvals, prometheus::Registry& registry)
    : tokens_(tokens),
      approvals_(approvals),
      decisions_(prometheus::BuildCounter()
                     .Name("sluice_approvals_total")
                     .Help("Approvals created, approved, rejected and cancelled, by entity type and tier")
                     .Register(registry)) {}

void ApprovalServiceImpl::Count(const v1::Approval& a, std::string_view decision) {
  std::string type = contracts::EntityTypeDb(a.entity_type());
  std::string tier = contracts::TierDb(a.tier());
  decisions_
      .Add({{"entity_type", type.empty() ? "other" : type},
            {"tier", tier.empty() ? "other" : tier},
            {"decision", std::string(decision)}})
      .Increment();
}

namespace {
// The call's "traceparent" metadata, trimmed; "" when absent or not a W3C traceparent.
std::string CallTrace(const grpc::ServerContext& ctx) {
  std::string tp = WorkflowContextOf(ctx).traceparent;
  while (!tp.empty() && (tp.back() == ' ' || tp.back() == '\t')) tp.pop_back();
  while (!tp.empty() && (tp.front() == ' ' || tp.front() == '\t')) tp.erase(tp.begin());
  return contracts::IsValidTraceparent(tp) ? tp : "";
}

// The approval a response carries (every response that counts has one).
template <typename Response>
const v1::Approval& ApprovalOf(const Response& r) {
  return r.approval();
}
const v1::Approval& ApprovalOf(const v1::ListApprovalsResponse&) { return v1::Approval::default_instance(); }
}  // namespace

// Decision: what a successful call counts in sluice_approvals_total, or nullptr.
// Args: the arguments after the principal and the request (the call's traceparent for
// the calls that emit events).
#define SLUICE_APPROVAL_RPC(Method, Call, Args, Assign, Decision)                                    \
  grpc::Status ApprovalServiceImpl::Method(grpc::ServerContext* ctx, const v1::Method##Request* req, \
                                           v1::Method##Response* resp) {                             \
    auto who = tokens_.Authenticate(*ctx);                                                           \
    if (!who.ok()) return ToGrpcStatus(who.status());                                                \
    auto r = approvals_.Call(**who, *req Args);                                                      \
    if (!r.ok()) return ToGrpcStatus(r.status());                                                    \
    Assign;                                                                                          \
    if (const char* decision = Decision; decision != nullptr) Count(ApprovalOf(*resp), decision);    \
    return grpc::Status::OK;                                                                         \
  }

#define SLUICE_TRACE , CallTrace(*ctx)
SLUICE_APPROVAL_RPC(CreateApproval, Create, SLUICE_TRACE, *resp->mutable_approval() = *std::move(r), "created")
SLUICE_APPROVAL_RPC(GetApproval, Get, , *resp->mutable_approval() = *std::move(r), nullptr)
SLUICE_APPROVAL_RPC(ListApprovals, List, , *resp = *std::move(r), nullptr)
SLUICE_APPROVAL_RPC(Approve, Approve, SLUICE_TRACE, *resp = *std::move(r), "approved")
SLUICE_APPROVAL_RPC(Reject, Reject, SLUICE_TRACE, *resp = *std::move(r), "rejected")
SLUICE_APPROVAL_RPC(Cancel, Cancel, , *resp->mutable_approval() = *std::move(r), "cancelled")
#undef SLUICE_TRACE
#undef SLUICE_APPROVAL_RPC

}  // namespace sluice::gateway
