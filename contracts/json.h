#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <google/protobuf/message.h>

#include <string>
#include <string_view>

namespace sluice::contracts {

// Protobuf's canonical JSON mapping (lowerCamelCase names, RFC 3339 timestamps,
// enum names). `pretty` adds newlines and indentation.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& msg, bool pretty = false);

// Parses protobuf JSON into `msg` (cleared first). Accepts both lowerCamelCase and
// proto field names; unknown fields are an error (InvalidArgument naming the problem).
// Closed sets may also be spelled the short way (tier1, A, high; contracts/spellings.h).
absl::Status FromJson(std::string_view json, google::protobuf::Message& msg);

}  // namespace sluice::contracts
