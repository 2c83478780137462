#pragma once

#include <absl/status/status.h>
#include <grpcpp/support/status.h>

#include <string>

namespace sluice::gateway {

// The one place an absl::Status becomes a grpc::Status. Codes map one to one. An
// InvalidArgument from validation (contracts::FieldPathOf) carries a google.rpc.Status
// with a google.rpc.BadRequest in the status details, one field violation for each
// field that is wrong (contracts::ViolationsOf), which clients read with their
// language's rich-status helpers. A status carrying a PostgreSQL SQLSTATE
// goes out as "database error (SQLSTATE x)" without PostgreSQL's text, which is logged.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The message a caller may read: the status's own, or "database error (SQLSTATE x)" for
// one carrying a SQLSTATE and "database unavailable" for libpq's own (a failed connect),
// whose text is logged instead. Also the HTTP API's.
std::string CallerMessage(const absl::Status& status);

}  // namespace sluice::gateway
