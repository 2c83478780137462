#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::cli {

struct ReplayOptions {
  std::string bootstrap;
  std::map<std::string, std::string> librdkafka;  // Kafka client settings (Globals::kafka)
  std::string topic_prefix;
  std::vector<std::string> topics, types, tenants, sources;
  std::string correlation_id;
  std::optional<int32_t> partition;
  std::optional<int64_t> from_offset, to_offset;
  std::string from_time, to_time;  // ISO-8601 (RFC 3339)
  std::string output = "-";        // JSON lines; "-" = stdout
  bool output_given = false;
  std::string target_topic;
};

// `sluicectl replay`: reads topics by offset or time range, filters, and writes JSON lines
// and/or re-publishes into a target topic. Returns the process exit code.
int RunReplay(const ReplayOptions& options);

}  // namespace sluice::cli
