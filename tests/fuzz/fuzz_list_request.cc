// Bytes -> v1::ListEventsRequest (binary) -> gateway::CheckListRequest for a fixed
// principal holding only "tenant-acme", with the compiled-in catalog. Beyond "no crash":
// a refusal is InvalidArgument with a field path or PermissionDenied naming
// filter.tenant_ids[i]; an accepted request reads only tenants the principal may act
// for (never "every tenant"), has a limit in 1..200, and its WHERE clause is made of
// the fixed conditions alone with placeholders $1..$n, n being the parameter count, so
// nothing the caller sent is part of the SQL text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/pg.h"
#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "gateway/list_request.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/list_fixtures.h"

using namespace sluice;  // NOLINT: a fuzz entry point, not a header

namespace {

// The conditions CheckListRequest may append to "TRUE", in its order, with each
// placeholder written as "$#".
constexpr std::string_view kConditions[] = {
    " AND tenant_id = ANY($#::text[])",
    " AND type = ANY($#::text[])",
    " AND source = ANY($#::text[])",
    " AND correlation_id = $#",
    " AND occurred_at >= $#::timestamptz",
    " AND occurred_at <= $#::timestamptz",
    " AND jsonb_path_exists(payload, $#::jsonpath, '{}', true)",
    " AND (occurred_at, id) > ($#::timestamptz, $#::uuid)",
};

// `where` with every "$<digits>" replaced by "$#"; the placeholders must count 1, 2, ...
std::string Placeholders(const std::string& where, size_t& count) {
  std::string out;
  count = 0;
  for (size_t i = 0; i < where.size();) {
    if (where[i] != '$' || i + 1 >= where.size() || where[i + 1] < '0' || where[i + 1] > '9') {
      out += where[i++];
      continue;
    }
    size_t j = i + 1;
    while (j < where.size() && where[j] >= '0' && where[j] <= '9') ++j;
    ++count;
    if (where.substr(i + 1, j - i - 1) != std::to_string(count))
      fuzz::Fail("placeholders out of order in WHERE: " + where);
    out += "$#";
    i = j;
  }
  return out;
}

void CheckWhere(const gateway::ListQuery& q) {
  size_t count = 0;
  const std::string shape = Placeholders(q.where, count);
  std::string_view rest = shape;
  if (count != q.params.size())
    fuzz::Fail("WHERE has " + std::to_string(count) + " placeholders for " + std::to_string(q.params.size()) +
               " parameters: " + q.where);
  if (!rest.starts_with("TRUE")) fuzz::Fail("WHERE does not start with TRUE: " + q.where);
  rest.remove_prefix(4);
  for (std::string_view c : kConditions)
    if (rest.starts_with(c)) rest.remove_prefix(c.size());
  if (!rest.empty()) fuzz::Fail("WHERE holds more than the fixed conditions: " + shape);
  for (const auto& p : q.params)
    if (!p.has_value()) fuzz::Fail("a NULL parameter: " + q.where);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietProtobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const contracts::Catalog& catalog = contracts::Catalog::Default();
  static const contracts::Authorizer authz(catalog);
  static const v1::Principal who = fuzz::ListPrincipal();

  v1::ListEventsRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto q = gateway::CheckListRequest(catalog, authz, who, req);
  if (!q.ok()) {
    const absl::Status& s = q.status();
    if (s.code() == absl::StatusCode::kPermissionDenied) {
      if (!std::string(s.message()).starts_with("filter.tenant_ids["))
        fuzz::Fail("PermissionDenied not naming a tenant: " + s.ToString());
      return 0;
    }
    if (s.code() != absl::StatusCode::kInvalidArgument) fuzz::Fail("CheckListRequest returned " + s.ToString());
    auto path = contracts::FieldPathOf(s);
    if (!path.has_value() || path->empty()) fuzz::Fail("refusal without a field path: " + s.ToString());
    if (!std::string(s.message()).starts_with(*path + ": "))
      fuzz::Fail("message does not start with its path: " + s.ToString());
    return 0;
  }
  if (q->limit < 1 || q->limit > 200) fuzz::Fail("limit " + std::to_string(q->limit));
  // An empty set means every tenant; this principal holds one.
  if (q->tenants.empty()) fuzz::Fail("a one-tenant principal reads every tenant");
  for (const auto& t : q->tenants)
    if (!authz.MayActFor(who, t).ok()) fuzz::Fail("reads tenant \"" + t + "\" it may not act for");
  CheckWhere(*q);
  // The tenant condition is always there, and it carries exactly the tenant set.
  if (!q->where.starts_with("TRUE AND tenant_id = ANY($1::text[])") ||
      q->params.front() != common::PgTextArray(q->tenants))
    fuzz::Fail("tenant condition missing or not the tenant set: " + q->where);
  if (q->cursor.has_value() == req.cursor().empty()) fuzz::Fail("cursor decoded without one sent, or dropped");
  return 0;
}
