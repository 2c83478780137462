// audit_bench: sluice-audit's sustained events per second from Kafka into PostgreSQL
// (consumer + AuditSink, as the service runs them), against, in the same run, the same
// consumer reading the same events and discarding them. Target: at least 50,000 events/s
// into PostgreSQL. Needs the local stack; creates and drops its own topics and schema.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <random>

#include "common/env.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/strings.h"
#include "consumers/audit/audit_sink.h"
#include "contracts/envelope.h"
#include "contracts/vectors.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "kafka/topic_admin.h"

namespace {

using namespace sluice;

// Reads `want` records from every topic with a fresh group, handing each batch to `handle`;
// returns events per second from the first batch to the last.
absl::StatusOr<double> Drain(const std::string& bootstrap, const std::vector<std::string>& topics,
                             const std::string& group, int64_t want, size_t max_batch,
                             const std::function<absl::Status(const std::vector<kafka::Record>&)>& handle) {
  auto c = kafka::Consumer::Create(
      {.bootstrap_servers = bootstrap, .group_id = group, .topics = topics, .max_batch = max_batch});
  if (!c.ok()) return c.status();
  int64_t got = 0;
  std::optional<absl::Time> start;
  absl::Time end = absl::Now() + absl::Minutes(10);
  while (got < want && absl::Now() < end) {
    auto n = (*c)->PollOnce([&](const std::vector<kafka::Record>& batch) {
      if (!start) start = absl::Now();
      return handle(batch);
    });
    if (!n.ok()) return n.status();
    got += static_cast<int64_t>(*n);
  }
  if (got < want) return absl::DeadlineExceededError(common::Cat("read ", got, " of ", want));
  return static_cast<double>(got) / absl::ToDoubleSeconds(absl::Now() - *start);
}

}  // namespace

int main(int argc, char** argv) {
  std::string bootstrap = common::DefaultKafkaBootstrap(), dsn = common::DefaultPgDsn();
  int64_t events = 300'000;
  int tenants = 20;
  size_t max_batch = 5000;
  CLI::App app{"audit_bench: sluice-audit events/s into PostgreSQL vs consuming alone, same run"};
  app.add_option("--events", events, "Events to publish and store")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--tenants", tenants, "Tenants the events are spread over")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-batch", max_batch, "Events per batch (sluice-audit --max-batch)")->capture_default_str();
  app.add_option("--bootstrap", bootstrap, "Kafka")->capture_default_str();
  app.add_option("--dsn", dsn, "PostgreSQL")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  common::InitLogging("audit_bench", "warn");

  const std::string id = std::to_string(std::random_device{}());
  auto catalog = contracts::Catalog::Default().WithTopicPrefix("bench-audit-" + id + ".");
  if (auto r = kafka::EnsureTopics(bootstrap, catalog); !r.ok()) {
    std::fprintf(stderr, "topics: %s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  std::vector<std::string> topics;
  for (const auto& t : catalog.topics()) topics.push_back(t.name());
  const std::string schema = "bench_audit_" + id;
  auto conn = common::PgConnection::Connect(dsn);
  if (!conn.ok() || !conn->ExecScript("CREATE SCHEMA " + schema + "; SET search_path TO " + schema).ok() ||
      !common::Migrate(*conn, std::string(SLUICE_SOURCE_DIR) + "/sql/migrations").ok()) {
    std::fprintf(stderr, "postgres: cannot prepare schema %s\n", schema.c_str());
    return 1;
  }
  auto cleanup = [&] {
    (void)conn->ExecScript("DROP SCHEMA " + schema + " CASCADE");
    (void)kafka::DeleteTopics(bootstrap, topics);
  };

  // The 13 golden events, round robin, made to look like live traffic: fresh ids, stamped
  // when sent, spread over `tenants` tenants, a correlation id per chain of four events.
  auto goldens = contracts::LoadVectors(std::string(SLUICE_SOURCE_DIR) + "/contracts/vectors");
  auto p = kafka::Producer::Create({.bootstrap_servers = bootstrap}, catalog);
  if (!goldens.ok() || !p.ok()) {
    cleanup();
    return 1;
  }
  std::vector<v1::Envelope> mix;
  std::string chain;
  for (const auto& v : *goldens) mix.push_back(v.envelope);
  std::printf("publishing %lld events (the 13 golden types, round robin, %d tenants) ...\n",
              static_cast<long long>(events), tenants);
  std::fflush(stdout);
  for (int64_t i = 0; i < events; ++i) {
    v1::Envelope e = mix[i % mix.size()];
    e.set_id(contracts::NewUuidV7());
    e.clear_occurred_at();  // the producer stamps it now
    e.set_tenant_id(common::Cat("tenant-", i % tenants));
    if (i % 4 == 0) chain = contracts::NewUuidV7();
    e.set_correlation_id(chain);
    (*p)->Send(std::move(e), [](absl::StatusOr<kafka::DeliveryReport>) {});
  }
  if (auto s = (*p)->Flush(absl::Minutes(2)); !s.ok()) {
    cleanup();
    return 1;
  }

  auto consume_only = Drain(bootstrap, topics, "bench-consume-" + id, events, max_batch,
                            [](const std::vector<kafka::Record>&) { return absl::OkStatus(); });
  auto sink = audit::AuditSink::Create({.pg_dsn = dsn, .pg_schema = schema});
  absl::Duration encode, copy, merge;
  absl::StatusOr<double> stored = sink.ok() ? Drain(bootstrap, topics, "bench-audit-" + id, events, max_batch,
                                                    [&](const std::vector<kafka::Record>& b) {
                                                      auto r = (*sink)->Write(b);
                                                      if (r.ok()) {
                                                        encode += r->encode;
                                                        copy += r->copy;
                                                        merge += r->merge;
                                                      }
                                                      return r.ok() ? absl::OkStatus() : r.status();
                                                    })
                                            : absl::StatusOr<double>(sink.status());
  if (!consume_only.ok() || !stored.ok()) {
    std::fprintf(stderr, "failed: %s\n",
                 std::string((consume_only.ok() ? stored.status() : consume_only.status()).message()).c_str());
    cleanup();
    return 1;
  }
  // event_log is partitioned: its own size is 0, the partitions hold the rows and indexes.
  auto rows = conn->Exec(
      "SELECT (SELECT count(*) FROM event_log), pg_size_pretty((SELECT sum(pg_total_relation_size(relid))"
      " FROM pg_partition_tree('event_log')))");
  std::printf("\n%-44s %12s %8s\n", "", "events/s", "ratio");
  std::printf("%-44s %12.0f %8s\n", "baseline: consume and decode only", *consume_only, "1.00");
  std::printf("%-44s %12.0f %8.2f   (%s rows, %s with indexes)\n", "sluice-audit: consume + store in event_log",
              *stored, *stored / *consume_only, rows.ok() ? std::string(rows->Get(0, 0)).c_str() : "?",
              rows.ok() ? std::string(rows->Get(0, 1)).c_str() : "?");
  std::printf("%-44s encode rows %.2f s, COPY %.2f s, merge + commit %.2f s\n",
              "  time in AuditSink::Write:", absl::ToDoubleSeconds(encode), absl::ToDoubleSeconds(copy),
              absl::ToDoubleSeconds(merge));
  std::printf("\ntarget: >= 50,000 events/s into PostgreSQL (%s)\n", *stored >= 50000 ? "met" : "not met");
  cleanup();
  return 0;
}
