// sluicectl: the Sluice operator and developer CLI.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "cli/envelope_io.h"
#include "common/env.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/strings.h"
#include "consumers/consumer.h"
#include "contracts/envelope.h"
#include "contracts/json.h"
#include "contracts/validate.h"
#include "contracts/vectors.h"
#include "producers/producer.h"
#include "producers/topic_admin.h"

namespace sluice::cli {
namespace {

struct Globals {
  std::string bootstrap = common::DefaultKafkaBootstrap();
  std::string topic_prefix;
  std::string log_level = "warn";
  contracts::Catalog Catalog() const { return contracts::Catalog::Default().WithTopicPrefix(topic_prefix); }
};

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "sluicectl: %s\n", std::string(s.message()).c_str());
  return 1;
}

int TopicsEnsure(const Globals& g, int replication_factor) {
  auto report = producer::EnsureTopics(g.bootstrap, g.Catalog(), {.replication_factor = replication_factor});
  if (!report.ok()) return Fail(report.status());
  for (const auto& t : report->created) std::printf("created  %s\n", t.c_str());
  for (const auto& t : report->existing) std::printf("exists   %s\n", t.c_str());
  for (const auto& t : report->mismatched) std::printf("MISMATCH %s (partition count differs from the catalog)\n", t.c_str());
  return report->mismatched.empty() ? 0 : 1;
}

int TopicsList(const Globals& g) {
  auto topics = producer::ListTopics(g.bootstrap);
  if (!topics.ok()) return Fail(topics.status());
  auto catalog = g.Catalog();
  for (const auto& t : catalog.topics()) {
    auto it = topics->find(t.name());
    if (it == topics->end()) {
      std::printf("%-28s missing (catalog: %d partitions)\n", t.name().c_str(), t.partitions());
    } else {
      std::printf("%-28s %d partitions  types: %s\n", t.name().c_str(), it->second,
                  fmt::format("{}", fmt::join(catalog.TypesOnTopic(t.name()), ", ")).c_str());
    }
  }
  return 0;
}

absl::StatusOr<std::string> ReadInput(const std::string& path) {
  if (path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  return contracts::ReadFile(path);
}

int Validate(const Globals& g, const std::vector<std::string>& files, bool fill) {
  auto catalog = g.Catalog();
  int bad = 0;
  for (const auto& f : files) {
    auto text = ReadInput(f);
    if (!text.ok()) return Fail(text.status());
    auto envelopes = ParseEnvelopes(*text);
    if (!envelopes.ok()) {
      std::printf("%s: %s\n", f.c_str(), std::string(envelopes.status().message()).c_str());
      ++bad;
      continue;
    }
    for (size_t i = 0; i < envelopes->size(); ++i) {
      v1::Envelope& e = (*envelopes)[i];
      if (fill) contracts::FillDefaults(e, catalog);
      absl::Status s = contracts::Validate(e, catalog);
      std::printf("%s#%zu %s: %s\n", f.c_str(), i + 1, e.type().empty() ? "?" : e.type().c_str(),
                  s.ok() ? "ok" : std::string(s.message()).c_str());
      if (!s.ok()) ++bad;
    }
  }
  return bad == 0 ? 0 : 1;
}

int Migrate(const std::string& dsn, const std::string& dir) {
  auto conn = common::PgConnection::Connect(dsn);
  if (!conn.ok()) return Fail(conn.status());
  auto report = common::Migrate(*conn, dir);
  if (!report.ok()) return Fail(report.status());
  for (const auto& m : report->applied) std::printf("applied  %s\n", m.c_str());
  std::printf("%zu applied, %zu already in place\n", report->applied.size(), report->existing.size());
  return 0;
}

// Publishes one event of each type (from the golden vectors, with fresh ids, times and
// one correlation id) and reads them back through a fresh consumer group.
int Demo(const Globals& g, const std::string& vectors_dir, const std::string& tenant, int timeout_s) {
  auto catalog = g.Catalog();
  if (auto r = producer::EnsureTopics(g.bootstrap, catalog); !r.ok()) return Fail(r.status());
  auto vectors = contracts::LoadVectors(vectors_dir);
  if (!vectors.ok()) return Fail(vectors.status());
  auto producer = producer::Producer::Create({.bootstrap_servers = g.bootstrap, .client_id = "sluicectl-demo"}, catalog);
  if (!producer.ok()) return Fail(producer.status());

  const std::string correlation = contracts::NewUuidV7();
  std::map<std::string, std::string> want;  // id -> type
  std::printf("publishing %zu events for tenant %s (correlation %s)\n", vectors->size(), tenant.c_str(),
              correlation.c_str());
  for (auto& v : *vectors) {
    v1::Envelope e = v.envelope;
    e.clear_id();
    e.clear_occurred_at();
    e.clear_causation_id();
    e.set_tenant_id(tenant);
    e.set_correlation_id(correlation);
    auto report = (*producer)->SendSync(e);
    if (!report.ok()) return Fail(report.status());
    std::printf("  %-28s -> %s[%d]@%lld  id %s\n", v.type.c_str(), report->topic.c_str(), report->partition,
                static_cast<long long>(report->offset), report->event_id.c_str());
    want[report->event_id] = v.type;
  }

  std::vector<std::string> topics;
  for (const auto& t : catalog.topics()) topics.push_back(t.name());
  auto consumer = consumer::Consumer::Create({.bootstrap_servers = g.bootstrap,
                                              .group_id = "sluicectl-demo-" + correlation,
                                              .client_id = "sluicectl-demo",
                                              .topics = topics});
  if (!consumer.ok()) return Fail(consumer.status());
  std::printf("reading them back:\n");
  const absl::Time deadline = absl::Now() + absl::Seconds(timeout_s);
  absl::Status failed;
  while (!want.empty() && absl::Now() < deadline) {
    auto n = (*consumer)->PollOnce([&](const std::vector<consumer::Record>& batch) {
      for (const auto& r : batch) {
        if (!want.erase(r.envelope.id())) continue;  // older events on the same topics
        auto json = contracts::ToJson(r.envelope);
        if (!json.ok()) return json.status();
        std::printf("%s[%d]@%lld %s\n", r.topic.c_str(), r.partition, static_cast<long long>(r.offset), json->c_str());
      }
      return absl::OkStatus();
    });
    if (!n.ok()) failed = n.status();
  }
  (void)(*consumer)->Close();
  if (!want.empty()) {
    for (const auto& [id, type] : want) std::fprintf(stderr, "sluicectl: not read back within %ds: %s %s\n", timeout_s, type.c_str(), id.c_str());
    if (!failed.ok()) return Fail(failed);
    return 1;
  }
  std::printf("all %zu events read back\n", vectors->size());
  return 0;
}

}  // namespace
}  // namespace sluice::cli

