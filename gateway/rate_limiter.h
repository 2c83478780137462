#pragma once

#include <absl/status/statusor.h>
#include <absl/time/clock.h>
#include <absl/time/time.h>

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/v1/config.pb.h"

namespace sluice::gateway {

// What the publishing path and GetEventHealth ask of the per-source rate limits.
// RateLimiter counts in this process only (one gateway replica); SharedRateLimiter
// (shared_rate_limiter.h) counts for every replica sharing a PostgreSQL database.
// Implementations are thread-safe.
class SourceLimits {
 public:
  virtual ~SourceLimits() = default;
  // OK, or ResourceExhausted saying until when the tenant's source is paused.
  virtual absl::Status Admit(std::string_view tenant, std::string_view source, absl::Time now) = 0;

  struct Pause {
    std::string tenant, source;
    absl::Time until;
  };
  // (tenant, source) pairs paused at `now`, with the end of their pause.
  virtual std::vector<Pause> Paused(absl::Time now) const = 0;
};

// Per-source limits, counted for each (tenant, source) on its own, so one tenant's burst
// never pauses a source for the others: at most `limit` events in a window of `interval`,
// counted from the window's first event; the event over the limit pauses that tenant's
// source for `pause`, and every event of it during the pause is refused. Sources without a
// limit are never limited. At most kMaxTracked (tenant, source) pairs are counted at once;
// idle ones are forgotten first. Counts what this process admits: with several gateway
// replicas each one allows `limit` (see SharedRateLimiter). Thread-safe.
class RateLimiter : public SourceLimits {
 public:
  // From --rate-limits JSON ({"limits":[...]} or a bare array); InvalidArgument naming the
  // entry when one is malformed.
  static absl::StatusOr<RateLimiter> FromJson(std::string_view json);
  explicit RateLimiter(const v1::RateLimitConfig& config = {});
  RateLimiter(RateLimiter&& other) noexcept;

  static constexpr size_t kMaxTracked = 100000;

  // OK, or ResourceExhausted saying until when the tenant's source is paused.
  absl::Status Admit(std::string_view tenant, std::string_view source, absl::Time now = absl::Now()) override;

  // (tenant, source) pairs paused at `now`, with the end of their pause.
  std::vector<Pause> Paused(absl::Time now = absl::Now()) const override;
  size_t tracked() const;

  // The limit of `source`, or nullptr when it has none. Limits never change after
  // construction, so the pointer stays valid as long as this object.
  const v1::SourceRateLimit* LimitOf(std::string_view source) const;
  bool HasLimits() const { return !limits_.empty(); }
  const std::map<std::string, v1::SourceRateLimit, std::less<>>& limits() const { return limits_; }

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
