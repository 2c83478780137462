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

// Per-source limits: at most `limit` events in a window of `interval`, counted from the
// window's first event; the event over the limit pauses the source for `pause`, and every
// event during the pause is refused. Sources without a limit are never limited.
// Thread-safe.
class RateLimiter {
 public:
  // From --rate-limits JSON ({"limits":[...]} or a bare array); InvalidArgument naming the
  // entry when one is malformed.
  static absl::StatusOr<RateLimiter> FromJson(std::string_view json);
  explicit RateLimiter(const v1::RateLimitConfig& config = {});
  RateLimiter(RateLimiter&& other) noexcept;

  // OK, or ResourceExhausted saying until when the source is paused.
  absl::Status Admit(std::string_view source, absl::Time now = absl::Now());

  // Sources paused at `now`, with the end of their pause.
  std::vector<std::pair<std::string, absl::Time>> Paused(absl::Time now = absl::Now()) const;

 private:
  struct State {
    v1::SourceRateLimit limit;
    absl::Time window_start = absl::InfinitePast();
    int64_t count = 0;
    absl::Time paused_until = absl::InfinitePast();
  };
  mutable std::mutex mu_;
  std::map<std::string, State, std::less<>> states_;
};

}  // namespace sluice::gateway
