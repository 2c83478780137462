#pragma once

#include <absl/status/statusor.h>

#include <string>

namespace sluice::common {

// The whole content of a file (token files, TLS keys, catalogs, test vectors);
// NotFound naming the path when it cannot be read.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace sluice::common
