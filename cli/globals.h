#pragma once
// What every sluicectl subcommand shares: the global flags, how a subcommand hands its
// work to main, and how errors are printed.

#include <CLI/CLI.hpp>
#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdio>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>

#include "common/env.h"
#include "common/file.h"
#include "common/kafka_config.h"
#include "contracts/catalog.h"
#include "contracts/vectors.h"

namespace sluice::cli {

// The global flags, and the chosen subcommand. Lives in main for the whole run; the
// subcommands keep a reference to it. Single-threaded use only.
struct Globals {
  std::string bootstrap = common::DefaultKafkaBootstrap();
  std::string topic_prefix;
  std::string log_level = "warn";
  // --kafka-config (SLUICE_KAFKA_CONFIG), and the librdkafka settings main loads from it
  // and the SLUICE_KAFKA_* overrides before a subcommand runs: the same scheme as the
  // services (common/kafka_config.h), for every Kafka client a subcommand opens.
  std::string kafka_config;
  common::KafkaSettings kafka;
  // The chosen subcommand's body, set while parsing; main runs it once the global flags
  // are known and logging is set up. Empty when no subcommand ran.
  std::function<int()> run;

  contracts::Catalog Catalog() const { return contracts::Catalog::Default().WithTopicPrefix(topic_prefix); }
};

// Makes `body` the program's work when `command` is chosen on the command line. The flags
// `body` reads must be owned by it (e.g. a shared_ptr of options): Add*Command returns
// before parsing starts.
inline void OnRun(CLI::App* command, Globals& g, std::function<int()> body) {
  command->callback([&g, body = std::move(body)] { g.run = body; });
}

// --pg-dsn (default and env SLUICE_PG_DSN through common::DefaultPgDsn) and --pg-schema
// (env SLUICE_PG_SCHEMA; `schema_help` says what lives there) of a PostgreSQL subcommand.
inline void AddPgFlags(CLI::App& command, std::string& dsn, std::string& schema, const std::string& schema_help) {
  if (dsn.empty()) dsn = common::DefaultPgDsn();
  command.add_option("--pg-dsn", dsn, "libpq connection string (env SLUICE_PG_DSN)")->capture_default_str();
  command.add_option("--pg-schema", schema, schema_help + " (env SLUICE_PG_SCHEMA; default: the search_path)")
      ->envname("SLUICE_PG_SCHEMA");
}

// Prints "sluicectl: <message>" on stderr; returns exit code 1.
inline int Fail(const absl::Status& s) {
  std::fprintf(stderr, "sluicectl: %s\n", std::string(s.message()).c_str());
  return 1;
}

// The contents of `path`, or of stdin for "-".
inline absl::StatusOr<std::string> ReadInput(const std::string& path) {
  if (path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  return common::ReadFile(path);
}

}  // namespace sluice::cli
