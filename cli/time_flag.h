#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <optional>
#include <string>
#include <string_view>

namespace sluice::cli {

// An ISO-8601 time flag; nullopt when empty.
inline absl::StatusOr<std::optional<absl::Time>> ParseTimeFlag(std::string_view flag, const std::string& text) {
  if (text.empty()) return std::optional<absl::Time>();
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err))
    return absl::InvalidArgumentError(std::string(flag) + ": \"" + text +
                                      "\" is not an ISO-8601 time such as 2026-11-22T08:00:00Z (" + err + ")");
  return std::optional<absl::Time>(t);
}

}  // namespace sluice::cli
