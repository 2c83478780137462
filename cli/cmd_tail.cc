// sluicectl tail: follows event types or topics on Kafka.
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "contracts/envelope.h"
#include "contracts/json.h"
#include "kafka/consumer.h"

namespace sluice::cli {
namespace {

struct TailOptions {
  std::vector<std::string> types;
  std::vector<std::string> topics;
  std::string tenant;
  bool from_beginning = false;
  int64_t max = 0;
};

// Set by SIGINT/SIGTERM: tail stops between polls and exits 0.
std::atomic<bool> g_stop_tail{false};

// Follows topics (or the topics of types) and prints each event as a JSON line.
int Tail(const Globals& g, const TailOptions& o) {
  auto catalog = g.Catalog();
  std::set<std::string> types(o.types.begin(), o.types.end());
  std::vector<std::string> topics = o.topics;
  if (topics.empty()) {
    auto t = catalog.TopicsFor(types);
    if (!t.ok()) return Fail(t.status());
    topics = *t;
  }
  auto consumer = kafka::Consumer::Create({.bootstrap_servers = g.bootstrap,
                                           .group_id = "sluicectl-tail-" + contracts::NewUuidV7(),
                                           .client_id = "sluicectl-tail",
                                           .topics = topics,
                                           .types = types,
                                           .auto_offset_reset = o.from_beginning ? "earliest" : "latest",
                                           .librdkafka = g.kafka});
  if (!consumer.ok()) return Fail(consumer.status());
  std::signal(SIGINT, [](int) { g_stop_tail.store(true); });
  std::signal(SIGTERM, [](int) { g_stop_tail.store(true); });
  int64_t printed = 0;
  while (!g_stop_tail.load() && (o.max == 0 || printed < o.max)) {
    auto n = (*consumer)->PollOnce([&](const std::vector<kafka::Record>& batch) {
      for (const auto& r : batch) {
        if (!o.tenant.empty() && r.envelope.tenant_id() != o.tenant) continue;
        if (o.max != 0 && printed >= o.max) break;
        auto json = contracts::ToJson(r.envelope);
        if (!json.ok()) return json.status();
        std::printf("%s\n", json->c_str());
        ++printed;
      }
      std::fflush(stdout);
      return absl::OkStatus();
    });
    if (!n.ok()) return Fail(n.status());
  }
  return 0;
}

}  // namespace

void AddTailCommand(CLI::App& app, Globals& g) {
  auto o = std::make_shared<TailOptions>();
  auto* tail = app.add_subcommand("tail", "Follow event types or topics on Kafka, printing each event as JSON");
  tail->add_option("--type", o->types, "Event type to follow (repeatable)");
  tail->add_option("--topic", o->topics, "Topic to follow (repeatable); default: the topics of --type, or all");
  tail->add_option("--tenant", o->tenant, "Only this tenant's events");
  tail->add_flag("--from-beginning", o->from_beginning, "Start at the oldest retained event instead of new ones");
  tail->add_option("--max", o->max, "Stop after this many events (0 = follow until interrupted)")
      ->capture_default_str();
  OnRun(tail, g, [&g, o] { return Tail(g, *o); });
}

}  // namespace sluice::cli
