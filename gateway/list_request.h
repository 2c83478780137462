#pragma once

// The checks of a ListEvents request and the statement they lead to: everything
// EventLog::List decides before it talks to PostgreSQL. Kept apart from the database
// code so unit tests and the fuzz targets (tests/fuzz/) reach every branch without a
// server. Pure functions; thread-safe.

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/event_query.pb.h"

namespace sluice::gateway {

// Where the previous page ended: the (occurred_at, id) of its last event.
struct Cursor {
  int64_t micros = 0;  // occurred_at, Unix microseconds
  std::string id;      // event id, a UUID as stored
  bool operator==(const Cursor&) const = default;
};

// The first 16 hex digits of SHA-256 over the filter's deterministic encoding. Ties a
// cursor to the filter it was issued for, so a page cannot continue another query.
std::string FilterDigest(const v1::EventFilter& f);

// "<micros>:<id>:<FilterDigest(f)>", base64url. Opaque to callers.
std::string EncodeCursor(int64_t micros, const std::string& id, const v1::EventFilter& f);

// InvalidArgument with field path "cursor" for text that is not one of EncodeCursor's,
// or one issued for a different filter.
absl::StatusOr<Cursor> DecodeCursor(const std::string& text, const v1::EventFilter& f);

// Every type and source of `f` is in the catalog and every severity a known one other
// than UNSPECIFIED; InvalidArgument naming "filter.types[i]" / "filter.sources[i]" /
// "filter.severities[i]" otherwise. Also used by Subscribe.
absl::Status CheckTypesAndSources(const contracts::Catalog& catalog, const v1::EventFilter& f);

// The severities of `f` (checked by CheckTypesAndSources), without repeats.
std::set<v1::EventSeverity> Severities(const v1::EventFilter& f);

// A request timestamp within 1970..9999 (so microseconds cannot overflow);
// InvalidArgument naming `field` otherwise. Also used by Replay.
absl::Status CheckTime(const google::protobuf::Timestamp& t, std::string_view field);
// An optional inclusive range (a bound is nullptr when unset): each bound by CheckTime, and
// `to` before `from` is InvalidArgument on `to_field`.
absl::Status CheckTimeRange(const google::protobuf::Timestamp* from, const google::protobuf::Timestamp* to,
                            std::string_view from_field, std::string_view to_field);

// A checked ListEvents request, ready to run.
//
// The statement reads one ordered index scan per branch: a branch fixes tenant_id, type
// and source to single values with `=` (PostgreSQL 15's btree returns an `= ANY(array)`
// scan out of index order, so such a filter would read and sort every matching row to
// return the first page). A filter on several tenants, types or sources becomes one branch
// per combination, up to kMaxListBranches; beyond that the later dimensions stay
// `= ANY(...)` (correct, only slower). Branches never overlap: values are deduplicated.
struct ListQuery {
  int limit = 0;                  // 1..200 (0 in the request means 100)
  std::set<std::string> tenants;  // tenants read; empty only for a "*" principal: every tenant
  std::optional<Cursor> cursor;   // absent on the first page
  // Conditions over tenant_id, type and source, one per branch (at least one; "TRUE" when
  // nothing narrows them), and the WHERE condition every branch shares. Their only
  // variable parts are $1..$n, with params[i] the value of $(i+1); caller data never
  // enters the text itself.
  std::vector<std::string> branches;
  std::string where;
  std::vector<std::optional<std::string>> params;
  // A JSONPath query on one tenant (and at most one type and one source) may first be
  // answered by a bounded walk (ListWalkStatement): the branch without the GIN index form,
  // the shared WHERE without the JSONPath, and the JSONPath condition. Empty otherwise.
  std::string walk_branch;
  std::string walk_where;
  std::string walk_path;
};

inline constexpr size_t kMaxListBranches = 32;
// Rows a walk reads per row it may return: it finds a full page when at least 1 in 64 of
// the rows in order match the JSONPath.
inline constexpr int64_t kWalkRowsPerResult = 64;

// The whole statement: `columns` of at most limit + 1 rows of event_log, ordered by
// (occurred_at, id). With one branch a plain SELECT; with several, a UNION ALL of the
// branches' ordered, limited scans, merged.
std::string ListStatement(const ListQuery& q, std::string_view columns);

// For a query with a walk_branch: `columns` of at most limit + 1 rows, the JSONPath's
// matches among the first (limit + 1) * kWalkRowsPerResult rows in (occurred_at, id) order
// that meet every other condition. Read in index order and stops early, so a path that
// many events match costs a few milliseconds instead of fetching and sorting every match
// (PostgreSQL keeps no statistics for `@?` and plans for a few matches). When it returns
// limit + 1 rows they are exactly ListStatement's first limit + 1 (the walk is a prefix of
// the same order); with fewer, ListStatement must be asked. "" without a walk_branch.
std::string ListWalkStatement(const ListQuery& q, std::string_view columns);

// Checks `req` for `who` in the order ListEvents reports them: limit, tenants (through
// authz.ReadableTenants, field "filter.tenant_ids"), types and sources, time range,
// cursor. The first failure is returned as is (InvalidArgument or PermissionDenied with
// its field path). filter.json_path is only passed on as a parameter: whether it parses
// is PostgreSQL's to say, and EventLog::List asks it.
absl::StatusOr<ListQuery> CheckListRequest(const contracts::Catalog& catalog, const contracts::Authorizer& authz,
                                           const v1::Principal& who, const v1::ListEventsRequest& req);

}  // namespace sluice::gateway
