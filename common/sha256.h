#pragma once

#include <string>
#include <string_view>

namespace sluice::common {

// SHA-256 of `data` as 64 lower-case hex digits. Token files store bearer tokens this
// way; cursors use a prefix as a filter digest. Stateless; thread-safe.
std::string Sha256Hex(std::string_view data);

}  // namespace sluice::common
