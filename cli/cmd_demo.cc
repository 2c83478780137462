// sluicectl demo: one event of each type through Kafka and back.
#include <absl/time/clock.h>
#include <absl/time/time.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/data_dirs.h"
#include "contracts/envelope.h"
#include "contracts/json.h"
#include "contracts/vectors.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "kafka/topic_admin.h"

namespace sluice::cli {
namespace {

struct DemoOptions {
  std::string vectors_dir;  // empty: VectorsDir's lookup
  std::string tenant = "tenant-demo";
  int timeout_s = 60;
};

// Publishes one event of each type (from the golden vectors, with fresh ids, times and
// one correlation id) and reads them back through a fresh consumer group.
int Demo(const Globals& g, const DemoOptions& o) {
  auto catalog = g.Catalog();
  if (auto r = kafka::EnsureTopics(g.bootstrap, catalog, {.librdkafka = g.kafka}); !r.ok()) return Fail(r.status());
  auto vectors = contracts::LoadVectors(VectorsDir(o.vectors_dir));
  if (!vectors.ok()) return Fail(vectors.status());
  auto producer = kafka::Producer::Create(
      {.bootstrap_servers = g.bootstrap, .client_id = "sluicectl-demo", .librdkafka = g.kafka}, catalog);
  if (!producer.ok()) return Fail(producer.status());

  const std::string correlation = contracts::NewUuidV7();
  std::map<std::string, std::string> want;  // id -> type
  std::printf("publishing %zu events for tenant %s (correlation %s)\n", vectors->size(), o.tenant.c_str(),
              correlation.c_str());
  for (auto& v : *vectors) {
    v1::Envelope e = v.envelope;
    e.clear_id();
    e.clear_occurred_at();
    e.clear_causation_id();
    e.set_tenant_id(o.tenant);
    e.set_correlation_id(correlation);
    auto report = (*producer)->SendSync(e);
    if (!report.ok()) return Fail(report.status());
    std::printf("  %-28s -> %s[%d]@%lld  id %s\n", v.type.c_str(), report->topic.c_str(), report->partition,
                static_cast<long long>(report->offset), report->event_id.c_str());
    want[report->event_id] = v.type;
  }

  std::vector<std::string> topics;
  for (const auto& t : catalog.topics()) topics.push_back(t.name());
  auto consumer = kafka::Consumer::Create({.bootstrap_servers = g.bootstrap,
                                           .group_id = "sluicectl-demo-" + correlation,
                                           .client_id = "sluicectl-demo",
                                           .topics = topics,
                                           .librdkafka = g.kafka});
  if (!consumer.ok()) return Fail(consumer.status());
  std::printf("reading them back:\n");
  const absl::Time deadline = absl::Now() + absl::Seconds(o.timeout_s);
  absl::Status failed;
  while (!want.empty() && absl::Now() < deadline) {
    auto n = (*consumer)->PollOnce([&](const std::vector<kafka::Record>& batch) {
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
    for (const auto& [id, type] : want)
      std::fprintf(stderr, "sluicectl: not read back within %ds: %s %s\n", o.timeout_s, type.c_str(), id.c_str());
    if (!failed.ok()) return Fail(failed);
    return 1;
  }
  std::printf("all %zu events read back\n", vectors->size());
  return 0;
}

}  // namespace

void AddDemoCommand(CLI::App& app, Globals& g) {
  auto o = std::make_shared<DemoOptions>();
  auto* demo = app.add_subcommand("demo", "Publish one event of each of the 13 types and read them back as JSON");
  demo->add_option("--vectors", o->vectors_dir,
                   "Golden vectors to publish (default: $SLUICE_VECTORS_DIR, else ../share/sluice/vectors next to "
                   "the sluicectl binary if it exists, else the source tree's contracts/vectors)");
  demo->add_option("--tenant", o->tenant, "Tenant id for the events")->capture_default_str();
  demo->add_option("--timeout", o->timeout_s, "Seconds to wait for the events to come back")->capture_default_str();
  OnRun(demo, g, [&g, o] { return Demo(g, *o); });
}

}  // namespace sluice::cli
