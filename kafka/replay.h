#pragma once

#include <absl/status/statusor.h>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "contracts/catalog.h"
#include "kafka/producer.h"
#include "kafka/reader.h"

namespace sluice::kafka {

// Header added to every re-published record: "<source topic>/<partition>/<offset>".
inline constexpr std::string_view kReplayHeader = "sluice-replay";

struct ReplaySpec {
  std::vector<std::string> topics;  // topics to read (see ReplayTopics)
  ReadRange range;
  RecordFilter filter;
  // Empty: records are only handed to the callback. Otherwise every matching record is
  // re-published here with its bytes, key and headers unchanged (so its event id too)
  // plus kReplayHeader. Must exist, and must not be one of `topics`.
  std::string target_topic;
};

struct ReplayStats {
  uint64_t matched = 0;       // records that passed the filter
  uint64_t filtered_out = 0;  // read, but another tenant/type/source/correlation
  uint64_t republished = 0;   // acknowledged by the broker in target_topic
  TopicReader::Stats reader;
};

// Called for each matching record in read order; `republished` is where it landed in
// the target topic (null without a target). An error stops the replay.
using ReplayEmit = std::function<absl::Status(const Record& record, const kafka::DeliveryReport* republished)>;

// The topics a replay reads: `topics` as given, plus the topics that carry `types`.
// InvalidArgument naming an unknown type; at least one of the two must be non-empty.
absl::StatusOr<std::vector<std::string>> ReplayTopics(const contracts::Catalog& catalog,
                                                      const std::vector<std::string>& topics,
                                                      const std::vector<std::string>& types);

// Reads spec.range of spec.topics, filters, optionally re-publishes through `producer`
// (required when target_topic is set; each batch is acknowledged before it is emitted),
// until the range is done or `cancel` becomes true (then Cancelled).
absl::StatusOr<ReplayStats> Replay(const ReaderConfig& config, const ReplaySpec& spec, kafka::Producer* producer,
                                   const ReplayEmit& emit, const std::atomic<bool>* cancel = nullptr);

// One record as a JSON line: {"topic","partition","offset","timestamp","key","headers":{..},
// "envelope":{...protobuf JSON...}} (no trailing newline).
absl::StatusOr<std::string> RecordToJsonLine(const Record& record);

}  // namespace sluice::kafka
