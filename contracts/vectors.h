#pragma once

#include <absl/status/statusor.h>

#include <string>
#include <vector>

#include "sluice/v1/envelope.pb.h"

namespace sluice::contracts {

// One golden vector: contracts/vectors/<type>.textproto and its .binpb.
struct Vector {
  std::string type;         // from the file name
  std::string text_path;    // .textproto
  std::string binary_path;  // .binpb (may not exist yet)
  v1::Envelope envelope;    // parsed from the text form
};

// Reads every *.textproto under `dir`, sorted by name; InvalidArgument naming the file
// when one does not parse as a sluice.v1.Envelope.
absl::StatusOr<std::vector<Vector>> LoadVectors(const std::string& dir);

}  // namespace sluice::contracts
