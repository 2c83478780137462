#pragma once

#include <absl/status/statusor.h>

#include <string>
#include <vector>

#include "sluice/v1/envelope.pb.h"

namespace sluice::cli {

// Reads envelopes from text: one JSON object (protobuf JSON mapping), JSON lines (one
// object per line), or one protobuf text-format Envelope. Errors name the line.
absl::StatusOr<std::vector<v1::Envelope>> ParseEnvelopes(const std::string& text);

}  // namespace sluice::cli
