#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <string>

#include "common/env.h"

namespace sluice::common {

void InitLogging(std::string_view service, std::string_view level) {
  auto logger = spdlog::stderr_logger_mt(std::string(service));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %n: %v", spdlog::pattern_time_type::utc);
  std::string lvl = EnvOr("SLUICE_LOG_LEVEL", level.empty() ? "info" : level);
  logger->set_level(spdlog::level::from_str(lvl));
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace sluice::common
