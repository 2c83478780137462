// sluicectl: the Sluice operator and developer CLI. Each subcommand lives in its own
// cmd_<name>.cc (cli/commands.h); this file holds the global flags only.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/globals.h"
#include "common/log.h"

int main(int argc, char** argv) {
  using namespace sluice::cli;
  Globals g;
  CLI::App app{"sluicectl: operate and try out a Sluice event platform"};
  app.require_subcommand(1);
  app.add_option("--bootstrap", g.bootstrap, "Kafka bootstrap servers (env SLUICE_KAFKA_BOOTSTRAP)")
      ->capture_default_str();
  app.add_option("--topic-prefix", g.topic_prefix, "Prefix added to every catalog topic name (e.g. an environment)");
  app.add_option("--log-level", g.log_level, "trace|debug|info|warn|error")->capture_default_str();

  // In --help order.
  AddTopicsCommand(app, g);
  AddValidateCommand(app, g);
  AddDemoCommand(app, g);
  AddMigrateCommand(app, g);
  AddPublishCommand(app, g);
  AddTailCommand(app, g);
  AddTokenCommand(app, g);
  AddStoryCommand(app, g);
  AddReplayCommand(app, g);
  AddAuditCommand(app, g);

  CLI11_PARSE(app, argc, argv);
  sluice::common::InitLogging("sluicectl", g.log_level);
  return g.run ? g.run() : 2;
}
