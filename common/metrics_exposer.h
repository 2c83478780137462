#pragma once

#include <absl/status/statusor.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace sluice::common {

// Serves `registry` on http://`listen`/metrics for a service's lifetime; nullptr when
// `listen` is empty (metrics disabled). Unavailable when the address cannot be bound.
// Header-only: only the service binaries include it (and link prometheus-cpp::pull).
inline absl::StatusOr<std::unique_ptr<prometheus::Exposer>> StartMetricsExposer(
    const std::string& listen, const std::shared_ptr<prometheus::Registry>& registry) {
  if (listen.empty()) return std::unique_ptr<prometheus::Exposer>();
  try {
    auto exposer = std::make_unique<prometheus::Exposer>(listen);
    exposer->RegisterCollectable(registry);
    return exposer;
  } catch (const std::exception& e) {
    return absl::UnavailableError(std::string("metrics on ") + listen + ": " + e.what());
  }
}

}  // namespace sluice::common
