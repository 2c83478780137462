#pragma once

#include <absl/status/statusor.h>
#include <absl/time/clock.h>
#include <absl/time/time.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/pg_pool.h"
#include "gateway/rate_limiter.h"

namespace sluice::gateway {

// The per-source limits of `RateLimiter`, counted for every gateway replica that shares the
// PostgreSQL database (table gateway_rate_window, migration 0011): at most `limit` events
// of a tenant's source per window in the whole cluster, not `limit` per replica.
//
// A replica takes tokens in blocks of BlockSize(limit) from the (tenant, source) row with
// one atomic upsert on the database's clock, and admits events from its block locally while
// the window lasts; it asks again when the block is spent. The database never hands out
// more than `limit` tokens per window, so the cluster admits at most `limit`. A request
// finding the window's tokens all handed out pauses the source for every replica (the
// row's paused_until); each replica then refuses locally until the pause ends, without
// asking again. Tokens held but not yet spent count as used, which is the price of blocks:
// the pause can begin up to (replicas - 1) x (BlockSize - 1) events before `limit` events
// were admitted, and a replica may still spend what is left of its block (fewer than
// BlockSize events, all within the window's `limit`) after another replica started the pause.
//
// When PostgreSQL does not answer (unreachable, pool exhausted, table missing), the call is
// decided by the replica-local RateLimiter instead: logged at most every 30 s and counted
// in sluice_gateway_rate_limit_fallback_total; PostgreSQL is tried again after
// kRetryAfter, so a database outage does not add a connect timeout to every event.
//
// Local state is per (tenant, source), at most RateLimiter::kMaxTracked pairs (idle ones
// forgotten first, then RESOURCE_EXHAUSTED as RateLimiter does). A pair's lock is held
// across its round trip (concurrent events of the same pair wait for that one answer
// rather than each asking); no lock shared by all pairs is held across one. Admit blocks its
// caller for that round trip (once per block, bounded by --pg-acquire-timeout-ms and
// --pg-statement-timeout-ms), on the RPC's thread like the other PostgreSQL calls. Thread-safe;
// `pool` must outlive this object.
class SharedRateLimiter : public SourceLimits {
 public:
  SharedRateLimiter(RateLimiter local, common::PgPool& pool, prometheus::Registry& registry);

  // Tokens asked for at once: a sixteenth of the limit, at least 1 and at most kMaxBlock.
  // Bigger blocks mean fewer round trips (about 16 per window while the limit is under
  // 16 x kMaxBlock) but a less precise limit, see above; a limit under 32 asks for every
  // event, so small limits are exact. The cap keeps the imprecision a few dozen events per
  // replica however large the limit.
  static int64_t BlockSize(int64_t limit);
  static constexpr int64_t kMaxBlock = 64;
  static constexpr absl::Duration kRetryAfter = absl::Seconds(5);

  absl::Status Admit(std::string_view tenant, std::string_view source, absl::Time now = absl::Now()) override;
  // Every replica's pauses from the table (the database's clock); the replica-local ones
  // when PostgreSQL does not answer.
  std::vector<Pause> Paused(absl::Time now = absl::Now()) const override;

  // Calls decided by the local limiter because PostgreSQL did not answer.
  int64_t fallbacks() const { return fallbacks_.load(); }
  size_t tracked() const;

 private:
  struct Key {
    std::mutex mu;                                   // held across the key's round trip
    int64_t tokens = 0;                              // left of the block
    absl::Time window_until = absl::InfinitePast();  // local clock: the block is void from then
    absl::Time paused_local = absl::InfinitePast();  // local clock: refuse without asking until then
    absl::Time paused_until = absl::InfinitePast();  // the database's clock: for messages
  };
  struct Grant {
    int64_t granted = 0;  // > 0 tokens; 0 refused while paused; -1 this request paused it
    absl::Duration window_left, pause_left;
    absl::Time paused_until;
  };
  absl::StatusOr<Grant> Ask(std::string_view tenant, std::string_view source, const v1::SourceRateLimit& limit);
  // The key of (tenant, source), created when missing; ResourceExhausted when kMaxTracked
  // busy pairs are tracked.
  absl::StatusOr<std::shared_ptr<Key>> KeyOf(std::string_view tenant, std::string_view source, absl::Time now);
  absl::Status Fallback(const absl::Status& why, std::string_view tenant, std::string_view source, absl::Time now);
  void NoteFailure(const absl::Status& why) const;
  // Deletes rows whose window and pause are over (at most once a minute per replica), so
  // the table holds what is in use, like the local state.
  void SweepIdle() const;

  RateLimiter local_;  // limits, and the decision when PostgreSQL does not answer
  common::PgPool& pool_;
  prometheus::Counter& fallback_counter_;
  mutable std::atomic<int64_t> fallbacks_{0};
  mutable std::mutex log_mu_;  // guards the three below
  mutable absl::Time last_log_ = absl::InfinitePast();
  mutable int64_t unlogged_ = 0;
  mutable absl::Time pg_retry_at_ = absl::InfinitePast();  // PostgreSQL is skipped until then
  mutable std::mutex sweep_mu_;
  mutable absl::Time last_sweep_ = absl::InfinitePast();
  mutable std::mutex mu_;  // guards keys_ (never held across a round trip)
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Key>> keys_;
};

}  // namespace sluice::gateway
