#include "gateway/list_request.h"

#include <absl/strings/escaping.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>
#include <absl/time/time.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/time_util.h>

#include "common/pg.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "contracts/derived.h"
#include "contracts/envelope.h"
#include "contracts/spellings.h"
#include "contracts/validate.h"

namespace sluice::gateway {
namespace {

using common::Cat;
using google::protobuf::util::TimeUtil;

absl::Status Invalid(std::string_view field, std::string_view what) { return contracts::InvalidField(field, what); }

std::string MicrosText(int64_t micros) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromUnixMicros(micros), absl::UTCTimeZone());
}

}  // namespace

absl::Status CheckTypesAndSources(const contracts::Catalog& catalog, const v1::EventFilter& f) {
  for (int i = 0; i < f.types_size(); ++i)
    if (catalog.Find(f.types(i)) == nullptr)
      return Invalid(Cat("filter.types[", i, "]"), Cat("unknown event type \"", f.types(i), "\""));
  for (int i = 0; i < f.sources_size(); ++i)
    if (!catalog.IsKnownSource(f.sources(i)))
      return Invalid(Cat("filter.sources[", i, "]"), Cat("unknown source \"", f.sources(i), "\""));
  for (int i = 0; i < f.severities_size(); ++i)
    if (f.severities(i) == v1::EVENT_SEVERITY_UNSPECIFIED || !v1::EventSeverity_IsValid(f.severities(i)))
      return Invalid(Cat("filter.severities[", i, "]"), "must be EVENT_SEVERITY_INFO, _WARNING or _ERROR");
  return absl::OkStatus();
}

std::set<v1::EventSeverity> Severities(const v1::EventFilter& f) {
  std::set<v1::EventSeverity> out;
  for (int s : f.severities()) out.insert(static_cast<v1::EventSeverity>(s));
  return out;
}

absl::Status CheckTime(const google::protobuf::Timestamp& t, std::string_view field) {
  constexpr int64_t kMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z
  if (t.seconds() < 0 || t.seconds() > kMaxSeconds || t.nanos() < 0 || t.nanos() > 999'999'999)
    return Invalid(field, "must lie between 1970-01-01 and 9999-12-31");
  return absl::OkStatus();
}

absl::Status CheckTimeRange(const google::protobuf::Timestamp* from, const google::protobuf::Timestamp* to,
                            std::string_view from_field, std::string_view to_field) {
  if (from != nullptr)
    if (auto s = CheckTime(*from, from_field); !s.ok()) return s;
  if (to != nullptr)
    if (auto s = CheckTime(*to, to_field); !s.ok()) return s;
  if (from != nullptr && to != nullptr &&
      TimeUtil::TimestampToMicroseconds(*to) < TimeUtil::TimestampToMicroseconds(*from))
    return Invalid(to_field, Cat("before ", from_field));
  return absl::OkStatus();
}

std::string FilterDigest(const v1::EventFilter& f) {
  std::string bytes;
  google::protobuf::io::StringOutputStream out(&bytes);
  google::protobuf::io::CodedOutputStream coded(&out);
  coded.SetSerializationDeterministic(true);
  f.SerializeToCodedStream(&coded);
  coded.Trim();
  return common::Sha256Hex(bytes).substr(0, 16);
}

absl::StatusOr<Cursor> DecodeCursor(const std::string& text, const v1::EventFilter& f) {
  std::string raw;
  const absl::Status bad = Invalid("cursor", "not a cursor from ListEvents");
  if (!absl::WebSafeBase64Unescape(text, &raw)) return bad;
  std::vector<std::string> parts = absl::StrSplit(raw, ':');
  Cursor c;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &c.micros) || !contracts::IsUuid(parts[1])) return bad;
  // occurred_at of a stored event: 1970..9999 (a forged value would otherwise reach
  // PostgreSQL as an out-of-range timestamp).
  if (c.micros < 0 || c.micros > int64_t{253402300799999999}) return bad;
  if (parts[2] != FilterDigest(f)) return Invalid("cursor", "was issued for a different filter");
  c.id = parts[1];
  return c;
}

