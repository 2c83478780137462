// Bytes -> v1::ListEventsRequest (binary) -> gateway::CheckListRequest for a fixed
// principal holding only "tenant-acme", with the compiled-in catalog. Beyond "no crash":
// a refusal is InvalidArgument with a field path or PermissionDenied naming
// filter.tenant_ids[i]; an accepted request reads only tenants the principal may act
// for (never "every tenant"), has a limit in 1..200, and its branches and shared WHERE
// clause are made of the fixed conditions alone with placeholders $1..$n, n being the
// parameter count, so nothing the caller sent is part of the SQL text; the branches
// together read exactly the tenant set, none twice.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg.h"
#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "contracts/derived.h"
#include "gateway/list_request.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/list_fixtures.h"

using namespace sluice;  // NOLINT: a fuzz entry point, not a header

namespace {

// The conditions CheckListRequest may append to the shared "TRUE", in its order, with
// each placeholder written as "$#".
const std::string kSeverityCondition = std::string(" AND (") + contracts::kSeveritySql + ") = ANY($#::int[])";
const std::string_view kConditions[] = {
    " AND correlation_id = $#",
    kSeverityCondition,
    " AND occurred_at >= $#::timestamptz",
    " AND occurred_at <= $#::timestamptz",
    " AND payload @? $#::jsonpath",
    " AND (occurred_at, id) > ($#::timestamptz, $#::uuid)",
};

// `text` with every "$<digits>" replaced by "$#", the numbers appended to `used`.
std::string Placeholders(const std::string& text, std::vector<size_t>& used) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] != '$' || i + 1 >= text.size() || text[i + 1] < '0' || text[i + 1] > '9') {
      out += text[i++];
      continue;
    }
    size_t j = i + 1;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    if (j - i > 6) fuzz::Fail("placeholder number too long: " + text);
    used.push_back(std::stoul(text.substr(i + 1, j - i - 1)));
    out += "$#";
    i = j;
  }
  return out;
}

// The tenants a branch reads: "tenant_id = $k" (one) or "tenant_id = ANY($k::text[])"
// (which must be the whole tenant set); every branch starts with one of them. The rest
// of the branch is type then source, each in one of the same two forms.
std::set<std::string> CheckBranch(const gateway::ListQuery& q, const std::string& branch) {
  std::vector<size_t> used;
  const std::string shape = Placeholders(branch, used);
  std::string_view rest = shape;
  auto param = [&](size_t k) -> const std::string& {
    if (k < 1 || k > q.params.size() || !q.params[k - 1].has_value())
      fuzz::Fail("branch refers to a missing parameter: " + branch);
    return *q.params[k - 1];
  };
  std::set<std::string> tenants;
  if (rest.starts_with("tenant_id = $#")) {
    tenants.insert(param(used.front()));
    rest.remove_prefix(14);
    // With a JSONPath: the same tenant again, for the GIN index.
    constexpr std::string_view kGin = " AND ARRAY[tenant_id] @> ARRAY[$#::text]";
    if (rest.starts_with(kGin)) {
      if (used.size() < 2 || used[1] != used[0]) fuzz::Fail("index form names another tenant: " + branch);
      rest.remove_prefix(kGin.size());
    }
  } else if (rest.starts_with("tenant_id = ANY($#::text[])")) {
    if (param(used.front()) != common::PgTextArray(q.tenants)) fuzz::Fail("a tenant array that is not the set");
    tenants = q.tenants;
    rest.remove_prefix(27);
    constexpr std::string_view kGin = " AND ARRAY[tenant_id] && $#::text[]";
    if (rest.starts_with(kGin)) {
      if (used.size() < 2 || used[1] != used[0]) fuzz::Fail("index form names other tenants: " + branch);
      rest.remove_prefix(kGin.size());
    }
  } else {
    fuzz::Fail("branch without a tenant condition: " + branch);
  }
  for (std::string_view col : {"type", "source"}) {
    const std::string one = std::string(" AND ") + std::string(col) + " = $#";
    const std::string any = std::string(" AND ") + std::string(col) + " = ANY($#::text[])";
    if (rest.starts_with(any)) {
      rest.remove_prefix(any.size());
    } else if (rest.starts_with(one)) {
      rest.remove_prefix(one.size());
    }
  }
  if (!rest.empty()) fuzz::Fail("branch holds more than the fixed conditions: " + branch);
  return tenants;
}

