#include "gateway/grpc_status.h"

#include <spdlog/spdlog.h>

#include "common/pg.h"
#include "common/strings.h"
#include "contracts/validate.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace sluice::gateway {

std::string CallerMessage(const absl::Status& status) {
  std::string message(status.message());
  // PostgreSQL's own message can quote row contents, other tenants' included: callers get
  // the SQLSTATE only, the operator's log the whole text.
  if (const std::string state = common::SqlState(status); !state.empty()) {
    spdlog::warn("gateway: database error answered as {}: {}", absl::StatusCodeToString(status.code()), message);
    return common::Cat("database error (SQLSTATE ", state, ")");
  }
  if (common::IsPgError(status)) {  // a connection failure: its text names hosts and users
    spdlog::warn("gateway: database error answered as {}: {}", absl::StatusCodeToString(status.code()), message);
    return "database unavailable";
  }
  return message;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(static_cast<int>(status.code()));
  std::string message = CallerMessage(status);
  if (common::IsPgError(status)) return grpc::Status(code, message);
  const auto violations = contracts::ViolationsOf(status);
  if (violations.empty()) return grpc::Status(code, message);

  google::rpc::BadRequest bad;
  for (const auto& violation : violations) {
    auto* v = bad.add_field_violations();
    v->set_field(violation.field);
    v->set_description(violation.description);
  }
  google::rpc::Status rich;
  rich.set_code(static_cast<int>(status.code()));
  rich.set_message(message);
  rich.add_details()->PackFrom(bad);
  return grpc::Status(code, message, rich.SerializeAsString());
}

}  // namespace sluice::gateway
