#pragma once

#include <map>
#include <string>

#include "cli/gateway_channel.h"

namespace sluice::cli {

struct StoryOptions {
  GatewayTarget gateway;
  std::string bootstrap;
  std::map<std::string, std::string> librdkafka;  // Kafka client settings (Globals::kafka)
  std::string topic_prefix;
  std::string pg_dsn;
  std::string tenant = "acme";
  // Bearer tokens: who asks for the change, who approves it (role metadata_steward),
  // and the ETL pipeline that reports the refresh (source etl.pipeline).
  std::string requester_token;
  std::string steward_token;
  std::string etl_token;
  int rows = 20000;
  int timeout_s = 120;
};

// The governance story against running services (sluice-gateway with --pg-dsn,
// sluice-relay, sluice-profiler): seed a table, create and approve a tier1 metadata
// entry bound to it, wait for its profile, make the table worse, report data.refreshed
// and wait for data.quality.degraded; then print the whole correlated chain of events.
// Returns the process exit code.
int RunStory(const StoryOptions& options);

}  // namespace sluice::cli
