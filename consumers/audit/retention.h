#pragma once

// event_log retention by whole monthly partitions (sql/migrations/0010_event_log_partitions.sql):
// a partition goes once every row it can hold occurred before the horizon, so rows are kept
// between the retention and the retention plus about a month.

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/pg.h"

namespace sluice::audit {

// The partitions of event_log (in the connection's search_path) whose upper bound is at or
// before `horizon`, dropped through event_log_drop_expired, oldest first; with `dry_run`
// only listed. Safe with several callers at once (the later ones find nothing left). DROP
// holds ACCESS EXCLUSIVE on event_log for a moment, so it is only attempted when something
// expired, and waits at most `lock_timeout` for the lock (then kUnavailable, nothing dropped):
// a long query delays the sweep rather than every query queueing behind it.
absl::StatusOr<std::vector<std::string>> DropExpiredPartitions(common::PgConnection& conn, absl::Time horizon,
                                                               bool dry_run = false,
                                                               absl::Duration lock_timeout = absl::Seconds(5));

struct RetentionConfig {
  std::string pg_dsn;
  std::string pg_schema;                             // schema of event_log; empty = the search_path
  absl::Duration retention = absl::Hours(24 * 365);  // rows younger than this are kept
  absl::Duration interval = absl::Hours(1);          // between two sweeps
  // Called with the name of each dropped partition, on the sweeping thread (log, metrics).
  std::function<void(const std::string& partition)> on_dropped;
};

// Drops event_log's expired partitions (horizon: now - retention) on a thread of its own:
// once when started, then every interval. A failed sweep is logged and tried again at the
// next interval. Several sweepers (audit replicas) at once are safe.
//
// Thread-safe. Lifetime: Stop() (or the destructor) ends the thread, after the sweep in
// progress, which is bounded by the connect timeout and the lock timeout.
class RetentionSweeper {
 public:
  static absl::StatusOr<std::unique_ptr<RetentionSweeper>> Create(RetentionConfig config);
  ~RetentionSweeper() { Stop(); }
  RetentionSweeper(const RetentionSweeper&) = delete;
  RetentionSweeper& operator=(const RetentionSweeper&) = delete;

  // One sweep now, on the calling thread, on a connection of its own: the partitions dropped.
  absl::StatusOr<std::vector<std::string>> SweepOnce();
  // Starts the sweeping thread (once).
  void Start();
  // Ends the sweeping thread and waits for it; idempotent.
  void Stop();

 private:
  explicit RetentionSweeper(RetentionConfig config) : config_(std::move(config)) {}
  void Loop();

  const RetentionConfig config_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace sluice::audit
