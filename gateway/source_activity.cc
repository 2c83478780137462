#include "gateway/source_activity.h"

#include <algorithm>
#include <climits>
#include <utility>

namespace sluice::gateway {

SourceActivity::State& SourceActivity::At(std::string_view tenant, std::string_view source, absl::Time now) {
  auto it = states_.find(std::pair<std::string, std::string>(tenant, source));
  if (it == states_.end()) {
    if (states_.size() >= kMaxTracked) {
      auto oldest = std::min_element(states_.begin(), states_.end(),
                                     [](const auto& a, const auto& b) { return a.second.touched < b.second.touched; });
      states_.erase(oldest);
    }
    it = states_.emplace(std::pair<std::string, std::string>(tenant, source), State{}).first;
  }
  it->second.touched = std::max(it->second.touched, now);
  return it->second;
}

void SourceActivity::Published(std::string_view tenant, std::string_view source, absl::Time now, absl::Duration lag) {
  const int64_t lag_us = absl::ToInt64Microseconds(lag);
  const int64_t sec = absl::ToUnixSeconds(now);
  std::lock_guard lock(mu_);
  State& s = At(tenant, source, now);
  ++s.published;
  s.last_seen = std::max(s.last_seen, now);
  const int slot = static_cast<int>(((sec % 60) + 60) % 60);
  if (s.stamp[slot] != sec) {
    s.stamp[slot] = sec;
    s.second[slot] = 0;
    s.lag_sum_us[slot] = 0;
    s.lag_max_us[slot] = lag_us;
  }
  ++s.second[slot];
  s.lag_sum_us[slot] += static_cast<double>(lag_us);  // (a double: lags can be centuries off)
  s.lag_max_us[slot] = std::max(s.lag_max_us[slot], lag_us);
  s.lag_last_us = lag_us;
}

void SourceActivity::RateLimited(std::string_view tenant, std::string_view source, absl::Time now) {
  std::lock_guard lock(mu_);
  ++At(tenant, source, now).rate_limited;
}

std::vector<SourceActivity::Snapshot> SourceActivity::Snapshots(absl::Time now) const {
  const int64_t sec = absl::ToUnixSeconds(now);
  std::lock_guard lock(mu_);
  std::vector<Snapshot> out;
  out.reserve(states_.size());
  for (const auto& [key, s] : states_) {
    int64_t recent = 0;
    double lag_sum = 0;
    int64_t lag_max = INT64_MIN;
    for (int i = 0; i < 60; ++i)
      if (s.stamp[i] > sec - 60 && s.stamp[i] <= sec && s.second[i] > 0) {
        recent += s.second[i];
        lag_sum += s.lag_sum_us[i];
        lag_max = std::max(lag_max, s.lag_max_us[i]);
      }
    Snapshot snap{.tenant = key.first,
                  .source = key.second,
                  .rate_per_s = static_cast<double>(recent) / 60.0,
                  .published = s.published,
                  .rate_limited = s.rate_limited,
                  .last_seen = s.last_seen};
    if (recent > 0) {
      snap.recent = true;
      snap.lag_latest = absl::Microseconds(s.lag_last_us);
      snap.lag_avg = absl::Microseconds(lag_sum / static_cast<double>(recent));
      snap.lag_max = absl::Microseconds(lag_max);
    }
    out.push_back(std::move(snap));
  }
  return out;
}

size_t SourceActivity::size() const {
  std::lock_guard lock(mu_);
  return states_.size();
}

}  // namespace sluice::gateway
