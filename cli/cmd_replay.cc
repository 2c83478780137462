// sluicectl replay: flags of the replay; reading and writing is in replay.cc.
#include <memory>

#include "cli/commands.h"
#include "cli/replay.h"

namespace sluice::cli {

void AddReplayCommand(CLI::App& app, Globals& g) {
  auto ro = std::make_shared<ReplayOptions>();
  auto* replay = app.add_subcommand(
      "replay", "Read topics by offset or time range and write JSON lines, or re-publish into another topic");
  replay->add_option("--topic", ro->topics,
                     "Topic to read (repeatable); a catalog topic's name gets --topic-prefix, like --type's topics");
  replay->add_option("--type", ro->types, "Event type: reads its topic and keeps only this type (repeatable)");
  replay->add_option("--tenant", ro->tenants, "Only this tenant's events (repeatable)");
  replay->add_option("--source", ro->sources, "Only events from this source (repeatable)");
  replay->add_option("--correlation-id", ro->correlation_id, "Only events with this correlation id");
  replay->add_option("--partition", ro->partition, "Only this partition");
  replay->add_option("--from-offset", ro->from_offset, "First offset of each partition (inclusive)")
      ->check(CLI::NonNegativeNumber);
  replay->add_option("--to-offset", ro->to_offset, "Last offset of each partition (inclusive)")
      ->check(CLI::NonNegativeNumber);
  replay->add_option("--from", ro->from_time, "Records produced at or after this ISO-8601 time");
  replay->add_option("--to", ro->to_time, "Records produced at or before this ISO-8601 time");
  auto* output =
      replay->add_option("--output", ro->output, "JSON lines file; '-' = stdout (default without --to-topic)")
          ->capture_default_str();
  replay->add_option(
      "--to-topic", ro->target_topic,
      "Re-publish into this existing topic (never a source), same bytes and ids, plus a sluice-replay header");
  OnRun(replay, g, [&g, ro, output] {
    ro->bootstrap = g.bootstrap;
    ro->librdkafka = g.kafka;
    ro->topic_prefix = g.topic_prefix;
    ro->output_given = output->count() > 0;
    return RunReplay(*ro);
  });
}

}  // namespace sluice::cli
