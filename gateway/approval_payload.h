#pragma once

// What an approval's payload must hold and what it changes: the payload checks of
// Approvals::Create and the changed_fields of the *.changed events Approve emits. Pure
// functions; thread-safe.

#include <absl/status/status.h>
#include <google/protobuf/struct.pb.h>

#include <string>
#include <vector>

#include "sluice/v1/common.pb.h"

namespace sluice::gateway {

// The string value of `key` in `s`; "" when absent or not a string.
std::string StringField(const google::protobuf::Struct& s, const std::string& key);

// Fields the entity's table requires, by payload key.
absl::Status ValidatePayload(v1::EntityType type, const google::protobuf::Struct& p);

// Payload keys whose value differs from the prior row (all of them for a new entity).
std::vector<std::string> ChangedFields(const google::protobuf::Struct& payload, const std::string& prior_json);

}  // namespace sluice::gateway
