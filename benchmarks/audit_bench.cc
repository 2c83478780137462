// audit_bench: sluice-audit's sustained events per second from Kafka into PostgreSQL
// (consumer + AuditSink, as the service runs them), against, in the same run, the same
// consumer reading the same events and discarding them, and against PostgreSQL's own cost:
// a plain COPY of the same rows, encoded beforehand, into the same table. Targets (DESIGN
// §6): sink >= 0.5x consume-only (stretch 0.8x); formerly at least 50,000 events/s. Needs
// the local stack; creates and drops its own topics and schemas.
#include <CLI/CLI.hpp>
#include <absl/time/civil_time.h>

#include <cstdio>
#include <random>
#include <set>
#include <thread>

#include "benchmarks/drain.h"
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

using bench::Drain;

// event_log's columns in AppendRow's order (the sink's COPY column list).
constexpr char kColumns[] =
    "id, type, source, tenant_id, occurred_at, received_at, payload, correlation_id, causation_id, ttl_ms, metadata,"
    " topic, \"partition\", \"offset\", version, traceparent";

// The rows the sink would write, encoded once: per batch, one part per writer, shared out
// by the sink's rule (a hash of the event id), so each COPY below is one the sink makes.
struct EncodedRows {
  std::vector<std::vector<std::string>> batches;  // [batch][writer]: COPY text
  std::set<std::string> months;                   // event_log partitions the rows need (RFC 3339 month starts)
  int64_t rows = 0;
};

absl::Status Encode(const std::vector<kafka::Record>& batch, size_t writers, EncodedRows& out) {
  std::vector<std::string>& parts = out.batches.emplace_back(writers);
  const absl::Time now = absl::Now();
  for (const auto& r : batch) {
    std::string& part = parts[std::hash<std::string_view>{}(r.envelope.id()) % writers];
    if (auto s = audit::AppendRow(part, r, now); !s.ok()) return s;
    const absl::Time t = r.envelope.has_occurred_at() ? absl::FromUnixSeconds(r.envelope.occurred_at().seconds())
                                                      : absl::FromUnixMillis(r.timestamp_ms);
    const absl::CivilMonth month(absl::ToCivilSecond(t, absl::UTCTimeZone()));
    out.months.insert(absl::FormatCivilTime(absl::CivilSecond(month)) + "Z");
    ++out.rows;
  }
  return absl::OkStatus();
}

