// sluice-profiler: profiles the data quality of bound PostgreSQL tables when trigger
// events arrive (see consumers/profiler/README.md for the policy and flags).
#include <CLI/CLI.hpp>
#include <prometheus/exposer.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <thread>

#include "common/env.h"
#include "common/log.h"
#include "common/metrics_exposer.h"
#include "kafka/consumer.h"
#include "consumers/profiler/profiler.h"

namespace {
std::atomic<bool> g_stop{false};
sluice::kafka::Consumer* g_consumer = nullptr;
void OnSignal(int) {
  g_stop.store(true);
  if (g_consumer != nullptr) g_consumer->Stop();  // atomic stores only: async-signal-safe
}
int Fail(std::string_view what, const absl::Status& s) {
  spdlog::critical("{}: {}", what, std::string(s.message()));
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  sluice::profiler::ProfilerConfig pc;
  pc.pg_dsn = sluice::common::DefaultPgDsn();
  std::string bootstrap = sluice::common::DefaultKafkaBootstrap(), topic_prefix, group = "sluice-profiler";
  std::string metrics_listen = "127.0.0.1:9465", log_level = "info";
  double cooldown_h = 12, refresh_max_age_h = 24, lease_s = 30, heartbeat_s = 10, retry_backoff_s = 30,
         statement_timeout_s = 600;
  CLI::App app{"sluice-profiler: profile bound tables on metadata.profile.due, data.refreshed and metadata.approved"};
  app.add_option("--pg-dsn", pc.pg_dsn, "PostgreSQL with the governance tables")->envname("SLUICE_PG_DSN")->capture_default_str();
  app.add_option("--pg-schema", pc.pg_schema, "Schema of the governance tables (default: the search_path)")
      ->envname("SLUICE_PG_SCHEMA");
  app.add_option("--source-dsn", pc.source_dsn,
                 "PostgreSQL holding the bound tables, as a read-only role of its own (default: --pg-dsn)")
      ->envname("SLUICE_PROFILER_SOURCE_DSN");
  app.add_option("--allow-binding", pc.allow_bindings,
                 "TENANT=SCHEMA.TABLE or TENANT=SCHEMA.* (TENANT * = every tenant) a binding may name; repeatable or "
                 "comma-separated; none allowed by default, the governance and system schemas never")
      ->envname("SLUICE_PROFILER_ALLOW_BINDINGS")
      ->delimiter(',');
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers")->envname("SLUICE_KAFKA_BOOTSTRAP")->capture_default_str();
  app.add_option("--topic-prefix", topic_prefix, "Prefix of every catalog topic")->envname("SLUICE_TOPIC_PREFIX");
  app.add_option("--group", group, "Kafka consumer group")->envname("SLUICE_PROFILER_GROUP")->capture_default_str();
  app.add_option("--worker-id", pc.worker_id, "Name of this worker in job rows (default: host-pid)")
      ->envname("SLUICE_PROFILER_WORKER_ID");
  app.add_option("--cooldown-h", cooldown_h, "Skip due/approved triggers this soon after a successful profile")
      ->envname("SLUICE_PROFILER_COOLDOWN_H")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--refresh-max-age-h", refresh_max_age_h, "data.refreshed profiles when the last profile is older")
      ->envname("SLUICE_PROFILER_REFRESH_MAX_AGE_H")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--refresh-rows-fraction", pc.policy.refresh_rows_fraction,
                 "data.refreshed profiles when rows_affected exceeds this share of the last row count")
      ->envname("SLUICE_PROFILER_REFRESH_ROWS_FRACTION")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--weight-completeness", pc.profile.weights.completeness, "Weight of completeness in the score")
      ->envname("SLUICE_PROFILER_WEIGHT_COMPLETENESS")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--weight-uniqueness", pc.profile.weights.uniqueness, "Weight of uniqueness in the score")
      ->envname("SLUICE_PROFILER_WEIGHT_UNIQUENESS")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--weight-validity", pc.profile.weights.validity, "Weight of validity in the score")
      ->envname("SLUICE_PROFILER_WEIGHT_VALIDITY")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--degradation-percent", pc.degradation_threshold_percent,
                 "Emit data.quality.degraded when the score falls by more than this % of the previous one")
      ->envname("SLUICE_PROFILER_DEGRADATION_PERCENT")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--statement-timeout-s", statement_timeout_s, "statement_timeout of a profile scan")
      ->envname("SLUICE_PROFILER_STATEMENT_TIMEOUT_S")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lease-s", lease_s, "Lease of a running job; expired leases are taken over")
      ->envname("SLUICE_PROFILER_LEASE_S")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--heartbeat-s", heartbeat_s, "How often a running job renews its lease (< --lease-s)")
      ->envname("SLUICE_PROFILER_HEARTBEAT_S")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-attempts", pc.max_attempts, "Attempts per job (retryable failures and lost workers)")
      ->envname("SLUICE_PROFILER_MAX_ATTEMPTS")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--retry-backoff-s", retry_backoff_s, "First retry delay, doubled per attempt (capped at 10 min)")
      ->envname("SLUICE_PROFILER_RETRY_BACKOFF_S")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--metrics-listen", metrics_listen, "Prometheus /metrics address; empty disables")
      ->envname("SLUICE_PROFILER_METRICS_LISTEN")->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->envname("SLUICE_LOG_LEVEL")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  sluice::common::InitLogging("sluice-profiler", log_level);
  pc.policy.cooldown = absl::Seconds(cooldown_h * 3600);
  pc.policy.refresh_max_age = absl::Seconds(refresh_max_age_h * 3600);
  pc.lease = absl::Seconds(lease_s);
  pc.heartbeat = absl::Seconds(heartbeat_s);
  pc.retry_backoff = absl::Seconds(retry_backoff_s);
  pc.profile.statement_timeout = absl::Seconds(statement_timeout_s);

  auto registry = std::make_shared<prometheus::Registry>();
  auto exposer = sluice::common::StartMetricsExposer(metrics_listen, registry);
  if (!exposer.ok()) return Fail("--metrics-listen", exposer.status());
  auto catalog = sluice::contracts::Catalog::Default().WithTopicPrefix(topic_prefix);
  auto profiler = sluice::profiler::Profiler::Create(pc, *registry, catalog);
  if (!profiler.ok()) return Fail("profiler", profiler.status());

  // The handler runs the jobs a batch queued, so the group must tolerate a batch's worth of
  // scans between polls: kMaxBatch statement timeouts plus five minutes (librdkafka's cap: a day).
  constexpr size_t kMaxBatch = 20;
  const int64_t poll_interval_ms = std::min<int64_t>(
      86'400'000, static_cast<int64_t>(kMaxBatch) * absl::ToInt64Milliseconds(pc.profile.statement_timeout) + 300'000);
  std::set<std::string> topics;
  const std::set<std::string> types = {"metadata.profile.due", "data.refreshed", "metadata.approved"};
  for (const auto& t : types) topics.insert(catalog.Find(t)->topic);
  auto consumer = sluice::kafka::Consumer::Create({.bootstrap_servers = bootstrap,
                                                      .group_id = group,
                                                      .client_id = "sluice-profiler",
                                                      .topics = {topics.begin(), topics.end()},
                                                      .types = types,
                                                      .max_batch = kMaxBatch,
                                                      .librdkafka = {{"max.poll.interval.ms", std::to_string(poll_interval_ms)}}});
  if (!consumer.ok()) return Fail("consumer", consumer.status());
  g_consumer = consumer->get();
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);

  spdlog::info("profiler: worker {} started (group {}, lease {}s)", (*profiler)->config().worker_id, group, lease_s);
  if ((*profiler)->bindings().empty())
    spdlog::warn("profiler: no --allow-binding: every binding is refused (binding_not_allowed)");
  else
    spdlog::info("profiler: bindings allowed: {}", fmt::join((*profiler)->bindings().Describe(), ", "));
  std::thread sweeper([&] { (*profiler)->SweepLoop(g_stop); });
  auto s = (*consumer)->Run([&](const std::vector<sluice::kafka::Record>& batch) { return (*profiler)->HandleBatch(batch); });
  g_stop.store(true);
  sweeper.join();
  if (auto c = (*consumer)->Close(); !c.ok()) spdlog::warn("profiler: close: {}", std::string(c.message()));
  if (!s.ok()) return Fail("consumer", s);
  spdlog::info("profiler: stopped");
  return 0;
}
