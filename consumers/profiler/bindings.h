#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::profiler {

// Which tables each tenant's metadata entries may bind for profiling. A binding is data
// a tenant controls (it comes through an approval), and a profile reports row counts and
// runs the entry's column rules as predicates, so an unconfined binding is an oracle on
// any table the profiler's source role can read: another tenant's data or the governance
// tables themselves. The profiler reads only what this list allows; nothing by default.
//
// Entries are "TENANT=SCHEMA.TABLE" or "TENANT=SCHEMA.*" (every table of the schema);
// TENANT "*" stands for every tenant. SCHEMA is split off at the first '.'. Names compare
// exactly, as PostgreSQL stores them (a quoted identifier keeps its case), which is how the
// profile looks them up in pg_catalog. Whatever the entries say, system schemas (pg_*,
// information_schema) and the protected ones (the governance schema) are never allowed.
//
// Thread-safety: Check may be called from any thread; Protect only before the list is
// shared. Copyable value type.
class BindingAllowList {
 public:
  // Parses the entries (surrounding whitespace ignored, empty entries skipped).
  // InvalidArgument naming the bad entry.
  static absl::StatusOr<BindingAllowList> Parse(const std::vector<std::string>& entries);

  // Never allows `schema` from now on. InvalidArgument naming the entry when one names it
  // (a configuration that asks for the governance schema is a mistake to report at start).
  absl::Status Protect(const std::string& schema);

  // OK when `tenant` may bind `schema`.`table`; PermissionDenied whose message starts
  // with "binding: " otherwise. Looks at names only: nothing is queried.
  absl::Status Check(std::string_view tenant, std::string_view schema, std::string_view table) const;

  // The entries as given (normalized), for the start-up log.
  std::vector<std::string> Describe() const;
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    std::string tenant;  // or "*"
    std::string schema;
    std::string table;  // or "*"
  };
  std::vector<Entry> entries_;
  std::set<std::string, std::less<>> protected_;
};

// pg_catalog, pg_toast, pg_temp_N, pg_toast_temp_N (PostgreSQL reserves the pg_ prefix)
// and information_schema.
bool IsSystemSchema(std::string_view schema);

}  // namespace sluice::profiler
