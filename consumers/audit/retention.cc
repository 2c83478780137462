#include "consumers/audit/retention.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/strings.h"

namespace sluice::audit {

using common::Cat;

absl::StatusOr<std::vector<std::string>> DropExpiredPartitions(common::PgConnection& conn, absl::Time horizon,
                                                               bool dry_run, absl::Duration lock_timeout) {
  const std::string at = absl::FormatTime(absl::RFC3339_full, horizon, absl::UTCTimeZone());
  auto names = [](const common::PgResult& r) {
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.Get(i, 0));
    return out;
  };
  // Listing takes no lock on event_log; the drop (ACCESS EXCLUSIVE) only when there is
  // something to drop, i.e. about once a month.
  auto expired = conn.Exec("SELECT event_log_expired_partitions($1::timestamptz)", {at});
  if (!expired.ok()) {
    // undefined_function: the schema predates migration 0010 (event_log not partitioned).
    if (common::SqlState(expired.status()) == "42883")
      return absl::FailedPreconditionError(
          "event_log is not partitioned in this schema: apply migration 0010 first (sluicectl migrate)");
    return expired.status();
  }
  if (dry_run || expired->rows() == 0) return names(*expired);
  const int64_t ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(lock_timeout));
  auto tx = common::PgTransaction::Begin(conn, Cat("BEGIN; SET LOCAL lock_timeout = ", ms));
  if (!tx.ok()) return tx.status();
  auto dropped = conn.Exec("SELECT event_log_drop_expired($1::timestamptz)", {at});
  if (!dropped.ok()) return dropped.status();
  if (auto s = tx->Commit(); !s.ok()) return s;
  return names(*dropped);
}

absl::StatusOr<std::unique_ptr<RetentionSweeper>> RetentionSweeper::Create(RetentionConfig config) {
  if (config.pg_dsn.empty()) return absl::InvalidArgumentError("pg_dsn: required");
  if (config.retention <= absl::ZeroDuration()) return absl::InvalidArgumentError("retention: must be positive");
  if (config.interval <= absl::ZeroDuration()) return absl::InvalidArgumentError("interval: must be positive");
  return std::unique_ptr<RetentionSweeper>(new RetentionSweeper(std::move(config)));
}

absl::StatusOr<std::vector<std::string>> RetentionSweeper::SweepOnce() {
  // A connection per sweep: sweeps are an hour apart, and nothing is held in between.
  auto conn = common::Connect(config_.pg_dsn, config_.pg_schema);
  if (!conn.ok()) return conn.status();
  auto dropped = DropExpiredPartitions(*conn, absl::Now() - config_.retention);
  if (!dropped.ok()) return dropped.status();
  if (config_.on_dropped)
    for (const auto& p : *dropped) config_.on_dropped(p);
  return dropped;
}

void RetentionSweeper::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void RetentionSweeper::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void RetentionSweeper::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    if (auto r = SweepOnce(); !r.ok())
      spdlog::warn("audit: retention sweep failed, next in {}: {}", absl::FormatDuration(config_.interval),
                   std::string(r.status().message()));
    lock.lock();
    cv_.wait_for(lock, absl::ToChronoMilliseconds(config_.interval), [this] { return stopping_; });
  }
}

}  // namespace sluice::audit
