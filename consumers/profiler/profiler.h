#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/pg.h"
#include "consumers/profiler/bindings.h"
#include "consumers/profiler/job_store.h"
#include "consumers/profiler/policy.h"
#include "consumers/profiler/profile.h"
#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "kafka/record.h"

namespace sluice::profiler {

struct ProfilerConfig {
  // PostgreSQL holding the governance tables (mdm_*, event_outbox).
  std::string pg_dsn;
  // Their schema (search_path); empty = the connection's default.
  std::string pg_schema;
  // PostgreSQL holding the bound tables that are profiled; empty = pg_dsn. Should be a
  // read-only role of its own that cannot read the governance tables; the profiler also
  // makes the session read-only.
  std::string source_dsn;
  // The bindings each tenant may have profiled, "TENANT=SCHEMA.TABLE" or "TENANT=SCHEMA.*"
  // (BindingAllowList); empty allows none. The governance schema is never allowed.
  std::vector<std::string> allow_bindings;
  // Names this worker in job rows (default: host-pid).
  std::string worker_id;
  PolicyConfig policy;
  ProfileOptions profile;
  // A running job's lease, and how often its worker renews it.
  absl::Duration lease = absl::Seconds(30);
  absl::Duration heartbeat = absl::Seconds(10);
  // Attempts per job; a retryable failure is retried after retry_backoff, doubled per
  // attempt and capped at max_retry_backoff.
  int max_attempts = 3;
  absl::Duration retry_backoff = absl::Seconds(30);
  absl::Duration max_retry_backoff = absl::Minutes(10);
  // data.quality.degraded when the score fell by more than this percentage of the
  // previous profile's score.
  double degradation_threshold_percent = 10;
  // How often the sweeper looks for retries that came due and expired leases.
  absl::Duration sweep_interval = absl::Seconds(2);
  // How often SweepLoop refreshes metadata_tier1_compliance_ratio.
  absl::Duration compliance_interval = absl::Seconds(60);
  // Envelope source of the events the profiler emits.
  std::string source = "agent.profiler";
};

// What handling one trigger event came to.
struct TriggerOutcome {
  bool duplicate = false;  // the event id was handled before: nothing done
  bool queued = false;
  std::string job_id;       // when queued
  std::string skip_reason;  // when skipped
  std::string detail;
};

// What running one job came to.
struct JobOutcome {
  std::string job_id;
  std::string status;  // succeeded | failed | retry | lease_lost
  std::string profile_id;
  int attempt = 0;
  bool took_over = false;  // the job was running under another worker whose lease expired
};

// sluice-profiler's engine. Trigger events (metadata.profile.due, data.refreshed,
// metadata.approved) go through the policy; those that should profile become rows of
// mdm_profile_job, at most one pending or running per entity. Only events whose source the
// catalog lists as a producer of their type are acted on, and only bindings inside the
// allow-list are read (checked when deciding and again right before the scan). A job is
// claimed (JobStore holds every statement on the job tables) with a lease that a
// LeaseHeartbeat renews; the profile runs on the source database in one read-only scan;
// the outcome (mdm_profile row, job status, and the events written to
// event_outbox for sluice-relay) commits in one transaction fenced by the lease token,
// so a worker that lost its lease writes nothing.
//
// Thread-safety: every public method may be called from any thread; they serialize on
// one mutex (one job at a time per instance; run more instances or replicas to profile
// in parallel). Lifetime: owns its PostgreSQL connections; the destructor closes them.
class Profiler {
 public:
  static absl::StatusOr<std::unique_ptr<Profiler>> Create(
      ProfilerConfig config, prometheus::Registry& registry,
      const contracts::Catalog& catalog = contracts::Catalog::Default());
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  // The consumer's batch handler: decides every event of the batch (queuing jobs), then
  // runs the jobs it queued. Returns OK once each outcome is durable: a finished job, a
  // failure recorded for retry, or a skip. An error leaves the batch to be redelivered.
  absl::Status HandleBatch(const std::vector<kafka::Record>& batch);

  // Records one trigger event and the policy's decision; queues a job when it says so.
  absl::StatusOr<TriggerOutcome> HandleEvent(const v1::Envelope& event);

  // Claims one ready job (`job_id`, or any: pending and due, or running with an expired
  // lease) and runs it. nullopt when there was none to claim.
  absl::StatusOr<std::optional<JobOutcome>> RunReadyJob(const std::string& job_id = "");

  // Sets metadata_tier1_compliance_ratio{tenant}: the share of active, bound tier1
  // entries with a profile in the last 7 days.
  absl::Status UpdateComplianceMetrics();
  // Runs ready jobs every sweep_interval until `stop` is set.
  void SweepLoop(const std::atomic<bool>& stop);

  const ProfilerConfig& config() const { return config_; }
  const BindingAllowList& bindings() const { return bindings_; }

 private:
  struct Metrics {
    explicit Metrics(prometheus::Registry& r);
    prometheus::Family<prometheus::Counter>& events;  // {type, outcome}
    prometheus::Family<prometheus::Counter>& skips;   // {reason}
    prometheus::Family<prometheus::Counter>& jobs;    // {outcome}
    prometheus::Histogram& duration;
    // The quality metrics of the governance dashboards.
    prometheus::Family<prometheus::Gauge>& quality_score;  // {tenant, tier, entity}
    prometheus::Family<prometheus::Counter>& runs;         // {status: completed, failed, retry}
    prometheus::Histogram& run_duration;
    prometheus::Family<prometheus::Counter>& degraded;        // {tenant, tier}
    prometheus::Family<prometheus::Gauge>& tier1_compliance;  // {tenant}
  };

  Profiler(ProfilerConfig config, BindingAllowList bindings, prometheus::Registry& registry,
           const contracts::Catalog& catalog);
  absl::Status EnsureConnected();
  // Schemas holding the governance tables, as the governance connection resolves them.
  absl::StatusOr<std::set<std::string>> GovernanceSchemas();
  // OK when `event` may be acted on: its source produces its type (Authorizer), and its
  // payload is of that type (the payload is what gets acted on).
  absl::Status SourceAuthorized(const v1::Envelope& event) const;
  absl::StatusOr<TriggerOutcome> HandleEventLocked(const v1::Envelope& event);
  absl::StatusOr<std::optional<JobOutcome>> RunReadyJobLocked(const std::string& job_id);
  // Runs a claimed job to its outcome (stored, or the lease lost).
  absl::StatusOr<JobOutcome> RunClaimed(const ClaimedJob& job);
  absl::StatusOr<JobOutcome> Succeed(const ClaimedJob& job, const ProfileResult& result, const std::string& schema,
                                     const std::string& table, const std::string& definition);
  absl::StatusOr<JobOutcome> Fail(const ClaimedJob& job, const ProfileError& error);
  // An event about `job`'s outcome: tenant, source, the trigger's correlation, `cause`.
  v1::Envelope OutcomeEvent(const ClaimedJob& job, const std::string& cause) const;

  ProfilerConfig config_;
  contracts::Catalog catalog_;
  contracts::Authorizer authz_;  // refers to catalog_ (declared above, so built first)
  BindingAllowList bindings_;    // immutable after Create
  Metrics metrics_;
  std::mutex mu_;
  std::optional<common::PgConnection> meta_;    // governance tables; guarded by mu_
  std::optional<common::PgConnection> source_;  // the profiled tables; guarded by mu_
  std::optional<common::PgConnection> beat_;    // heartbeats only; used by the LeaseHeartbeat of the job in hand
};

}  // namespace sluice::profiler
