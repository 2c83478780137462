#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace sluice::common {

// Sets up the process-wide logger: one line per record on stderr, prefixed with UTC
// time, level and `service`. `level` is trace|debug|info|warn|error (default info;
// SLUICE_LOG_LEVEL overrides it). Call once from main before starting threads.
void InitLogging(std::string_view service, std::string_view level = "");

}  // namespace sluice::common