std::string EncodeCursor(int64_t micros, const std::string& id, const v1::EventFilter& f) {
  return absl::WebSafeBase64Escape(Cat(micros, ":", id, ":", FilterDigest(f)));
}

absl::StatusOr<ListQuery> CheckListRequest(const contracts::Catalog& catalog, const contracts::Authorizer& authz,
                                           const v1::Principal& who, const v1::ListEventsRequest& req) {
  const v1::EventFilter& f = req.filter();
  ListQuery q;
  q.limit = req.limit() == 0 ? 100 : req.limit();
  if (q.limit < 1 || q.limit > 200) return Invalid("limit", "must be 1 to 200");
  auto tenants = authz.ReadableTenants(who, f.tenant_ids(), "filter.tenant_ids");
  if (!tenants.ok()) return tenants.status();
  q.tenants = *std::move(tenants);
  if (auto s = CheckTypesAndSources(catalog, f); !s.ok()) return s;
  if (auto s = CheckTimeRange(f.has_from_time() ? &f.from_time() : nullptr, f.has_to_time() ? &f.to_time() : nullptr,
                              "filter.from_time", "filter.to_time");
      !s.ok())
    return s;
  if (!req.cursor().empty()) {
    auto c = DecodeCursor(req.cursor(), f);
    if (!c.ok()) return c.status();
    q.cursor = *std::move(c);
  }

  auto param = [&](std::string value) {
    q.params.emplace_back(std::move(value));
    return Cat("$", q.params.size());
  };
  // Per dimension the alternatives a branch picks one of: "col = $k" per value when the
  // dimension is split, else one "col = ANY($k::text[])".
  std::vector<std::vector<std::string>> dims;
  size_t combinations = 1;
  // With a JSONPath, each tenant condition is also written in the form the event_log_payload_path
  // index (on ARRAY[tenant_id] and payload) can search, so PostgreSQL finds the tenant's
  // matching rows in the index instead of every tenant's.
  const bool by_path = !f.json_path().empty();
  // The single branch of a JSONPath query without the index form, for the ordered walk.
  std::string walk_branch;
  bool walk_possible = by_path;
  auto dimension = [&](std::string_view col, const std::vector<std::string>& values) {
    if (values.empty()) return;
    std::vector<std::string> alternatives;
    const bool tenant_path = by_path && col == "tenant_id";
    if (combinations * values.size() <= kMaxListBranches) {
      combinations *= values.size();
      for (const auto& v : values) {
        const std::string k = param(v);
        alternatives.push_back(tenant_path ? Cat(col, " = ", k, " AND ARRAY[tenant_id] @> ARRAY[", k, "::text]")
                                           : Cat(col, " = ", k));
      }
      if (values.size() == 1) walk_branch += Cat(walk_branch.empty() ? "" : " AND ", col, " = $", q.params.size());
      walk_possible = walk_possible && values.size() == 1;
    } else {
      walk_possible = false;
      const std::string k = param(common::PgTextArray(values));
      alternatives.push_back(tenant_path ? Cat(col, " = ANY(", k, "::text[]) AND ARRAY[tenant_id] && ", k, "::text[]")
                                         : Cat(col, " = ANY(", k, "::text[])"));
    }
    dims.push_back(std::move(alternatives));
  };
  auto distinct = [](const auto& values) {
    std::vector<std::string> out;
    std::set<std::string> seen;
    for (const auto& v : values)
      if (seen.insert(v).second) out.push_back(v);
    return out;
  };
  dimension("tenant_id", std::vector<std::string>(q.tenants.begin(), q.tenants.end()));
  // Without INFO, a severity filter holds only its severities' types: searched as a type
  // filter would be (the severity condition below still decides).
  const std::set<v1::EventSeverity> severities = Severities(f);
  std::vector<std::string> types = distinct(f.types());
  if (types.empty() && !severities.empty() && !severities.contains(v1::EVENT_SEVERITY_INFO))
    for (auto s : severities)
      for (auto& t : contracts::TypesWithSeverity(s)) types.push_back(std::move(t));
  dimension("type", types);
  dimension("source", distinct(f.sources()));
  // Only on one tenant: a walk must follow that tenant's (tenant_id, ...) index in order.
  walk_possible = walk_possible && q.tenants.size() == 1;
  q.branches = {"TRUE"};
  for (const auto& alternatives : dims) {
    std::vector<std::string> next;
    for (const auto& b : q.branches)
      for (const auto& a : alternatives) next.push_back(b == "TRUE" ? a : Cat(b, " AND ", a));
    q.branches = std::move(next);
  }

  q.where = "TRUE";
  if (!f.correlation_id().empty()) q.where += Cat(" AND correlation_id = ", param(f.correlation_id()));
  if (!severities.empty()) {
    std::vector<std::string> numbers;
    for (auto s : severities) numbers.push_back(Cat(static_cast<int>(s)));
    q.where += Cat(" AND (", contracts::kSeveritySql, ") = ANY(", param(common::PgTextArray(numbers)), "::int[])");
  }
  if (f.has_from_time())
    q.where += Cat(" AND occurred_at >= ", param(MicrosText(TimeUtil::TimestampToMicroseconds(f.from_time()))),
                   "::timestamptz");
  if (f.has_to_time())
    q.where +=
        Cat(" AND occurred_at <= ", param(MicrosText(TimeUtil::TimestampToMicroseconds(f.to_time()))), "::timestamptz");
  std::string path;
  if (!f.json_path().empty())
    // The operator form (not jsonb_path_exists) so a GIN index on payload can serve it;
    // errors in the path's evaluation are suppressed the same way. A comparison with the
    // short spelling of a closed set ("tier1") also matches the enum name the payload
    // JSON stores ("TIER_1"): contracts/spellings.h.
    path = Cat("payload @? ", param(contracts::WidenEnumComparisons(f.json_path())), "::jsonpath");
  std::string after;
  if (q.cursor) {
    const std::string at = param(MicrosText(q.cursor->micros));
    after = Cat(" AND (occurred_at, id) > (", at, "::timestamptz, ", param(q.cursor->id), "::uuid)");
  }
  if (walk_possible) {
    q.walk_branch = std::move(walk_branch);
    q.walk_where = Cat(q.where, after);
    q.walk_path = path;
  }
  if (!path.empty()) q.where += Cat(" AND ", path);
  q.where += after;
  return q;
}

