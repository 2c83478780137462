#pragma once

#include <absl/status/status.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "contracts/cloudevents.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::kafka {

// One decoded event and where it was read from.
struct Record {
  v1::Envelope envelope;
  // False only for a record whose value is not a sluice.v1.Envelope, handed over (with an
  // empty envelope and its raw key and value) to consumers that keep every record
  // (ConsumerConfig::keep_undecodable, the audit sink).
  bool decoded = true;
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::string key;
  std::string value;  // the record's bytes as stored (the encoded envelope)
  contracts::Headers headers;
  int64_t timestamp_ms = 0;  // broker/producer record timestamp
};

// Handles one batch. OK: the batch's offsets are committed. Any error: nothing of the
// batch is committed and the same records are delivered again (after a back-off).
// Effects must be idempotent (key them by envelope.id()).
using BatchHandler = std::function<absl::Status(const std::vector<Record>& batch)>;

}  // namespace sluice::kafka
