#include "gateway/source_activity.h"

#include <algorithm>

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

void SourceActivity::Published(std::string_view tenant, std::string_view source, absl::Time now) {
  const int64_t sec = absl::ToUnixSeconds(now);
  std::lock_guard lock(mu_);
  State& s = At(tenant, source, now);
  ++s.published;
  s.last_seen = std::max(s.last_seen, now);
  const int slot = static_cast<int>(((sec % 60) + 60) % 60);
  if (s.stamp[slot] != sec) {
    s.stamp[slot] = sec;
    s.second[slot] = 0;
  }
  ++s.second[slot];
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
    for (int i = 0; i < 60; ++i)
      if (s.stamp[i] > sec - 60 && s.stamp[i] <= sec) recent += s.second[i];
    out.push_back({.tenant = key.first,
                   .source = key.second,
                   .rate_per_s = static_cast<double>(recent) / 60.0,
                   .published = s.published,
                   .rate_limited = s.rate_limited,
                   .last_seen = s.last_seen});
  }
  return out;
}

size_t SourceActivity::size() const {
  std::lock_guard lock(mu_);
  return states_.size();
}

}  // namespace sluice::gateway