// PostgreSQL's own cost of storing the rows: `writers` connections, each COPYing its part
// of every batch straight into event_log, one transaction per batch as the sink does, with
// no Kafka, validation, encoding or savepoints. The partitions are made before the clock
// starts. Returns rows per second.
absl::StatusOr<double> RawCopy(const std::string& dsn, const std::string& schema, const EncodedRows& rows,
                               size_t writers) {
  std::vector<std::optional<common::PgConnection>> conns(writers);
  for (auto& c : conns) {
    auto made = common::Connect(dsn, schema);
    if (!made.ok()) return made.status();
    c.emplace(*std::move(made));
  }
  std::string months = "{";
  for (const auto& m : rows.months) months += (months.size() > 1 ? "," : "") + m;
  if (auto r = conns[0]->Exec("SELECT event_log_ensure_partition(m) FROM unnest($1::timestamptz[]) m", {months + "}"});
      !r.ok())
    return r.status();
  const std::string copy = common::Cat("COPY event_log (", kColumns, ") FROM STDIN");
  std::vector<absl::Status> failed(writers);
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (size_t w = 0; w < writers; ++w)
    threads.emplace_back([&, w] {
      for (const auto& batch : rows.batches) {
        if (batch[w].empty()) continue;
        auto tx = common::PgTransaction::Begin(*conns[w]);
        absl::Status s = tx.ok() ? conns[w]->CopyIn(copy, batch[w]).status() : tx.status();
        if (s.ok()) s = tx->Commit();
        if (!s.ok()) {
          failed[w] = s;
          return;
        }
      }
    });
  for (auto& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (const auto& s : failed)
    if (!s.ok()) return s;
  return static_cast<double>(rows.rows) / seconds;
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
  const std::string copy_schema = schema + "_copy";  // the raw COPY's table, made after the sink's run
  auto cleanup = [&] {
    (void)conn->ExecScript("DROP SCHEMA " + schema + " CASCADE");
    (void)conn->ExecScript("DROP SCHEMA IF EXISTS " + copy_schema + " CASCADE");
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
  // The baseline of PostgreSQL's own cost: the same records read once more (untimed),
  // encoded as the sink encodes them, then COPYed into a fresh event_log (all migrations,
  // so the same partitioning and indexes) by as many connections as the sink's writers.
  const size_t writers = static_cast<size_t>(audit::AuditConfig{}.pg_writers);
  EncodedRows encoded;
  auto read_again = Drain(bootstrap, topics, "bench-encode-" + id, events, max_batch,
                          [&](const std::vector<kafka::Record>& b) { return Encode(b, writers, encoded); });
  absl::StatusOr<double> raw_copy = absl::UnknownError("not run");
  if (!read_again.ok()) {
    raw_copy = read_again.status();
  } else {
    if (conn->ExecScript("CREATE SCHEMA " + copy_schema + "; SET search_path TO " + copy_schema).ok() &&
        common::Migrate(*conn, std::string(SLUICE_SOURCE_DIR) + "/sql/migrations").ok())
      raw_copy = RawCopy(dsn, copy_schema, encoded, writers);
    else
      raw_copy = absl::UnavailableError("cannot prepare schema " + copy_schema);
    (void)conn->SetSearchPath(schema);
  }
  if (!raw_copy.ok())
    std::fprintf(stderr, "raw COPY baseline failed: %s\n", std::string(raw_copy.status().message()).c_str());

  // event_log is partitioned: its own size is 0, the partitions hold the rows and indexes.
  auto rows = conn->Exec(
      "SELECT (SELECT count(*) FROM event_log), pg_size_pretty((SELECT sum(pg_total_relation_size(relid))"
      " FROM pg_partition_tree('event_log')))");
  const double x_copy = raw_copy.ok() ? *stored / *raw_copy : 0;
  char x_copy_text[16] = "-";
  if (raw_copy.ok()) std::snprintf(x_copy_text, sizeof x_copy_text, "%.2f", x_copy);
  std::printf("\n%-44s %12s %8s %8s\n", "", "events/s", "ratio", "x COPY");
  std::printf("%-44s %12.0f %8s\n", "baseline: consume and decode only", *consume_only, "1.00");
  if (raw_copy.ok())
    std::printf("%-44s %12.0f %8.2f %8s   (%zu connections, %lld rows)\n", "baseline: raw COPY of the same rows",
                *raw_copy, *raw_copy / *consume_only, "1.00", writers, static_cast<long long>(encoded.rows));
  else
    std::printf("%-44s %12s\n", "baseline: raw COPY of the same rows", "failed");
  std::printf("%-44s %12.0f %8.2f %8s   (%s rows, %s with indexes)\n", "sluice-audit: consume + store in event_log",
              *stored, *stored / *consume_only, x_copy_text, rows.ok() ? std::string(rows->Get(0, 0)).c_str() : "?",
              rows.ok() ? std::string(rows->Get(0, 1)).c_str() : "?");
  std::printf("%-44s encode rows %.2f s, COPY %.2f s, merge + commit %.2f s\n",
              "  time in AuditSink::Write:", absl::ToDoubleSeconds(encode), absl::ToDoubleSeconds(copy),
              absl::ToDoubleSeconds(merge));
  std::printf("\ntarget: >= 50,000 events/s into PostgreSQL (%s)\n", *stored >= 50000 ? "met" : "not met");
  const double ratio = *stored / *consume_only;
  std::printf("target: sink >= 0.50x consume-only: %.2f (%s); stretch >= 0.80x (%s)\n", ratio,
              ratio >= 0.5 ? "met" : "NOT met", ratio >= 0.8 ? "met" : "NOT met");
  if (raw_copy.ok())
    std::printf("PostgreSQL's own share: raw COPY alone reaches %.2fx consume-only; the sink gets %.0f%% of it\n",
                *raw_copy / *consume_only, 100 * x_copy);
  cleanup();
  return 0;
}
