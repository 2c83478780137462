// sluice-audit: stores every event of every catalog topic in event_log (see
// consumers/audit/README.md).
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>

#include <array>

#include "common/service.h"
#include "common/strings.h"
#include "consumers/audit/audit_sink.h"
#include "consumers/audit/retention.h"
#include "contracts/catalog.h"
#include "kafka/consumer.h"

int main(int argc, char** argv) {
  sluice::common::Service service(
      "sluice-audit",
      "store every event of every catalog topic in event_log, once per tenant, event id and occurred_at");
  sluice::audit::AuditConfig ac;
  std::string bootstrap, topic_prefix, group = "sluice-audit";
  size_t max_batch = 5000;
  int retention_days = 365, retention_interval_s = 3600;
  service.AddPostgres(ac.pg_dsn, ac.pg_schema, "event_log");
  service.AddKafka(bootstrap, topic_prefix);
  service.Flag("group", group, "Kafka consumer group");
  service.Flag("max-batch", max_batch, "Most events per batch (offsets are committed per batch)")
      ->check(CLI::Range(1, 100000));
  service.Flag("pg-writers", ac.pg_writers, "PostgreSQL connections a batch is written through in parallel")
      ->check(CLI::Range(1, 16));
  service
      .Flag("retention-days", retention_days,
            "Drop event_log's monthly partitions once all their rows are older than this many days (0: keep "
            "everything)")
      ->check(CLI::Range(0, 100000));
  service.Flag("retention-interval-s", retention_interval_s, "Seconds between two retention sweeps")
      ->check(CLI::Range(1, 7 * 86400));
  service.AddMetrics("127.0.0.1:9466");
  if (auto rc = service.Parse(argc, argv)) return *rc;

  prometheus::Registry* registry = &service.registry();
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
                           .Help(
                               "Records stored in event_dead_letter instead of event_log, by reason (invalid, "
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
  auto& partitions_dropped = prometheus::BuildCounter()
                                 .Name("sluice_audit_partitions_dropped_total")
                                 .Help("event_log partitions dropped by the retention sweep")
                                 .Register(*registry)
                                 .Add({});
  if (auto s = service.StartMetrics(); !s.ok()) return service.Fail("--metrics-listen", s);

  auto sink = sluice::audit::AuditSink::Create(ac);
  if (!sink.ok()) return service.Fail("postgres", sink.status());
  // Retention runs beside the consumer on a thread of its own; it ends on a stop request,
  // and at the latest when `sweeper` goes out of scope.
  std::unique_ptr<sluice::audit::RetentionSweeper> sweeper;
  if (retention_days > 0) {
    auto created = sluice::audit::RetentionSweeper::Create(
        {.pg_dsn = ac.pg_dsn,
         .pg_schema = ac.pg_schema,
         .retention = absl::Hours(24) * retention_days,
         .interval = absl::Seconds(retention_interval_s),
         .on_dropped = [&](const std::string& partition) {
           spdlog::info("audit: retention dropped partition {} (every row older than {} days)", partition,
                        retention_days);
           partitions_dropped.Increment();
         }});
    if (!created.ok()) return service.Fail("retention", created.status());
    sweeper = *std::move(created);
    sweeper->Start();
  }
  auto stop_sweeper = service.OnStop([&] {
    if (sweeper) sweeper->Stop();
  });
  auto catalog = sluice::contracts::Catalog::Default().WithTopicPrefix(topic_prefix);
  std::vector<std::string> topics;
  for (const auto& t : catalog.topics()) topics.push_back(t.name());
  auto consumer = sluice::kafka::Consumer::Create({.bootstrap_servers = bootstrap,
                                                   .group_id = group,
                                                   .client_id = "sluice-audit",
                                                   .topics = topics,
                                                   .max_batch = max_batch,
                                                   .librdkafka = service.kafka_settings(),
                                                   .keep_undecodable = true});
  if (!consumer.ok()) return service.Fail("consumer", consumer.status());
  auto stop = service.OnStop([&] { (*consumer)->Stop(); });
  spdlog::info("audit: started (group {}, {} topics, retention {})", group, topics.size(),
               retention_days > 0 ? sluice::common::Cat(retention_days, " days") : std::string("off"));
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
  if (!s.ok()) return service.Fail("consumer", s);
  spdlog::info("audit: stopped");
  return 0;
}
