#pragma once

#include <absl/status/statusor.h>

#include <map>
#include <string>
#include <vector>

namespace sluice::cli {

struct VerifyOptions {
  std::string bootstrap;
  std::map<std::string, std::string> librdkafka;  // Kafka client settings (Globals::kafka)
  std::string topic_prefix;
  std::string pg_dsn;
  std::string pg_schema;             // schema of the governance tables; empty = search_path
  std::vector<std::string> tenants;  // empty: every tenant
};

struct VerifyReport {
  int64_t events = 0;                   // approval events read from the topics
  int64_t approvals = 0;                // approvals compared
  int64_t entities = 0;                 // entities compared
  int64_t in_flight = 0;                // approvals left out: their events are still in the outbox
  int64_t cancelled = 0;                // cancelled in PostgreSQL (cancellations publish no event)
  std::vector<std::string> mismatches;  // one line each
};

// `sluicectl audit verify`: rebuilds the approval state from the approval topic (each
// approval's final status; each entity's latest approved payload) and compares it with
// PostgreSQL in one REPEATABLE READ snapshot. An entity is compared by applying its last
// approved payload with the same statement approving uses, inside a savepoint that is
// rolled back, and diffing the row before and after: nothing is changed.
absl::StatusOr<VerifyReport> Verify(const VerifyOptions& options);

// Prints the report; exit code 0 (consistent), 1 (mismatches) or 2 (could not verify).
int RunVerify(const VerifyOptions& options);

}  // namespace sluice::cli
