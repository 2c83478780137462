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
  // Connections a batch is written through at once, its records shared out among them.
  // PostgreSQL runs one backend (one core) per connection, and COPY into event_log is
  // CPU-bound in the backend (index maintenance, jsonb parsing): on a 2-core machine two
  // took in about 1.5x the rows per second of one.
  int pg_writers = 2;
};

struct WriteReport {
  int64_t received = 0;  // records in the batch
  int64_t stored = 0;    // new rows in event_log
  int64_t duplicates = 0;  // ids already stored (redeliveries, replays)
  int64_t rejected = 0;    // not storable (an id that is not a UUID); logged, skipped
  int64_t merged_batches = 0;  // 1 when the batch held stored ids and went through the merge
  // Where the time went: encoding rows (payload JSON), COPY, merge + commit; with several
  // writers (which encode their parts in parallel too), the slowest writer's.
  absl::Duration encode, copy, merge;
};

// Appends one record as a row of event_log in COPY text format (exposed for tests).
// Columns: id, type, source, tenant_id, occurred_at, received_at, payload, correlation_id,
// causation_id, ttl_ms, metadata, topic, partition, offset, version, traceparent. The payload is the typed
// message in protobuf's JSON mapping; empty correlation/causation ids are NULL; a missing
// occurred_at falls back to the record's timestamp.
absl::Status AppendRow(std::string& out, const consumer::Record& record, absl::Time received_at);

// sluice-audit's engine: stores batches of events in event_log, once per event id. A batch
// is split by a hash of the event id into pg_writers parts (so an id twice in a batch stays
// in one part), stored in parallel, each in its own transaction on its own connection: a
// COPY straight into event_log; when that hits an id already stored, COPY into a temporary
// table and INSERT ... ON CONFLICT (id) DO NOTHING instead, so a redelivered or replayed
// event changes nothing. Write returns OK only once
// every part has committed, and the caller commits Kafka offsets only after that; if a
// part fails, the parts that committed are simply found stored when the batch comes again.
//
// Not thread-safe (call Write from one thread; it runs the parts on threads of its own).
// Lifetime: owns its connections.
class AuditSink {
 public:
  static absl::StatusOr<std::unique_ptr<AuditSink>> Create(AuditConfig config);
  absl::StatusOr<WriteReport> Write(const std::vector<consumer::Record>& batch);

 private:
  explicit AuditSink(AuditConfig config);
  absl::Status EnsureConnected(std::optional<common::PgConnection>& conn);
  // Encodes one part of a batch and stores it in one transaction on `conn`.
  absl::StatusOr<WriteReport> WritePart(std::optional<common::PgConnection>& conn,
                                        const std::vector<const consumer::Record*>& records, absl::Time received_at);

  AuditConfig config_;
  std::vector<std::optional<common::PgConnection>> conns_;  // pg_writers of them
};

}  // namespace sluice::audit
