#include "gateway/grpc_status.h"

#include "contracts/validate.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace sluice::gateway {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(static_cast<int>(status.code()));
  std::string message(status.message());
  auto field = contracts::FieldPathOf(status);
  if (!field.has_value()) return grpc::Status(code, message);

  google::rpc::BadRequest bad;
  auto* v = bad.add_field_violations();
  v->set_field(*field);
  v->set_description(message);
  google::rpc::Status rich;
  rich.set_code(static_cast<int>(status.code()));
  rich.set_message(message);
  rich.add_details()->PackFrom(bad);
  return grpc::Status(code, message, rich.SerializeAsString());
}

}  // namespace sluice::gateway
