#pragma once

#include <fmt/format.h>

#include <iterator>
#include <string>

namespace sluice::common {

// Concatenates anything fmt can format (std::string_view included, which Debian's
// absl::StrCat does not take: that abseil has its own string_view).
template <class... Args>
std::string Cat(const Args&... args) {
  std::string out;
  (fmt::format_to(std::back_inserter(out), "{}", args), ...);
  return out;
}

}  // namespace sluice::common
