#include "gateway/rate_limiter.h"

#include "common/strings.h"
#include "contracts/json.h"

namespace sluice::gateway {

absl::StatusOr<RateLimiter> RateLimiter::FromJson(std::string_view json) {
  v1::RateLimitConfig config;
  std::string text(json);
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return RateLimiter();
  if (text[first] == '[') text = common::Cat("{\"limits\":", text, "}");  // the reference's bare array
  if (auto s = contracts::FromJson(text, config); !s.ok())
    return absl::InvalidArgumentError(common::Cat("rate limits: ", s.message()));
  for (int i = 0; i < config.limits_size(); ++i) {
    const auto& l = config.limits(i);
    std::string at = common::Cat("rate limits[", i, "] (", l.source(), ")");
    if (l.source().empty()) return absl::InvalidArgumentError(common::Cat(at, ".source: required"));
    if (l.limit() <= 0) return absl::InvalidArgumentError(common::Cat(at, ".limit: must be positive"));
    if (l.interval_ms() <= 0) return absl::InvalidArgumentError(common::Cat(at, ".intervalMs: must be positive"));
    if (l.pause_ms() < 0) return absl::InvalidArgumentError(common::Cat(at, ".pauseMs: must not be negative"));
  }
  return RateLimiter(config);
}

RateLimiter::RateLimiter(const v1::RateLimitConfig& config) {
  for (const auto& l : config.limits()) limits_[l.source()] = l;
}

RateLimiter::RateLimiter(RateLimiter&& other) noexcept {
  std::lock_guard lock(other.mu_);
  limits_ = std::move(other.limits_);
  states_ = std::move(other.states_);
}

void RateLimiter::ForgetIdleLocked(absl::Time now) {
  for (auto it = states_.begin(); it != states_.end();) {
    const auto& limit = limits_.at(it->first.second);
    const bool idle =
        now >= it->second.paused_until && now - it->second.window_start >= absl::Milliseconds(limit.interval_ms());
    it = idle ? states_.erase(it) : std::next(it);
  }
}

absl::Status RateLimiter::Admit(std::string_view tenant, std::string_view source, absl::Time now) {
  std::lock_guard lock(mu_);
  auto lim = limits_.find(source);
  if (lim == limits_.end()) return absl::OkStatus();
  const v1::SourceRateLimit& limit = lim->second;
  auto it = states_.find(std::pair<std::string, std::string>(tenant, source));
  if (it == states_.end()) {
    if (states_.size() >= kMaxTracked) ForgetIdleLocked(now);
    if (states_.size() >= kMaxTracked)
      return absl::ResourceExhaustedError(
          common::Cat("rate limiter tracks ", kMaxTracked, " busy (tenant, source) pairs; try again shortly"));
    it = states_.emplace(std::pair<std::string, std::string>(tenant, source), State{}).first;
  }
  State& s = it->second;
  if (now < s.paused_until)
    return absl::ResourceExhaustedError(common::Cat("source ", source, " of tenant ", tenant,
                                                    " is paused by its rate limit until ",
                                                    absl::FormatTime(s.paused_until)));
  if (now - s.window_start >= absl::Milliseconds(limit.interval_ms())) {
    s.window_start = now;
    s.count = 0;
  }
  if (++s.count > limit.limit()) {
    s.paused_until = now + absl::Milliseconds(limit.pause_ms());
    s.window_start = s.paused_until;  // a fresh window after the pause
    s.count = 0;
    return absl::ResourceExhaustedError(common::Cat("source ", source, " of tenant ", tenant, " exceeded ",
                                                    limit.limit(), " events per ", limit.interval_ms(),
                                                    " ms; paused until ", absl::FormatTime(s.paused_until)));
  }
  return absl::OkStatus();
}

std::vector<RateLimiter::Pause> RateLimiter::Paused(absl::Time now) const {
  std::lock_guard lock(mu_);
  std::vector<Pause> out;
  for (const auto& [key, s] : states_)
    if (now < s.paused_until) out.push_back({key.first, key.second, s.paused_until});
  return out;
}

const v1::SourceRateLimit* RateLimiter::LimitOf(std::string_view source) const {
  auto it = limits_.find(source);
  return it == limits_.end() ? nullptr : &it->second;
}

size_t RateLimiter::tracked() const {
  std::lock_guard lock(mu_);
  return states_.size();
}

}  // namespace sluice::gateway
