#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "common/pg.h"
#include "kafka/producer.h"

namespace sluice::relay {

struct RelayConfig {
  std::string pg_dsn;
  // Rows of one tenant published per transaction.
  int batch_size = 500;
  // Polling interval when no NOTIFY arrives.
  absl::Duration poll_interval = absl::Seconds(1);
  // Retry back-off: initial, doubled per attempt, capped.
  absl::Duration backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Minutes(1);
  // Sent rows older than this are deleted; 0 keeps them.
  absl::Duration retention = absl::Hours(24 * 7);
  // Prune deletes at most this many rows per statement, so each stays short (well inside
  // statement_timeout however far behind pruning is) ...
  int prune_batch = 10000;
  // ... and stops after this long; the next call goes on from there.
  absl::Duration prune_budget = absl::Seconds(5);
  // Schema of the outbox table (search_path); empty = the connection's default.
  std::string pg_schema;
  // How often Run refreshes the backlog gauges (when metrics are registered).
  absl::Duration backlog_interval = absl::Seconds(5);
};

struct RelayStats {
  int64_t published = 0;
  int64_t failed = 0;
  int64_t pruned = 0;
};

// sluice-relay's engine: publishes committed event_outbox rows through the Producer and
// marks them sent. Per tenant, rows go out in id (= commit) order; a tenant is handled
// by one relay at a time (transaction advisory lock, skipped if taken), so several
// relays can run without reordering a tenant. A failed row is retried with back-off and
// blocks the rows behind it in its tenant. Delivery is at least once: a relay that dies
// between the broker's acknowledgement and its commit republishes those rows with the
// same event ids (consumers deduplicate by id).
//
// Not thread-safe (one connection); Stop() may be called from any thread.
class Relay {
 public:
  // With `registry`: sluice_relay_published_total, sluice_relay_errors_total,
  // sluice_outbox_backlog (unsent rows) and sluice_outbox_oldest_unsent_seconds.
  static absl::StatusOr<std::unique_ptr<Relay>> Create(RelayConfig config, kafka::Producer& producer,
                                                       prometheus::Registry* registry = nullptr);

  // Publishes what is ready now; returns how many rows were marked sent.
  absl::StatusOr<int64_t> RunOnce();
  // LISTEN event_outbox and poll until Stop(); reconnects to PostgreSQL after errors.
  void Run();
  void Stop() { stop_.store(true); }
  // Deletes sent rows older than the retention, prune_batch rows per statement for at
  // most prune_budget; returns how many.
  absl::StatusOr<int64_t> Prune();
  // Safe from any thread.
  RelayStats stats() const { return {published_.load(), failed_.load(), pruned_.load()}; }
  // Reads the backlog (unsent rows, age of the oldest) into the gauges.
  absl::Status UpdateBacklogMetrics();

 private:
  Relay(RelayConfig config, kafka::Producer& producer) : config_(std::move(config)), producer_(producer) {}
  struct Metrics {
    explicit Metrics(prometheus::Registry& r);
    prometheus::Counter& published;
    prometheus::Counter& errors;
    prometheus::Gauge& backlog;
    prometheus::Gauge& oldest;
  };
  absl::Status Connect();
  // Within RunOnce's transaction: lock, publish and mark the rows of `tenants` (column 0).
  absl::StatusOr<int64_t> RelayTenants(const common::PgResult& tenants);
  // Reads pending input and drops the queued NOTIFYs; true if there were any.
  bool TakeNotifies();
  void WaitForWork();

  RelayConfig config_;
  kafka::Producer& producer_;
  std::optional<common::PgConnection> conn_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> published_{0}, failed_{0}, pruned_{0};
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace sluice::relay
