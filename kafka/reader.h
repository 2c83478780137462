#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kafka/record.h"
#include "kafka/util.h"

namespace sluice::kafka {

// Decodes one consumed Kafka message into `out` (topic, partition, offset, key, value,
// headers, timestamp, envelope). False when the value is not a sluice.v1.Envelope.
bool DecodeRecord(const rd_kafka_message_t* msg, Record& out);

// Which records of a topic to read. Offsets and times apply to every partition read.
struct ReadRange {
  std::optional<int64_t> from_offset;  // inclusive; default: the partition's first record
  std::optional<int64_t> to_offset;    // inclusive; default: the last record when the read began
  // Inclusive bounds on the Kafka record timestamp (when the producer sent it). The start
  // offset comes from the broker's offsets-for-times index; records inside the offset
  // span but outside the window (out-of-order timestamps) are dropped.
  std::optional<absl::Time> from_time;
  std::optional<absl::Time> to_time;
  std::optional<int32_t> partition;  // only this partition
};

// Filters on the envelope; empty sets match everything.
struct RecordFilter {
  std::set<std::string> tenants;
  std::set<std::string> types;
  std::set<std::string> sources;
  std::string correlation_id;
  bool Matches(const v1::Envelope& e) const;
};

struct ReaderConfig {
  std::string bootstrap_servers;
  std::string client_id = "sluice-reader";
  std::map<std::string, std::string> librdkafka;
};

// Reads topics by position, outside any consumer group: nothing is committed and no
// group's members are disturbed. Two modes:
//   OpenRange: the records inside a ReadRange that exist when it opens, then done();
//   OpenLive:  every record appended after it opened, until destroyed.
// Records of different partitions interleave; each partition's arrive in offset order.
//
// Not thread-safe (one thread calls Next). Lifetime: owns its librdkafka handle.
class TopicReader {
 public:
  struct PartitionSpan {
    std::string topic;
    int32_t partition = 0;
    int64_t start = 0;  // first offset to read
    int64_t end = 0;    // one past the last offset to read (OpenLive: unbounded, -1)
  };
  struct Stats {
    uint64_t read = 0;            // records returned
    uint64_t undecodable = 0;     // values that are not Envelopes (logged, skipped)
    uint64_t outside_window = 0;  // inside the offsets, outside the time window
  };

  // NotFound naming a topic that does not exist; InvalidArgument for a bad range
  // (to before from, a partition the topic lacks).
  static absl::StatusOr<std::unique_ptr<TopicReader>> OpenRange(const ReaderConfig& config,
                                                                const std::vector<std::string>& topics,
                                                                const ReadRange& range);
  static absl::StatusOr<std::unique_ptr<TopicReader>> OpenLive(const ReaderConfig& config,
                                                               const std::vector<std::string>& topics);

  // Up to `max` records, waiting up to `wait` for the first. Empty when nothing arrived
  // in time, or when done().
  absl::StatusOr<std::vector<Record>> Next(size_t max, absl::Duration wait);
  // A range read has returned everything it covers. Never true for a live reader.
  bool done() const { return remaining_.empty() && !live_; }
  const std::vector<PartitionSpan>& spans() const { return spans_; }
  const Stats& stats() const { return stats_; }

 private:
  TopicReader() = default;
  static absl::StatusOr<std::unique_ptr<TopicReader>> Open(const ReaderConfig& config,
                                                           const std::vector<std::string>& topics,
                                                           const ReadRange* range);
  void Finish(const std::string& topic, int32_t partition);

  kafka::KafkaHandle rk_;
  bool live_ = false;
  std::optional<absl::Time> from_time_, to_time_;
  std::vector<PartitionSpan> spans_;
  // Partitions still being read, by (topic, partition) -> end offset.
  std::map<std::pair<std::string, int32_t>, int64_t> remaining_;
  Stats stats_;
};

}  // namespace sluice::kafka
