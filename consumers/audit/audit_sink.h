#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/pg.h"
#include "consumers/audit/dead_letter.h"
#include "contracts/catalog.h"
#include "kafka/record.h"

namespace sluice::audit {

struct AuditConfig {
  std::string pg_dsn;
  std::string pg_schema;  // schema of event_log; empty = the search_path
  // Connections a batch is written through at once, its records shared out among them.
  // PostgreSQL runs one backend (one core) per connection, and COPY into event_log is
  // CPU-bound in the backend (index maintenance, jsonb parsing): on a 2-core machine two
  // took in about 1.5x the rows per second of one.
  int pg_writers = 2;
  // What events are checked against (contracts::Validate); nullptr: Catalog::Default().
  // Types and sources do not depend on a topic prefix. Must outlive the sink.
  const contracts::Catalog* catalog = nullptr;
};

struct WriteReport {
  int64_t received = 0;  // records in the batch
  int64_t stored = 0;    // new rows in event_log
  // Already stored (redeliveries, replays), in event_log or in event_dead_letter.
  int64_t duplicates = 0;
  // New rows in event_dead_letter (records that cannot be stored in event_log), in all
  // and per category (indexed by DeadLetterCategory).
  int64_t dead_lettered = 0;
  std::array<int64_t, kDeadLetterCategories> dead_lettered_by{};
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
absl::Status AppendRow(std::string& out, const kafka::Record& record, absl::Time received_at);

// sluice-audit's engine: stores batches of events in event_log, once per tenant, event id
// and occurred_at (a redelivery or replay carries the same occurred_at). A batch is split by a hash of the event id
// into pg_writers parts (so an id twice in a batch stays in one part), stored in parallel, each in its own transaction
// on its own connection: a COPY straight into event_log; when that hits an event already stored, COPY into a temporary
// table and INSERT ... ON CONFLICT (tenant_id, id, occurred_at) DO NOTHING instead, so a redelivered or replayed event
// changes nothing.
//
// event_log is partitioned by month of occurred_at (0010_event_log_partitions.sql). Before
// a part's transaction the sink makes sure the partitions of its rows' months exist
// (event_log_ensure_partition, outside the transaction: attaching one must not wait for
// this batch's own locks); the months done are remembered, so usually this costs nothing.
// A partition dropped meanwhile (retention) fails the batch as retryable, and the retry
// makes it again.
//
// One record never stalls the rest: a record that fails contracts::Validate or cannot be
// encoded as a row, and a row PostgreSQL refuses with a data error (IsDataError: found by
// storing halves of the part under savepoints until the refused rows stand alone), goes
// to event_dead_letter with its reason and raw bytes, in the part's transaction. Other
// errors (connection lost, server shutting down) fail the batch, which is retried.
//
// Write returns OK only once every part has committed, i.e. every record of the batch is
// in event_log or event_dead_letter; the caller commits Kafka offsets only after that. If a
// part fails, the parts that committed are simply found stored when the batch comes again.
//
// Not thread-safe (call Write from one thread; it runs the parts on threads of its own).
// Lifetime: owns its connections.
class AuditSink {
 public:
  static absl::StatusOr<std::unique_ptr<AuditSink>> Create(AuditConfig config);
  absl::StatusOr<WriteReport> Write(const std::vector<kafka::Record>& batch);

 private:
  explicit AuditSink(AuditConfig config);
  absl::Status EnsureConnected(std::optional<common::PgConnection>& conn);
  struct Part;
  // Validates and encodes one part of a batch and stores it in one transaction on `conn`.
  absl::StatusOr<WriteReport> WritePart(std::optional<common::PgConnection>& conn,
                                        const std::vector<const kafka::Record*>& records, absl::Time received_at);
  // Stores rows [begin, end) of the part inside its open transaction; rows PostgreSQL
  // refuses with a data error are added to the part's dead letters.
  absl::Status StoreRows(common::PgConnection& conn, Part& part, size_t begin, size_t end);
  // Makes the partitions of the part's months that this sink has not made sure of yet.
  absl::Status EnsurePartitions(common::PgConnection& conn, const Part& part);

  AuditConfig config_;
  const contracts::Catalog& catalog_;
  std::vector<std::optional<common::PgConnection>> conns_;  // pg_writers of them
  // Months (year * 12 + month - 1, UTC) whose event_log partition is known to exist;
  // forgotten whenever a batch fails. Shared by the writer threads.
  std::mutex months_mu_;
  std::set<int64_t> months_;
};

}  // namespace sluice::audit
