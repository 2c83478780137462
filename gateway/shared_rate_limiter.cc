#include "gateway/shared_rate_limiter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "common/pg.h"
#include "common/strings.h"

namespace sluice::gateway {
namespace {

using common::Cat;

int64_t Int(std::string_view v) {
  int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

// One statement, so the decision and its bookkeeping are atomic under the row's lock
// whichever replica asks, and every time is the database's now(), so replicas' clocks do
// not matter. $1 tenant, $2 source, $3 limit, $4 interval ms, $5 pause ms, $6 block size.
// On the row as it was (SET sees the old row), in this order:
//   paused (paused_until > now)      -> nothing changes, granted 0;
//   window over (start + interval)   -> a fresh window from now, granted min(block, limit);
//   tokens left (used < limit)       -> granted min(block, limit - used);
//   limit used up                    -> paused until now + pause, a fresh window from its
//                                       end (as RateLimiter does), granted -1.
// RETURNING sees the new row: the grant, the window's time left, and the pause's time
// left and end while paused.
constexpr char kGrantSql[] = R"sql(
INSERT INTO gateway_rate_window AS w (tenant_id, source, window_start, used, granted)
VALUES ($1, $2, now(), least($6::bigint, $3::bigint), least($6::bigint, $3::bigint))
ON CONFLICT (tenant_id, source) DO UPDATE SET
  window_start = CASE
    WHEN w.paused_until > now() THEN w.window_start
    WHEN w.window_start + $4::bigint * interval '1 millisecond' <= now() THEN now()
    WHEN w.used < $3::bigint THEN w.window_start
    ELSE now() + $5::bigint * interval '1 millisecond' END,
  used = CASE
    WHEN w.paused_until > now() THEN w.used
    WHEN w.window_start + $4::bigint * interval '1 millisecond' <= now() THEN least($6::bigint, $3::bigint)
    WHEN w.used < $3::bigint THEN w.used + least($6::bigint, $3::bigint - w.used)
    ELSE 0 END,
  paused_until = CASE
    WHEN w.paused_until > now() THEN w.paused_until
    WHEN w.window_start + $4::bigint * interval '1 millisecond' <= now() OR w.used < $3::bigint THEN w.paused_until
    ELSE now() + $5::bigint * interval '1 millisecond' END,
  granted = CASE
    WHEN w.paused_until > now() THEN 0
    WHEN w.window_start + $4::bigint * interval '1 millisecond' <= now() THEN least($6::bigint, $3::bigint)
    WHEN w.used < $3::bigint THEN least($6::bigint, $3::bigint - w.used)
    ELSE -1 END
RETURNING granted,
  (extract(epoch FROM w.window_start + $4::bigint * interval '1 millisecond' - now()) * 1000)::bigint,
  CASE WHEN w.paused_until > now() THEN (extract(epoch FROM w.paused_until - now()) * 1000)::bigint END,
  CASE WHEN w.paused_until > now() THEN (extract(epoch FROM w.paused_until) * 1000000)::bigint END,
  (extract(epoch FROM now()) * 1000000)::bigint
)sql";

// Bounded like the local state: GetEventHealth lists at most this many paused pairs.
constexpr size_t kMaxPausedListed = RateLimiter::kMaxTracked;

}  // namespace

SharedRateLimiter::SharedRateLimiter(RateLimiter local, common::PgPool& pool, prometheus::Registry& registry)
    : local_(std::move(local)),
      pool_(pool),
      fallback_counter_(prometheus::BuildCounter()
                            .Name("sluice_gateway_rate_limit_fallback_total")
                            .Help("Rate-limit decisions made by this replica alone because PostgreSQL did not answer")
                            .Register(registry)
                            .Add({})) {}

int64_t SharedRateLimiter::BlockSize(int64_t limit) { return std::clamp<int64_t>(limit / 16, 1, kMaxBlock); }

size_t SharedRateLimiter::tracked() const {
  std::lock_guard lock(mu_);
  return keys_.size();
}

absl::StatusOr<std::shared_ptr<SharedRateLimiter::Key>> SharedRateLimiter::KeyOf(std::string_view tenant,
                                                                                 std::string_view source,
                                                                                 absl::Time now) {
  std::lock_guard lock(mu_);
  std::pair<std::string, std::string> id(tenant, source);
  auto it = keys_.find(id);
  if (it != keys_.end()) return it->second;
  if (keys_.size() >= RateLimiter::kMaxTracked) {
    // Idle: nobody is using it (only the map holds it), no block left in its window, no
    // pause. Forgetting such a pair loses nothing: the database row holds the count.
    for (auto k = keys_.begin(); k != keys_.end();) {
      bool idle = false;
      if (k->second.use_count() == 1) {
        std::unique_lock key(k->second->mu, std::try_to_lock);
        idle = key.owns_lock() && (k->second->tokens == 0 || now >= k->second->window_until) &&
               now >= k->second->paused_local;
      }
      k = idle ? keys_.erase(k) : std::next(k);
    }
  }
  if (keys_.size() >= RateLimiter::kMaxTracked)
    return absl::ResourceExhaustedError(
        Cat("rate limiter tracks ", RateLimiter::kMaxTracked, " busy (tenant, source) pairs; try again shortly"));
  return keys_.emplace(std::move(id), std::make_shared<Key>()).first->second;
}

absl::StatusOr<SharedRateLimiter::Grant> SharedRateLimiter::Ask(std::string_view tenant, std::string_view source,
                                                                const v1::SourceRateLimit& limit) {
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  auto r = (*conn)->Exec(kGrantSql, {std::string(tenant), std::string(source), std::to_string(limit.limit()),
                                     std::to_string(limit.interval_ms()), std::to_string(limit.pause_ms()),
                                     std::to_string(BlockSize(limit.limit()))});
  pool_.Release(*std::move(conn), r.status());
  if (!r.ok()) return r.status();
  if (r->rows() != 1) return absl::InternalError("rate limit: the grant returned no row");
  Grant g;
  g.granted = Int(r->Get(0, 0));
  g.window_left = absl::Milliseconds(Int(r->Get(0, 1)));
  g.pause_left = r->IsNull(0, 2) ? absl::ZeroDuration() : absl::Milliseconds(Int(r->Get(0, 2)));
  // Not paused (a pause of 0 ms ends as it begins): the end of the pause is the
  // database's now.
  g.paused_until = absl::FromUnixMicros(Int(r->Get(0, r->IsNull(0, 3) ? 4 : 3)));
  return g;
}

void SharedRateLimiter::NoteFailure(const absl::Status& why) const {
  fallbacks_.fetch_add(1);
  fallback_counter_.Increment();
  std::lock_guard lock(log_mu_);
  const absl::Time now = absl::Now();
  pg_retry_at_ = std::max(pg_retry_at_, now + kRetryAfter);
  ++unlogged_;
  // One line per 30 s, not one per event: a flood during an outage must not flood the log.
  if (now - last_log_ < absl::Seconds(30)) return;
  spdlog::warn(
      "gateway: rate limits: PostgreSQL did not answer ({}); {} decision(s) made by this replica alone since the "
      "last report, limits are per replica until it answers again",
      why.message(), unlogged_);
  last_log_ = now;
  unlogged_ = 0;
}

absl::Status SharedRateLimiter::Fallback(const absl::Status& why, std::string_view tenant, std::string_view source,
                                         absl::Time now) {
  NoteFailure(why);
  return local_.Admit(tenant, source, now);
}

absl::Status SharedRateLimiter::Admit(std::string_view tenant, std::string_view source, absl::Time now) {
  const v1::SourceRateLimit* limit = local_.LimitOf(source);
  if (limit == nullptr) return absl::OkStatus();
  {
    std::lock_guard lock(log_mu_);
    if (absl::Now() < pg_retry_at_) {
      // PostgreSQL failed moments ago: decide here rather than wait for another timeout.
      fallbacks_.fetch_add(1);
      fallback_counter_.Increment();
      ++unlogged_;
      return local_.Admit(tenant, source, now);
    }
  }
  auto key = KeyOf(tenant, source, now);
  if (!key.ok()) return key.status();
  Key& k = **key;
  std::lock_guard lock(k.mu);
  if (now < k.paused_local)
    return absl::ResourceExhaustedError(Cat("source ", source, " of tenant ", tenant,
                                            " is paused by its rate limit until ", absl::FormatTime(k.paused_until)));
  if (k.tokens > 0 && now < k.window_until) {
    --k.tokens;
    return absl::OkStatus();
  }
  // The block's end, on this replica's clock, is counted from before the request was
  // sent: the database's now() is later than that, so the block never outlives its window.
  const absl::Time asked = absl::Now();
  auto g = Ask(tenant, source, *limit);
  if (!g.ok()) return Fallback(g.status(), tenant, source, now);
  k.tokens = 0;
  if (g->granted > 0) {
    k.tokens = g->granted - 1;
    k.window_until = asked + g->window_left;
    return absl::OkStatus();
  }
  k.paused_until = g->paused_until;
  k.paused_local = absl::Now() + g->pause_left;
  if (g->granted < 0)
    return absl::ResourceExhaustedError(Cat("source ", source, " of tenant ", tenant, " exceeded ", limit->limit(),
                                            " events per ", limit->interval_ms(), " ms; paused until ",
                                            absl::FormatTime(g->paused_until)));
  return absl::ResourceExhaustedError(Cat("source ", source, " of tenant ", tenant,
                                          " is paused by its rate limit until ", absl::FormatTime(g->paused_until)));
}

void SharedRateLimiter::SweepIdle() const {
  {
    std::lock_guard lock(sweep_mu_);
    const absl::Time now = absl::Now();
    if (now - last_sweep_ < absl::Minutes(1)) return;
    last_sweep_ = now;
  }
  // Only rows of sources limited here, each by its own interval: a replica with other
  // limits (during a rollout) keeps its rows.
  std::set<std::string> sources;
  std::string intervals = "{";  // in the order of `sources` (both sorted by source)
  for (const auto& [source, limit] : local_.limits()) {
    sources.insert(source);
    intervals += Cat(intervals.size() > 1 ? "," : "", limit.interval_ms());
  }
  intervals += "}";
  auto conn = pool_.Acquire();
  if (!conn.ok()) return;
  auto r = (*conn)->Exec(
      "DELETE FROM gateway_rate_window w USING unnest($1::text[], $2::bigint[]) AS l(source, interval_ms)"
      " WHERE w.source = l.source AND w.paused_until <= now()"
      " AND w.window_start + l.interval_ms * interval '1 millisecond' <= now()",
      {common::PgTextArray(sources), intervals});
  pool_.Release(*std::move(conn), r.status());
  if (!r.ok()) spdlog::warn("gateway: rate limits: sweeping idle rows: {}", r.status().message());
}

std::vector<SourceLimits::Pause> SharedRateLimiter::Paused(absl::Time now) const {
  auto conn = pool_.Acquire();
  absl::StatusOr<common::PgResult> r = absl::UnknownError("not asked");
  if (!conn.ok()) {
    r = conn.status();
  } else {
    r =
        (*conn)->Exec(Cat("SELECT tenant_id, source, (extract(epoch FROM paused_until) * 1000000)::bigint"
                          " FROM gateway_rate_window WHERE paused_until > now()"
                          " ORDER BY paused_until DESC LIMIT ",
                          kMaxPausedListed));
    pool_.Release(*std::move(conn), r.status());
  }
  if (!r.ok()) {
    NoteFailure(r.status());
    std::vector<Pause> out = local_.Paused(now);
    std::lock_guard lock(mu_);
    for (const auto& [id, k] : keys_) {
      std::unique_lock key(k->mu, std::try_to_lock);
      if (key.owns_lock() && now < k->paused_local) out.push_back({id.first, id.second, k->paused_until});
    }
    return out;
  }
  std::vector<Pause> out;
  out.reserve(r->rows());
  for (int i = 0; i < r->rows(); ++i)
    out.push_back({std::string(r->Get(i, 0)), std::string(r->Get(i, 1)), absl::FromUnixMicros(Int(r->Get(i, 2)))});
  SweepIdle();
  return out;
}

}  // namespace sluice::gateway