std::string ListStatement(const ListQuery& q, std::string_view columns) {
  constexpr std::string_view kOrder = " ORDER BY occurred_at, id LIMIT ";
  if (q.branches.size() == 1)
    return Cat("SELECT ", columns, " FROM event_log WHERE ", q.branches[0], " AND ", q.where, kOrder, q.limit + 1);
  std::string sql = Cat("SELECT ", columns, " FROM (");
  for (size_t i = 0; i < q.branches.size(); ++i)
    sql += Cat(i == 0 ? "" : " UNION ALL ", "(SELECT * FROM event_log WHERE ", q.branches[i], " AND ", q.where, kOrder,
               q.limit + 1, ")");
  return Cat(sql, ") AS event_log", kOrder, q.limit + 1);
}

std::string ListWalkStatement(const ListQuery& q, std::string_view columns) {
  if (q.walk_branch.empty()) return "";
  constexpr std::string_view kOrder = " ORDER BY occurred_at, id LIMIT ";
  return Cat("SELECT ", columns, " FROM (SELECT * FROM event_log WHERE ", q.walk_branch, " AND ", q.walk_where, kOrder,
             static_cast<int64_t>(q.limit + 1) * kWalkRowsPerResult, ") AS event_log WHERE ", q.walk_path, kOrder,
             q.limit + 1);
}

}  // namespace sluice::gateway
