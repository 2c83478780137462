#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg.h"
#include "kafka/record.h"

namespace sluice::audit {

// Why sluice-audit put a record in event_dead_letter instead of event_log
// (sql/migrations/0007_dead_letter.sql). A closed set: it is the `reason` label of
// sluice_audit_dead_letter_total and the table's `category` column; the free text goes
// to the `reason` column only.
enum class DeadLetterCategory {
  kInvalid,      // fails contracts::Validate (a bound, a required field, an unknown type)
  kUnencodable,  // passes Validate but cannot be written as an event_log row (e.g. a NUL)
  kUnstorable,   // PostgreSQL refused the row with a data error (SQLSTATE class 22, 23, 54)
};
inline constexpr size_t kDeadLetterCategories = 3;
inline constexpr std::array<DeadLetterCategory, kDeadLetterCategories> kAllDeadLetterCategories = {
    DeadLetterCategory::kInvalid, DeadLetterCategory::kUnencodable, DeadLetterCategory::kUnstorable};

// "invalid", "unencodable", "unstorable".
std::string_view CategoryLabel(DeadLetterCategory category);

// True for a SQLSTATE that is about the rows sent rather than the server or the
// connection: class 22 (data exception), 23 (integrity constraint violation) and 54
// (program limit exceeded, e.g. an index row too large). Such an error repeats every
// time the same rows are sent, so retrying the batch would stall it forever. 23505
// (unique violation) is included: callers that merge duplicates check it first.
bool IsDataError(std::string_view sqlstate);

// A text field as read, made storable and short: kept as is when it is printable ASCII
// of at most `max_bytes`; otherwise C-escaped (NUL, control bytes and non-ASCII as
// escapes) and cut to `max_bytes` with "..." at the end.
std::string StorableText(std::string_view s, size_t max_bytes = 256);

// The reason an operator reads for a PostgreSQL error: "sqlstate 54000: <the first line
// of PostgreSQL's message>", without the DETAIL/CONTEXT lines (CONTEXT quotes the row),
// made storable and cut to 256 bytes.
std::string PgErrorReason(std::string_view sqlstate, std::string_view message);

// Stores one record in event_dead_letter within the connection's current transaction
// (or on its own). Returns true when it is new, false when that record (topic,
// partition, offset) was dead-lettered before: a redelivery changes nothing.
absl::StatusOr<bool> InsertDeadLetter(common::PgConnection& conn, const kafka::Record& record,
                                      DeadLetterCategory category, std::string_view sqlstate, std::string_view reason);

struct DeadLetterCount {
  std::string topic;
  std::optional<std::string> tenant_id;  // nullopt: records without a tenant
  int64_t count = 0;
  absl::Time newest;  // latest dead_lettered_at
};

// Dead letters per topic and tenant, ordered by topic then tenant (records without a
// tenant last), for health reports. `tenants` limits the count to those tenants (records
// without a tenant are then left out: nobody can be shown them but an operator); empty
// counts every tenant, so a caller allowed to see no tenant must not call it with an
// empty set. One aggregate over event_dead_letter (in the connection's search_path).
absl::StatusOr<std::vector<DeadLetterCount>> CountDeadLetters(common::PgConnection& conn,
                                                              const std::set<std::string>& tenants);

}  // namespace sluice::audit
