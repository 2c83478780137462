#include "consumers/profiler/bindings.h"

#include "common/strings.h"
#include "contracts/validate.h"

namespace sluice::profiler {
namespace {

using common::Cat;

absl::Status BadEntry(std::string_view entry, std::string_view why) {
  return absl::InvalidArgumentError(Cat("allow-binding \"", entry, "\": ", why));
}

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

bool IsSystemSchema(std::string_view schema) { return schema.starts_with("pg_") || schema == "information_schema"; }

absl::StatusOr<BindingAllowList> BindingAllowList::Parse(const std::vector<std::string>& entries) {
  BindingAllowList list;
  for (const auto& raw : entries) {
    const std::string_view entry = Trim(raw);
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) return BadEntry(entry, "want TENANT=SCHEMA.TABLE or TENANT=SCHEMA.*");
    Entry e{std::string(entry.substr(0, eq)), "", ""};
    const std::string_view pattern = entry.substr(eq + 1);
    if (e.tenant != "*" && !contracts::IsValidTenantId(e.tenant))
      return BadEntry(entry, "TENANT must be * or a tenant id (a-z, 0-9 and '-', not starting with '-')");
    const size_t dot = pattern.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == pattern.size())
      return BadEntry(entry, "want TENANT=SCHEMA.TABLE or TENANT=SCHEMA.* after the '='");
    e.schema = std::string(pattern.substr(0, dot));
    e.table = std::string(pattern.substr(dot + 1));
    // A wildcard in a name would be easy to read as a prefix match; only a whole table is.
    if (e.schema.find('*') != std::string::npos) return BadEntry(entry, "the schema must be named, not a wildcard");
    if (e.table != "*" && e.table.find('*') != std::string::npos)
      return BadEntry(entry, "the table is a name or *, not a pattern");
    if (IsSystemSchema(e.schema))
      return BadEntry(entry, Cat("schema \"", e.schema, "\" is a system schema and is never profiled"));
    list.entries_.push_back(std::move(e));
  }
  return list;
}

absl::Status BindingAllowList::Protect(const std::string& schema) {
  for (const auto& e : entries_)
    if (e.schema == schema)
      return BadEntry(Cat(e.tenant, "=", e.schema, ".", e.table),
                      Cat("schema \"", schema, "\" holds the governance tables and is never profiled"));
  protected_.insert(schema);
  return absl::OkStatus();
}

absl::Status BindingAllowList::Check(std::string_view tenant, std::string_view schema, std::string_view table) const {
  if (IsSystemSchema(schema) || protected_.contains(schema))
    return absl::PermissionDeniedError(
        Cat("binding: schema \"", schema, "\" is a system or governance schema and is never profiled"));
  for (const auto& e : entries_)
    if ((e.tenant == "*" || e.tenant == tenant) && e.schema == schema && (e.table == "*" || e.table == table))
      return absl::OkStatus();
  return absl::PermissionDeniedError(
      Cat("binding: \"", schema, "\".\"", table, "\" is not in the profiler's allow-list for tenant ", tenant));
}

std::vector<std::string> BindingAllowList::Describe() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(Cat(e.tenant, "=", e.schema, ".", e.table));
  return out;
}

}  // namespace sluice::profiler
