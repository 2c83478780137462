// sluice-profiler: profiles the data quality of bound PostgreSQL tables when trigger
// events arrive (see consumers/profiler/README.md for the policy and flags).
#include <spdlog/spdlog.h>

#include <thread>

#include "common/service.h"
#include "consumers/profiler/profiler.h"
#include "kafka/consumer.h"

int main(int argc, char** argv) {
  sluice::common::Service service("sluice-profiler",
                                  "profile bound tables on metadata.profile.due, data.refreshed and metadata.approved");
  sluice::profiler::ProfilerConfig pc;
  std::string bootstrap, topic_prefix, group = "sluice-profiler", stale_days = "7,14,30,90,90";
  double cooldown_h = 12, refresh_max_age_h = 24, lease_s = 30, heartbeat_s = 10, retry_backoff_s = 30,
         statement_timeout_s = 600;
  service.AddPostgres(pc.pg_dsn, pc.pg_schema, "the governance tables");
  service.app()
      .add_option("--source-dsn", pc.source_dsn,
                  "PostgreSQL holding the bound tables, as a read-only role of its own (default: --pg-dsn)")
      ->envname(service.EnvName("source-dsn"));
  service.ListFlag("allow-binding", pc.allow_bindings,
                   "TENANT=SCHEMA.TABLE or TENANT=SCHEMA.* (TENANT * = every tenant) a binding may name; repeatable or "
                   "comma-separated; none allowed by default, the governance and system schemas never");
  service.AddKafka(bootstrap, topic_prefix);
  service.Flag("group", group, "Kafka consumer group");
  service.app()
      .add_option("--worker-id", pc.worker_id, "Name of this worker in job rows (default: host-pid)")
      ->envname(service.EnvName("worker-id"));
  service
      .Flag("cooldown-h", cooldown_h,
            "Guard against repeated triggers: skip a tier1 HIGH/CRITICAL due or a non-structural approval this soon "
            "after a successful profile")
      ->check(CLI::NonNegativeNumber);
  service
      .Flag("stale-days", stale_days,
            "Any other profile.due runs once the last profile is older than this many days, tier1 to tier5")
      ->check([](const std::string& v) {
        auto s = sluice::profiler::ParseStaleDays(v);
        return s.ok() ? std::string() : std::string(s.status().message());
      });
  service.Flag("refresh-max-age-h", refresh_max_age_h, "data.refreshed profiles when the last profile is older")
      ->check(CLI::NonNegativeNumber);
  service
      .Flag("refresh-rows-fraction", pc.policy.refresh_rows_fraction,
            "data.refreshed profiles when rows_affected exceeds this share of the last row count")
      ->check(CLI::NonNegativeNumber);
  service.Flag("weight-completeness", pc.profile.weights.completeness, "Weight of completeness in the score")
      ->check(CLI::NonNegativeNumber);
  service.Flag("weight-uniqueness", pc.profile.weights.uniqueness, "Weight of uniqueness in the score")
      ->check(CLI::NonNegativeNumber);
  service.Flag("weight-validity", pc.profile.weights.validity, "Weight of validity in the score")
      ->check(CLI::NonNegativeNumber);
  service
      .Flag("degradation-percent", pc.degradation_threshold_percent,
            "Emit data.quality.degraded when the score falls by more than this % of the previous one")
      ->check(CLI::NonNegativeNumber);
  service.Flag("statement-timeout-s", statement_timeout_s, "statement_timeout of a profile scan")
      ->check(CLI::PositiveNumber);
  service.Flag("lease-s", lease_s, "Lease of a running job; expired leases are taken over")->check(CLI::PositiveNumber);
  service.Flag("heartbeat-s", heartbeat_s, "How often a running job renews its lease (< --lease-s)")
      ->check(CLI::PositiveNumber);
  service.Flag("max-attempts", pc.max_attempts, "Attempts per job (retryable failures and lost workers)")
      ->check(CLI::PositiveNumber);
  service.Flag("retry-backoff-s", retry_backoff_s, "First retry delay, doubled per attempt (capped at 10 min)")
      ->check(CLI::NonNegativeNumber);
  service.AddMetrics("127.0.0.1:9465");
  service.AddTracing();
  if (auto rc = service.Parse(argc, argv)) return *rc;
  pc.policy.cooldown = absl::Seconds(cooldown_h * 3600);
  pc.policy.stale = *sluice::profiler::ParseStaleDays(stale_days);  // checked by the flag
  pc.policy.refresh_max_age = absl::Seconds(refresh_max_age_h * 3600);
  pc.lease = absl::Seconds(lease_s);
  pc.heartbeat = absl::Seconds(heartbeat_s);
  pc.retry_backoff = absl::Seconds(retry_backoff_s);
  pc.profile.statement_timeout = absl::Seconds(statement_timeout_s);

  if (auto s = service.StartMetrics(); !s.ok()) return service.Fail("--metrics-listen", s);
  if (auto s = service.StartTracing(); !s.ok()) return service.Fail("--otlp-endpoint", s);
  auto catalog = sluice::contracts::Catalog::Default().WithTopicPrefix(topic_prefix);
  auto profiler = sluice::profiler::Profiler::Create(pc, service.registry(), catalog);
  if (!profiler.ok()) return service.Fail("profiler", profiler.status());

  // The handler runs the jobs a batch queued, so the group must tolerate a batch's worth of
  // scans between polls: kMaxBatch statement timeouts plus five minutes (librdkafka's cap: a day).
  constexpr size_t kMaxBatch = 20;
  const int64_t poll_interval_ms = std::min<int64_t>(
      86'400'000, static_cast<int64_t>(kMaxBatch) * absl::ToInt64Milliseconds(pc.profile.statement_timeout) + 300'000);
  std::set<std::string> topics;
  const std::set<std::string> types = {"metadata.profile.due", "data.refreshed", "metadata.approved"};
  for (const auto& t : types) topics.insert(catalog.Find(t)->topic);
  auto librdkafka = service.kafka_settings();
  librdkafka["max.poll.interval.ms"] = std::to_string(poll_interval_ms);
  auto consumer = sluice::kafka::Consumer::Create({.bootstrap_servers = bootstrap,
                                                   .group_id = group,
                                                   .client_id = "sluice-profiler",
                                                   .topics = {topics.begin(), topics.end()},
                                                   .types = types,
                                                   .max_batch = kMaxBatch,
                                                   .librdkafka = std::move(librdkafka)});
  if (!consumer.ok()) return service.Fail("consumer", consumer.status());
  auto stop = service.OnStop([&] { (*consumer)->Stop(); });

  spdlog::info("profiler: worker {} started (group {}, lease {}s)", (*profiler)->config().worker_id, group, lease_s);
  if ((*profiler)->bindings().empty())
    spdlog::warn("profiler: no --allow-binding: every binding is refused (binding_not_allowed)");
  else
    spdlog::info("profiler: bindings allowed: {}", fmt::join((*profiler)->bindings().Describe(), ", "));
  std::thread sweeper([&] { (*profiler)->SweepLoop(service.stopping()); });
  auto s = (*consumer)->Run(
      [&](const std::vector<sluice::kafka::Record>& batch) { return (*profiler)->HandleBatch(batch); });
  service.RequestStop("consumer ended");
  sweeper.join();
  if (auto c = (*consumer)->Close(); !c.ok()) spdlog::warn("profiler: close: {}", std::string(c.message()));
  if (!s.ok()) return service.Fail("consumer", s);
  spdlog::info("profiler: stopped");
  return 0;
}
