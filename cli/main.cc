// sluicectl: the Sluice operator and developer CLI. Each subcommand lives in its own
// cmd_<name>.cc (cli/commands.h); this file holds the global flags only.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/globals.h"
#include "common/log.h"
#include "common/strings.h"

int main(int argc, char** argv) {
  using namespace sluice::cli;
  Globals g;
  CLI::App app{"sluicectl: operate and try out a Sluice event platform"};
  app.require_subcommand(1);
  // The global flags may also come after the subcommand (sluicectl replay --topic-prefix x ...).
  app.fallthrough();
  app.add_option("--bootstrap", g.bootstrap, "Kafka bootstrap servers (env SLUICE_KAFKA_BOOTSTRAP)")
      ->capture_default_str();
  app.add_option("--topic-prefix", g.topic_prefix, "Prefix added to every catalog topic name (e.g. an environment)");
  app.add_option("--log-level", g.log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.add_option("--kafka-config", g.kafka_config,
                 "librdkafka settings of every Kafka client (key=value properties file: security.protocol, ssl.*, "
                 "sasl.*); SLUICE_KAFKA_SECURITY_PROTOCOL, SLUICE_KAFKA_SASL_PASSWORD etc. "
                 "override single keys, as for the services (docs/deploy.md)")
      ->envname("SLUICE_KAFKA_CONFIG");

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
  AddQualityCommand(app, g);
  AddTriggersCommand(app, g);
  AddNotifyCommand(app, g);

  CLI11_PARSE(app, argc, argv);
  sluice::common::InitLogging("sluicectl", g.log_level);
  if (!g.run) return 2;
  // Once, for every subcommand (the services load them at start too): a broken file is
  // reported before anything connects, never halfway through a command.
  auto kafka = sluice::common::LoadKafkaSettings(g.kafka_config);
  if (!kafka.ok())
    return Fail(absl::Status(kafka.status().code(), sluice::common::Cat("--kafka-config: ", kafka.status().message())));
  g.kafka = *std::move(kafka);
  if (!g.kafka.empty())
    spdlog::info("sluicectl: kafka client settings: {}", sluice::common::DescribeKafkaSettings(g.kafka));
  return g.run();
}
