// sluicectl story: flags of the governance story; the story itself is in story.cc.
#include <memory>

#include "cli/commands.h"
#include "cli/story.h"
#include "common/env.h"

namespace sluice::cli {

void AddStoryCommand(CLI::App& app, Globals& g) {
  auto so = std::make_shared<StoryOptions>();
  so->pg_dsn = common::DefaultPgDsn();
  auto* story = app.add_subcommand(
      "story",
      "The governance story end to end against running gateway, relay and profiler: approve a bound tier1 "
      "entry, watch its profile, degrade the table, report the refresh, print the degradation and the chain");
  AddGatewayFlags(*story, so->gateway);
  story->add_option("--pg-dsn", so->pg_dsn, "PostgreSQL for the demo table (env SLUICE_PG_DSN)")->capture_default_str();
  story->add_option("--tenant", so->tenant, "Tenant of the story")->capture_default_str();
  story->add_option("--requester-token", so->requester_token, "Token of who asks for the entry")
      ->envname("SLUICE_STORY_REQUESTER_TOKEN")
      ->required();
  story->add_option("--steward-token", so->steward_token, "Token with the metadata_steward role")
      ->envname("SLUICE_STORY_STEWARD_TOKEN")
      ->required();
  story->add_option("--etl-token", so->etl_token, "Token allowed to publish as etl.pipeline")
      ->envname("SLUICE_STORY_ETL_TOKEN")
      ->required();
  story->add_option("--rows", so->rows, "Rows of the demo table")
      ->capture_default_str()
      ->check(CLI::Range(1, 50000000));
  story->add_option("--timeout", so->timeout_s, "Seconds to wait for each outcome")->capture_default_str();
  OnRun(story, g, [&g, so] {
    so->bootstrap = g.bootstrap;
    so->librdkafka = g.kafka;
    so->topic_prefix = g.topic_prefix;
    return RunStory(*so);
  });
}

}  // namespace sluice::cli