// The walk tried before a JSONPath statement: only on one tenant, its branch that tenant
// (no index form) and at most one type and source, and exactly the shared WHERE once the
// JSONPath condition is taken out of it.
void CheckWalk(const gateway::ListQuery& q) {
  if (q.walk_branch.empty()) {
    if (!q.walk_where.empty() || !q.walk_path.empty() || !gateway::ListWalkStatement(q, "x").empty())
      fuzz::Fail("a walk without a branch");
    return;
  }
  if (q.branches.size() != 1 || q.tenants.size() != 1) fuzz::Fail("a walk over several branches or tenants");
  if (q.walk_branch.find("ARRAY") != std::string::npos || q.walk_branch.find("ANY(") != std::string::npos)
    fuzz::Fail("a walk branch not in the plain one-value form: " + q.walk_branch);
  if (CheckBranch(q, q.walk_branch) != q.tenants) fuzz::Fail("the walk reads another tenant: " + q.walk_branch);
  std::vector<size_t> used;
  if (Placeholders(q.walk_path, used) != "payload @? $#::jsonpath") fuzz::Fail("walk path: " + q.walk_path);
  // The shared WHERE is walk_where with " AND <path>" put back before the cursor condition.
  std::string where = q.walk_where;
  const size_t cursor = where.find(" AND (occurred_at, id) > (");
  where.insert(cursor == std::string::npos ? where.size() : cursor, " AND " + q.walk_path);
  if (where != q.where) fuzz::Fail("the walk's conditions are not the statement's: " + q.walk_where);
  // Its branch is the statement's branch less the index form: same columns, same values.
  std::string branch = q.branches[0];
  const std::string_view after_tenant = std::string_view(q.walk_branch).substr(std::string_view("tenant_id = ").size());
  const std::string k(after_tenant.substr(0, after_tenant.find(' ')));  // "$N"
  const std::string gin = " AND ARRAY[tenant_id] @> ARRAY[" + k + "::text]";
  if (const size_t at = branch.find(gin); at != std::string::npos) branch.erase(at, gin.size());
  if (branch != q.walk_branch) fuzz::Fail("the walk's branch is not the statement's: " + q.walk_branch);
  // The statement: the first (limit + 1) * 64 rows in order, then the path, limit + 1.
  const std::string want = "SELECT x FROM (SELECT * FROM event_log WHERE " + q.walk_branch + " AND " + q.walk_where +
                           " ORDER BY occurred_at, id LIMIT " +
                           std::to_string((q.limit + 1) * gateway::kWalkRowsPerResult) + ") AS event_log WHERE " +
                           q.walk_path + " ORDER BY occurred_at, id LIMIT " + std::to_string(q.limit + 1);
  if (gateway::ListWalkStatement(q, "x") != want) fuzz::Fail("walk statement: " + gateway::ListWalkStatement(q, "x"));
}

void CheckStatement(const gateway::ListQuery& q) {
  if (q.branches.empty() || q.branches.size() > gateway::kMaxListBranches)
    fuzz::Fail("branch count " + std::to_string(q.branches.size()));
  std::vector<size_t> used;
  const std::string shape = Placeholders(q.where, used);
  std::string_view rest = shape;
  if (!rest.starts_with("TRUE")) fuzz::Fail("WHERE does not start with TRUE: " + q.where);
  rest.remove_prefix(4);
  for (std::string_view c : kConditions)
    if (rest.starts_with(c)) rest.remove_prefix(c.size());
  if (!rest.empty()) fuzz::Fail("WHERE holds more than the fixed conditions: " + q.where);
  // The branches together read exactly the tenant set, each branch at least one tenant.
  std::set<std::string> tenants;
  std::set<std::string> seen;
  for (const auto& b : q.branches) {
    if (!seen.insert(b).second) fuzz::Fail("a branch twice (its rows would repeat): " + b);
    tenants.merge(CheckBranch(q, b));
    Placeholders(b, used);
  }
  if (tenants != q.tenants) fuzz::Fail("the branches' tenants are not the tenant set");
  std::set<size_t> numbers(used.begin(), used.end());
  if (numbers.size() != q.params.size() ||
      (!numbers.empty() && (*numbers.begin() != 1 || *numbers.rbegin() != q.params.size())))
    fuzz::Fail("placeholders are not exactly $1..$" + std::to_string(q.params.size()));
  for (const auto& p : q.params)
    if (!p.has_value()) fuzz::Fail("a NULL parameter: " + q.where);
  CheckWalk(q);
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
  // Every branch has a tenant condition, and together they carry exactly the tenant set.
  CheckStatement(*q);
  if (q->cursor.has_value() == req.cursor().empty()) fuzz::Fail("cursor decoded without one sent, or dropped");
  return 0;
}
