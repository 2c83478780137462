#include "gateway/data_refresh_service.h"

#include <future>
#include <string>
#include <string_view>
#include <utility>

#include "contracts/validate.h"
#include "gateway/grpc_status.h"

namespace sluice::gateway {
namespace {

absl::StatusOr<v1::Delivery> Wait(Publisher& publisher, const v1::Principal& who, v1::Envelope env,
                                  const WorkflowContext& ctx) {
  std::promise<absl::StatusOr<v1::Delivery>> p;
  auto f = p.get_future();
  publisher.Publish(who, std::move(env), ctx, [&p](absl::StatusOr<v1::Delivery> r) { p.set_value(std::move(r)); });
  return f.get();
}

// Request field names for errors in the data.refreshed payload it builds.
std::string RequestField(std::string_view path) {
  if (path == "data_refreshed.service") return "schema";
  for (std::string_view prefix : {"data_refreshed.service.", "data_refreshed."})
    if (path.substr(0, prefix.size()) == prefix) return std::string(path.substr(prefix.size()));
  return std::string(path);
}

}  // namespace

grpc::Status DataRefreshServiceImpl::NotifyDataRefreshed(grpc::ServerContext* ctx,
                                                         const v1::NotifyDataRefreshedRequest* req,
                                                         v1::NotifyDataRefreshedResponse* resp) {
  auto who = tokens_.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  v1::Envelope e;
  e.set_id(req->event_id());
  e.set_tenant_id(req->tenant_id());
  e.set_source(req->source().empty() ? "etl.pipeline" : req->source());
  e.set_correlation_id(req->correlation_id());
  auto* p = e.mutable_data_refreshed();
  p->set_entity_urn(req->entity_urn());
  if (!req->schema().empty() || !req->table().empty()) {
    p->mutable_service()->set_schema(req->schema());
    p->mutable_service()->set_table(req->table());
  }
  p->set_rows_affected(req->rows_affected());
  p->set_refresh_type(req->refresh_type());
  if (req->has_completed_at()) {
    *p->mutable_completed_at() = req->completed_at();
  } else {
    const absl::Time now = absl::Now();
    p->mutable_completed_at()->set_seconds(absl::ToUnixSeconds(now));
  }
  if (req->has_triggered_by()) *p->mutable_triggered_by() = req->triggered_by();
  if (req->rows_affected() < 0) return ToGrpcStatus(absl::InvalidArgumentError("rows_affected: must not be negative"));
  auto d = Wait(publisher_, **who, std::move(e), WorkflowContextOf(*ctx));
  if (!d.ok()) {
    auto violations = contracts::ViolationsOf(d.status());
    if (violations.empty()) return ToGrpcStatus(d.status());
    // Name the request's own fields rather than the event's, every one of them.
    for (auto& v : violations) {
      const std::string f = RequestField(v.field);
      if (v.description.rfind(v.field, 0) == 0) v.description = f + v.description.substr(v.field.size());
      v.field = f;
    }
    return ToGrpcStatus(contracts::InvalidFields(violations));
  }
  *resp->mutable_delivery() = *std::move(d);
  return grpc::Status::OK;
}

}  // namespace sluice::gateway
