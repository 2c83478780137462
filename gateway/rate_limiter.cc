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
  for (const auto& l : config.limits()) states_[l.source()].limit = l;
}

RateLimiter::RateLimiter(RateLimiter&& other) noexcept {
  std::lock_guard lock(other.mu_);
  states_ = std::move(other.states_);
}

absl::Status RateLimiter::Admit(std::string_view source, absl::Time now) {
  std::lock_guard lock(mu_);
  auto it = states_.find(source);
  if (it == states_.end()) return absl::OkStatus();
  State& s = it->second;
  if (now < s.paused_until)
    return absl::ResourceExhaustedError(
        common::Cat("source ", source, " is paused by its rate limit until ", absl::FormatTime(s.paused_until)));
  if (now - s.window_start >= absl::Milliseconds(s.limit.interval_ms())) {
    s.window_start = now;
    s.count = 0;
  }
  if (++s.count > s.limit.limit()) {
    s.paused_until = now + absl::Milliseconds(s.limit.pause_ms());
    s.window_start = s.paused_until;  // a fresh window after the pause
    s.count = 0;
    return absl::ResourceExhaustedError(common::Cat("source ", source, " exceeded ", s.limit.limit(), " events per ",
                                                    s.limit.interval_ms(), " ms; paused until ",
                                                    absl::FormatTime(s.paused_until)));
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, absl::Time>> RateLimiter::Paused(absl::Time now) const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, absl::Time>> out;
  for (const auto& [source, s] : states_)
    if (now < s.paused_until) out.emplace_back(source, s.paused_until);
  return out;
}

}  // namespace sluice::gateway
