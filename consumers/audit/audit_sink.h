#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "consumers/record.h"

namespace sluice::audit {

struct AuditConfig {
  std::string pg_dsn;
  std::string pg_schema;  // schema of event_log; empty = the search_path
};

struct WriteReport {
  int64_t received = 0;  // records in the batch
  int64_t stored = 0;    // new rows in event_log
  int64_t duplicates = 0;  // ids already stored (redeliveries, replays)
  int64_t rejected = 0;    // not storable (an id that is not a UUID); logged, skipped
  int64_t merged_batches = 0;  // 1 when the batch held stored ids and went through the merge
  // Where the time went: encoding rows (protobuf JSON), COPY, merge + commit.
  absl::Duration encode, copy, merge;
};

// Appends one record as a row of event_log in COPY text format (exposed for tests).
// Columns: id, type, source, tenant_id, occurred_at, received_at, payload, correlation_id,
// causation_id, ttl_ms, metadata, topic, partition, offset, version, traceparent. The payload is the typed
// message in protobuf's JSON mapping; empty correlation/causation ids are NULL; a missing
// occurred_at falls back to the record's timestamp.
absl::Status AppendRow(std::string& out, const consumer::Record& record, absl::Time received_at);

// sluice-audit's engine: stores batches of events in event_log, once per event id. A batch
// is one transaction: a COPY straight into event_log; when that hits an id already stored,
// COPY into a temporary table and INSERT ... ON CONFLICT (id) DO NOTHING instead, so a
// redelivered or replayed event changes nothing. The caller commits Kafka
// offsets only after Write returned OK.
//
// Not thread-safe (one connection). Lifetime: owns its connection.
class AuditSink {
 public:
  static absl::StatusOr<std::unique_ptr<AuditSink>> Create(AuditConfig config);
  absl::StatusOr<WriteReport> Write(const std::vector<consumer::Record>& batch);

 private:
  explicit AuditSink(AuditConfig config) : config_(std::move(config)) {}
  absl::Status EnsureConnected();

  AuditConfig config_;
  std::optional<common::PgConnection> conn_;
};

}  // namespace sluice::audit