int main(int argc, char** argv) {
  using namespace sluice::cli;
  Globals g;
  CLI::App app{"sluicectl: operate and try out a Sluice event platform"};
  app.require_subcommand(1);
  app.add_option("--bootstrap", g.bootstrap, "Kafka bootstrap servers (env SLUICE_KAFKA_BOOTSTRAP)")
      ->capture_default_str();
  app.add_option("--topic-prefix", g.topic_prefix, "Prefix added to every catalog topic name (e.g. an environment)");
  app.add_option("--log-level", g.log_level, "trace|debug|info|warn|error")->capture_default_str();

  auto* topics = app.add_subcommand("topics", "Provision and inspect the catalog's Kafka topics");
  topics->require_subcommand(1);
  int rf = 0;
  auto* ensure = topics->add_subcommand("ensure", "Create missing catalog topics (partitions, retention.ms)");
  ensure->add_option("--replication-factor", rf, "Replication factor; 0 = the catalog's, capped at the broker count")
      ->capture_default_str();
  auto* list = topics->add_subcommand("list", "Show each catalog topic, its partitions and event types");

  std::vector<std::string> files;
  bool fill = false;
  auto* validate = app.add_subcommand("validate", "Validate envelopes (JSON, JSON lines or text format); '-' reads stdin");
  validate->add_option("files", files, "Files to check")->required();
  validate->add_flag("--fill-defaults", fill, "Assign id, occurred_at, type and version first, as producers do");

  std::string vectors_dir = std::string(SLUICE_SOURCE_DIR) + "/contracts/vectors";
  std::string tenant = "tenant-demo";
  int timeout_s = 60;
  auto* demo = app.add_subcommand("demo", "Publish one event of each of the 13 types and read them back as JSON");
  demo->add_option("--vectors", vectors_dir, "Golden vectors to publish")->capture_default_str();
  demo->add_option("--tenant", tenant, "Tenant id for the events")->capture_default_str();
  demo->add_option("--timeout", timeout_s, "Seconds to wait for the events to come back")->capture_default_str();

  std::string dsn = sluice::common::DefaultPgDsn();
  std::string migrations = std::string(SLUICE_SOURCE_DIR) + "/sql/migrations";
  auto* migrate = app.add_subcommand("migrate", "Apply pending sql/migrations to PostgreSQL, in order, once each");
  migrate->add_option("--dsn", dsn, "libpq connection string (env SLUICE_PG_DSN)")->capture_default_str();
  migrate->add_option("--dir", migrations, "Directory of NNNN_name.sql files")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  sluice::common::InitLogging("sluicectl", g.log_level);

  if (*ensure) return TopicsEnsure(g, rf);
  if (*list) return TopicsList(g);
  if (*validate) return Validate(g, files, fill);
  if (*demo) return Demo(g, vectors_dir, tenant, timeout_s);
  if (*migrate) return Migrate(dsn, migrations);
  return 2;
}
