#include "cli/replay.h"

#include <absl/strings/str_join.h>
#include <absl/time/time.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>

#include "cli/time_flag.h"
#include "common/strings.h"
#include "kafka/replay.h"

namespace sluice::cli {
namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "sluicectl replay: %s\n", std::string(s.message()).c_str());
  return 1;
}

}  // namespace

int RunReplay(const ReplayOptions& o) {
  const contracts::Catalog catalog = contracts::Catalog::Default().WithTopicPrefix(o.topic_prefix);
  kafka::ReplaySpec spec;
  // A --topic that names a catalog topic gets --topic-prefix, as the topics of --type do;
  // a name that already carries the prefix, or is no catalog topic, is read as given.
  std::set<std::string> catalog_topics;
  for (const auto& t : catalog.topics()) catalog_topics.insert(t.name());
  std::vector<std::string> named;
  for (const auto& t : o.topics) {
    const std::string prefixed = o.topic_prefix + t;
    named.push_back(!catalog_topics.contains(t) && catalog_topics.contains(prefixed) ? prefixed : t);
  }
  auto topics = kafka::ReplayTopics(catalog, named, o.types);
  if (!topics.ok()) return Fail(topics.status());
  spec.topics = *topics;
  spec.range.from_offset = o.from_offset;
  spec.range.to_offset = o.to_offset;
  spec.range.partition = o.partition;
  auto from = ParseTimeFlag("--from", o.from_time);
  if (!from.ok()) return Fail(from.status());
  auto to = ParseTimeFlag("--to", o.to_time);
  if (!to.ok()) return Fail(to.status());
  spec.range.from_time = *from;
  spec.range.to_time = *to;
  spec.filter.tenants = {o.tenants.begin(), o.tenants.end()};
  spec.filter.types = {o.types.begin(), o.types.end()};
  spec.filter.sources = {o.sources.begin(), o.sources.end()};
  spec.filter.correlation_id = o.correlation_id;
  spec.target_topic = o.target_topic;

  const bool write_lines = o.target_topic.empty() || o.output_given;
  std::ofstream file;
  std::ostream* out = &std::cout;
  if (write_lines && o.output != "-") {
    file.open(o.output, std::ios::trunc);
    if (!file) return Fail(absl::InvalidArgumentError(common::Cat("--output: cannot write ", o.output)));
    out = &file;
  }
  std::unique_ptr<kafka::Producer> producer;
  if (!o.target_topic.empty()) {
    auto p = kafka::Producer::Create(
        {.bootstrap_servers = o.bootstrap, .client_id = "sluicectl-replay", .librdkafka = o.librdkafka}, catalog);
    if (!p.ok()) return Fail(p.status());
    producer = *std::move(p);
  }
  auto stats =
      kafka::Replay({.bootstrap_servers = o.bootstrap, .client_id = "sluicectl-replay", .librdkafka = o.librdkafka},
                    spec, producer.get(), [&](const kafka::Record& r, const kafka::DeliveryReport*) -> absl::Status {
                      if (!write_lines) return absl::OkStatus();
                      auto line = kafka::RecordToJsonLine(r);
                      if (!line.ok()) return line.status();
                      *out << *line << '\n';
                      if (!*out) return absl::DataLossError(common::Cat("--output: write failed"));
                      return absl::OkStatus();
                    });
  out->flush();
  if (!stats.ok()) return Fail(stats.status());
  std::fprintf(
      stderr,
      "sluicectl replay: %llu events from %s (%llu filtered out, %llu outside the time window, %llu undecodable)",
      static_cast<unsigned long long>(stats->matched), absl::StrJoin(spec.topics, ", ").c_str(),
      static_cast<unsigned long long>(stats->filtered_out),
      static_cast<unsigned long long>(stats->reader.outside_window),
      static_cast<unsigned long long>(stats->reader.undecodable));
  if (!o.target_topic.empty())
    std::fprintf(stderr, "; re-published %llu into %s", static_cast<unsigned long long>(stats->republished),
                 o.target_topic.c_str());
  std::fprintf(stderr, "\n");
  return 0;
}

}  // namespace sluice::cli
