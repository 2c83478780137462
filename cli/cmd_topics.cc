// sluicectl topics ensure|list|delete: the catalog's Kafka topics.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "kafka/topic_admin.h"

namespace sluice::cli {
namespace {

int TopicsEnsure(const Globals& g, int replication_factor) {
  auto report =
      kafka::EnsureTopics(g.bootstrap, g.Catalog(), {.replication_factor = replication_factor, .librdkafka = g.kafka});
  if (!report.ok()) return Fail(report.status());
  for (const auto& t : report->created) std::printf("created  %s\n", t.c_str());
  for (const auto& t : report->existing) std::printf("exists   %s\n", t.c_str());
  for (const auto& t : report->mismatched)
    std::printf("MISMATCH %s (partition count differs from the catalog)\n", t.c_str());
  return report->mismatched.empty() ? 0 : 1;
}

int TopicsDelete(const Globals& g, bool yes) {
  if (!yes) return Fail(absl::FailedPreconditionError("topics delete destroys every event in them: add --yes"));
  std::vector<std::string> names;
  const contracts::Catalog catalog = g.Catalog();
  for (const auto& t : catalog.topics()) names.push_back(t.name());
  if (auto s = kafka::DeleteTopics(g.bootstrap, names, absl::Seconds(30), g.kafka); !s.ok()) return Fail(s);
  for (const auto& n : names) std::printf("deleted  %s\n", n.c_str());
  return 0;
}

int TopicsList(const Globals& g) {
  auto topics = kafka::ListTopics(g.bootstrap, absl::Seconds(10), g.kafka);
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

}  // namespace

void AddTopicsCommand(CLI::App& app, Globals& g) {
  auto* topics = app.add_subcommand("topics", "Provision and inspect the catalog's Kafka topics");
  topics->require_subcommand(1);

  auto rf = std::make_shared<int>(0);
  auto* ensure = topics->add_subcommand("ensure", "Create missing catalog topics (partitions, retention.ms)");
  ensure->add_option("--replication-factor", *rf, "Replication factor; 0 = the catalog's, capped at the broker count")
      ->capture_default_str();
  OnRun(ensure, g, [&g, rf] { return TopicsEnsure(g, *rf); });

  auto* list = topics->add_subcommand("list", "Show each catalog topic, its partitions and event types");
  OnRun(list, g, [&g] { return TopicsList(g); });

  auto yes = std::make_shared<bool>(false);
  auto* del = topics->add_subcommand("delete", "Delete the catalog topics (with --topic-prefix: that environment's)");
  del->add_flag("--yes", *yes, "Confirm: the topics' events are gone for good");
  OnRun(del, g, [&g, yes] { return TopicsDelete(g, *yes); });
}

}  // namespace sluice::cli
