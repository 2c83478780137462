// sluice-audit: stores every event of every catalog topic in event_log (see
// consumers/audit/README.md).
#include <CLI/CLI.hpp>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <array>
#include <csignal>

#include "common/env.h"
#include "common/log.h"
#include "common/metrics_exposer.h"
#include "consumers/audit/audit_sink.h"
#include "kafka/consumer.h"
#include "contracts/catalog.h"

namespace {
sluice::kafka::Consumer* g_consumer = nullptr;
void OnSignal(int) {
  if (g_consumer != nullptr) g_consumer->Stop();  // an atomic store: async-signal-safe
}
int Fail(std::string_view what, const absl::Status& s) {
  spdlog::critical("{}: {}", what, std::string(s.message()));
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  sluice::audit::AuditConfig ac;
  ac.pg_dsn = sluice::common::DefaultPgDsn();
  std::string bootstrap = sluice::common::DefaultKafkaBootstrap(), topic_prefix, group = "sluice-audit";
  std::string metrics_listen = "127.0.0.1:9466", log_level = "info";
  size_t max_batch = 5000;
  CLI::App app{"sluice-audit: store every event of every catalog topic in event_log, once per tenant and event id"};
  app.add_option("--pg-dsn", ac.pg_dsn, "PostgreSQL holding event_log")->envname("SLUICE_PG_DSN")->capture_default_str();
  app.add_option("--pg-schema", ac.pg_schema, "Schema of event_log (default: the search_path)")->envname("SLUICE_PG_SCHEMA");
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers")->envname("SLUICE_KAFKA_BOOTSTRAP")->capture_default_str();
  app.add_option("--topic-prefix", topic_prefix, "Prefix of every catalog topic")->envname("SLUICE_TOPIC_PREFIX");
  app.add_option("--group", group, "Kafka consumer group")->envname("SLUICE_AUDIT_GROUP")->capture_default_str();
  app.add_option("--max-batch", max_batch, "Most events per batch (offsets are committed per batch)")
      ->envname("SLUICE_AUDIT_MAX_BATCH")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--pg-writers", ac.pg_writers, "PostgreSQL connections a batch is written through in parallel")
      ->envname("SLUICE_AUDIT_PG_WRITERS")->capture_default_str()->check(CLI::Range(1, 16));
  app.add_option("--metrics-listen", metrics_listen, "Prometheus /metrics address; empty disables")
      ->envname("SLUICE_AUDIT_METRICS_LISTEN")->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->envname("SLUICE_LOG_LEVEL")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  sluice::common::InitLogging("sluice-audit", log_level);

  auto registry = std::make_shared<prometheus::Registry>();
  auto& events = prometheus::BuildCounter()
                     .Name("sluice_audit_events_total")
                     .Help("Events handled by outcome (stored, duplicate, dead_lettered)")
                     .Register(*registry);
  auto& stored = events.Add({{"outcome", "stored"}});
  auto& duplicate = events.Add({{"outcome", "duplicate"}});
  auto& dead_lettered = events.Add({{"outcome", "dead_lettered"}});
  // Labels from the closed DeadLetterCategory set only; the free text is in event_dead_letter.
  auto& dead_letters = prometheus::BuildCounter()
                           .Name("sluice_audit_dead_letter_total")
                           .Help("Records stored in event_dead_letter instead of event_log, by reason (invalid, "
                                 "unencodable, unstorable)")
                           .Register(*registry);
  std::array<prometheus::Counter*, sluice::audit::kDeadLetterCategories> dead_letter_by{};
  for (auto c : sluice::audit::kAllDeadLetterCategories)
    dead_letter_by[static_cast<size_t>(c)] =
        &dead_letters.Add({{"reason", std::string(sluice::audit::CategoryLabel(c))}});
  auto& batch_seconds = prometheus::BuildHistogram()
                            .Name("sluice_audit_batch_seconds")
                            .Help("Time to store one batch in PostgreSQL")
                            .Register(*registry)
                            .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.05, 0.1, 0.5, 1, 5});
  auto exposer = sluice::common::StartMetricsExposer(metrics_listen, registry);
  if (!exposer.ok()) return Fail("--metrics-listen", exposer.status());

  auto sink = sluice::audit::AuditSink::Create(ac);
  if (!sink.ok()) return Fail("postgres", sink.status());
  auto catalog = sluice::contracts::Catalog::Default().WithTopicPrefix(topic_prefix);
  std::vector<std::string> topics;
  for (const auto& t : catalog.topics()) topics.push_back(t.name());
  auto consumer = sluice::kafka::Consumer::Create(
      {.bootstrap_servers = bootstrap, .group_id = group, .client_id = "sluice-audit", .topics = topics, .max_batch = max_batch,
       .keep_undecodable = true});
  if (!consumer.ok()) return Fail("consumer", consumer.status());
  g_consumer = consumer->get();
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  spdlog::info("audit: started (group {}, {} topics)", group, topics.size());
  auto s = (*consumer)->Run([&](const std::vector<sluice::kafka::Record>& batch) -> absl::Status {
    absl::Time t = absl::Now();
    auto r = (*sink)->Write(batch);
    if (!r.ok()) {
      spdlog::warn("audit: batch of {} not stored, will retry: {}", batch.size(), std::string(r.status().message()));
      return r.status();
    }
    batch_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - t));
    stored.Increment(static_cast<double>(r->stored));
    duplicate.Increment(static_cast<double>(r->duplicates));
    dead_lettered.Increment(static_cast<double>(r->dead_lettered));
    for (size_t c = 0; c < dead_letter_by.size(); ++c)
      dead_letter_by[c]->Increment(static_cast<double>(r->dead_lettered_by[c]));
    spdlog::debug("audit: batch of {}: {} stored, {} duplicate, {} dead-lettered", batch.size(), r->stored,
                  r->duplicates, r->dead_lettered);
    return absl::OkStatus();
  });
  if (auto c = (*consumer)->Close(); !c.ok()) spdlog::warn("audit: close: {}", std::string(c.message()));
  if (!s.ok()) return Fail("consumer", s);
  spdlog::info("audit: stopped");
  return 0;
}
