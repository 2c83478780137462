#pragma once

#include <absl/time/clock.h>
#include <absl/time/time.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::gateway {

// What the gateway accepted per (tenant, source): totals, a one-minute rate and the last
// event. Keyed by tenant so GetEventHealth shows each caller its own tenants only. At
// most kMaxTracked pairs are kept; past that the least recently seen is forgotten, so a
// caller inventing tenants cannot grow it. Thread-safe.
class SourceActivity {
 public:
  static constexpr size_t kMaxTracked = 10000;
  struct Snapshot {
    std::string tenant;
    std::string source;
    double rate_per_s = 0;  // accepted in the last 60 s / 60
    int64_t published = 0;
    int64_t rate_limited = 0;
    absl::Time last_seen = absl::InfinitePast();
    // Accepted minus occurred_at: of the last event, and over the events of the last 60 s
    // (recent is false, and these zero, without any).
    bool recent = false;
    absl::Duration lag_latest, lag_avg, lag_max;
  };
  // `lag`: when the event was accepted minus its occurred_at.
  void Published(std::string_view tenant, std::string_view source, absl::Time now = absl::Now(),
                 absl::Duration lag = absl::ZeroDuration());
  void RateLimited(std::string_view tenant, std::string_view source, absl::Time now = absl::Now());
  std::vector<Snapshot> Snapshots(absl::Time now = absl::Now()) const;
  size_t size() const;

 private:
  struct State {
    int64_t published = 0, rate_limited = 0;
    absl::Time last_seen = absl::InfinitePast();
    absl::Time touched = absl::InfinitePast();  // last event of any kind (for eviction)
    int64_t second[60] = {};                    // accepted per second, indexed by unix second % 60
    int64_t stamp[60] = {};                     // the unix second each slot counts
    double lag_sum_us[60] = {};                 // the slot's events' lags, summed
    int64_t lag_max_us[60] = {};                // and the largest
    int64_t lag_last_us = 0;                    // the last event's
  };
  State& At(std::string_view tenant, std::string_view source, absl::Time now);

  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, State> states_;
};

}  // namespace sluice::gateway
