#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/v1/config.pb.h"

namespace sluice::gateway {

// Per-source limits, counted for each (tenant, source) on its own, so one tenant's burst
// never pauses a source for the others: at most `limit` events in a window of `interval`,
// counted from the window's first event; the event over the limit pauses that tenant's
// source for `pause`, and every event of it during the pause is refused. Sources without a
// limit are never limited. At most kMaxTracked (tenant, source) pairs are counted at once;
// idle ones are forgotten first. Thread-safe.
class RateLimiter {
 public:
  // From --rate-limits JSON ({"limits":[...]} or a bare array); InvalidArgument naming the
  // entry when one is malformed.
  static absl::StatusOr<RateLimiter> FromJson(std::string_view json);
  explicit RateLimiter(const v1::RateLimitConfig& config = {});
  RateLimiter(RateLimiter&& other) noexcept;

  static constexpr size_t kMaxTracked = 100000;

  // OK, or ResourceExhausted saying until when the tenant's source is paused.
  absl::Status Admit(std::string_view tenant, std::string_view source, absl::Time now = absl::Now());

  struct Pause {
    std::string tenant, source;
    absl::Time until;
  };
  // (tenant, source) pairs paused at `now`, with the end of their pause.
  std::vector<Pause> Paused(absl::Time now = absl::Now()) const;
  size_t tracked() const;

 private:
  struct State {
    absl::Time window_start = absl::InfinitePast();
    int64_t count = 0;
    absl::Time paused_until = absl::InfinitePast();
  };
  // Drops pairs whose window and pause are over at `now`.
  void ForgetIdleLocked(absl::Time now);

  mutable std::mutex mu_;
  std::map<std::string, v1::SourceRateLimit, std::less<>> limits_;
  std::map<std::pair<std::string, std::string>, State> states_;  // (tenant, source)
};

}  // namespace sluice::gateway
