#pragma once

#include <absl/status/status.h>
#include <grpcpp/support/status.h>

namespace sluice::gateway {

// The one place an absl::Status becomes a grpc::Status. Codes map one to one. An
// InvalidArgument from validation (contracts::FieldPathOf) carries a google.rpc.Status
// with a google.rpc.BadRequest in the status details, one field violation for each
// field that is wrong (contracts::ViolationsOf), which clients read with their
// language's rich-status helpers. A status carrying a PostgreSQL SQLSTATE
// goes out as "database error (SQLSTATE x)" without PostgreSQL's text, which is logged.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace sluice::gateway
