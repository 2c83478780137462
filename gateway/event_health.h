#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <prometheus/registry.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/pg_pool.h"
#include "gateway/rate_limiter.h"
#include "gateway/source_activity.h"
#include "sluice/v1/event_query.pb.h"

namespace sluice::gateway {

// Committed offset against the end of each partition, for every partition of `topics`
// of a topic `group` has committed offsets on (topics it never read are left out).
// `librdkafka`: settings for the clients it opens (security).
absl::StatusOr<std::vector<v1::ConsumerLag>> ConsumerLags(const std::string& bootstrap,
                                                          const std::vector<std::string>& groups,
                                                          const std::vector<std::string>& topics,
                                                          const std::map<std::string, std::string>& librdkafka = {});

// What one caller of GetEventHealth may see.
struct HealthScope {
  bool all_tenants = false;       // consumer lag, every tenant's sources
  std::set<std::string> tenants;  // otherwise: these tenants' sources only
};

struct EventHealthConfig {
  std::string bootstrap_servers;
  std::vector<std::string> groups;  // consumer groups whose lag is reported
  std::vector<std::string> topics;  // topics they are measured on
  // How often the Prometheus gauges are refreshed; zero: never (the RPC still works).
  absl::Duration metrics_interval = absl::Seconds(15);
  // librdkafka settings (security) for the clients that measure the lag.
  std::map<std::string, std::string> librdkafka;
  // This replica's name, reported with the figures that are per replica.
  std::string replica;
};

// GetEventHealth, and the same figures as Prometheus gauges refreshed in the background.
// Source activity (rates, totals, last seen) is what this replica accepted; pauses are
// the cluster's when `limits` is a SharedRateLimiter. Gauges:
// sluice_consumer_lag{group,topic,partition}, sluice_source_publish_rate{source},
// sluice_source_last_seen_timestamp_seconds{source}, sluice_source_paused{source}; with a
// PostgreSQL pool also metadata_approvals_pending{tenant_id}.
class EventHealth {
 public:
  EventHealth(EventHealthConfig config, SourceActivity& activity, const SourceLimits& limits,
              prometheus::Registry& registry, common::PgPool* pool = nullptr);
  static constexpr int kMaxPendingTenants = 1000;
  // GetEventHealthResponse.outbox and .profile_jobs list at most this many tenants each.
  static constexpr int kMaxBacklogTenants = 1000;
  // Sets metadata_approvals_pending from mdm_approval (no-op without a pool): the
  // kMaxPendingTenants tenants with the most pending approvals.
  absl::Status UpdateApprovalsPending();
  ~EventHealth();
  absl::StatusOr<v1::GetEventHealthResponse> Get(const HealthScope& scope) const;
  // The lag of `group` (one of config.groups) summed over the partitions it committed
  // on, from a measurement at most `max_age` old (shared with Get); nullopt when the
  // group has committed nothing on the topics.
  absl::StatusOr<std::optional<int64_t>> GroupLag(const std::string& group, absl::Duration max_age) const;

 private:
  void Loop();
  absl::Status MeasureLags(absl::Time not_before) const;  // lag_mu_ held
  const EventHealthConfig config_;
  SourceActivity& activity_;
  const SourceLimits& limits_;
  prometheus::Family<prometheus::Gauge>& lag_;
  prometheus::Family<prometheus::Gauge>& rate_;
  prometheus::Family<prometheus::Gauge>& last_seen_;
  prometheus::Family<prometheus::Gauge>& paused_;
  prometheus::Family<prometheus::Gauge>& approvals_pending_;
  common::PgPool* pool_;
  mutable std::timed_mutex lag_mu_;                            // one ConsumerLags at a time; guards the four below
  mutable absl::Time lag_measured_at_ = absl::InfinitePast();  // when the cached one began
  mutable std::vector<v1::ConsumerLag> lag_cache_;
  mutable absl::Status lag_error_;  // GroupLag's last failed measurement, and when
  mutable absl::Time lag_error_at_ = absl::InfinitePast();
  // Series of metadata_approvals_pending by tenant, and whether it was last set to 0.
  std::map<std::string, std::pair<prometheus::Gauge*, bool>> pending_series_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sluice::gateway
