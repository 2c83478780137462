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
#include "contracts/envelope.h"
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
  return absl::OkStatus();
}

absl::Status CheckTime(const google::protobuf::Timestamp& t, std::string_view field) {
  constexpr int64_t kMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z
  if (t.seconds() < 0 || t.seconds() > kMaxSeconds || t.nanos() < 0 || t.nanos() > 999'999'999)
    return Invalid(field, "must lie between 1970-01-01 and 9999-12-31");
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
  if (f.has_from_time())
    if (auto s = CheckTime(f.from_time(), "filter.from_time"); !s.ok()) return s;
  if (f.has_to_time())
    if (auto s = CheckTime(f.to_time(), "filter.to_time"); !s.ok()) return s;
  if (f.has_from_time() && f.has_to_time() &&
      TimeUtil::TimestampToMicroseconds(f.to_time()) < TimeUtil::TimestampToMicroseconds(f.from_time()))
    return Invalid("filter.to_time", "before filter.from_time");
  if (!req.cursor().empty()) {
    auto c = DecodeCursor(req.cursor(), f);
    if (!c.ok()) return c.status();
    q.cursor = *std::move(c);
  }

  q.where = "TRUE";
  auto param = [&](std::string value) {
    q.params.emplace_back(std::move(value));
    return Cat("$", q.params.size());
  };
  if (!q.tenants.empty()) q.where += Cat(" AND tenant_id = ANY(", param(common::PgTextArray(q.tenants)), "::text[])");
  if (f.types_size() > 0) q.where += Cat(" AND type = ANY(", param(common::PgTextArray(f.types())), "::text[])");
  if (f.sources_size() > 0) q.where += Cat(" AND source = ANY(", param(common::PgTextArray(f.sources())), "::text[])");
  if (!f.correlation_id().empty()) q.where += Cat(" AND correlation_id = ", param(f.correlation_id()));
  if (f.has_from_time())
    q.where += Cat(" AND occurred_at >= ", param(MicrosText(TimeUtil::TimestampToMicroseconds(f.from_time()))),
                   "::timestamptz");
  if (f.has_to_time())
    q.where +=
        Cat(" AND occurred_at <= ", param(MicrosText(TimeUtil::TimestampToMicroseconds(f.to_time()))), "::timestamptz");
  if (!f.json_path().empty())
    q.where += Cat(" AND jsonb_path_exists(payload, ", param(f.json_path()), "::jsonpath, '{}', true)");
  if (q.cursor) {
    const std::string at = param(MicrosText(q.cursor->micros));
    q.where += Cat(" AND (occurred_at, id) > (", at, "::timestamptz, ", param(q.cursor->id), "::uuid)");
  }
  return q;
}

}  // namespace sluice::gateway
