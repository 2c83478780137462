#include "consumers/audit/dead_letter.h"

#include <absl/strings/escaping.h>
#include <absl/strings/numbers.h>

#include "common/strings.h"

namespace sluice::audit {
namespace {

using common::Cat;

// bytea in PostgreSQL's hex input form, for a text parameter.
std::string ByteaHex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  }
  return out;
}

}  // namespace

std::string_view CategoryLabel(DeadLetterCategory category) {
  switch (category) {
    case DeadLetterCategory::kInvalid: return "invalid";
    case DeadLetterCategory::kUnencodable: return "unencodable";
    case DeadLetterCategory::kUnstorable: return "unstorable";
  }
  return "unstorable";
}

bool IsDataError(std::string_view sqlstate) {
  if (sqlstate.size() != 5) return false;
  const std::string_view cls = sqlstate.substr(0, 2);
  return cls == "22" || cls == "23" || cls == "54";
}

std::string StorableText(std::string_view s, size_t max_bytes) {
  bool plain = s.size() <= max_bytes;
  for (size_t i = 0; plain && i < s.size(); ++i) plain = s[i] >= 0x20 && s[i] <= 0x7E;
  if (plain) return std::string(s);
  // Escaping at most 4x the bytes kept: only a prefix needs escaping.
  std::string out = absl::CHexEscape(absl::string_view(s.data(), std::min(s.size(), max_bytes)));
  if (out.size() > max_bytes || s.size() > max_bytes) {
    out.resize(std::min(out.size(), max_bytes > 3 ? max_bytes - 3 : 0));
    // Not in the middle of an escape: cut back to before a trailing partial "\x.." or "\nnn".
    if (size_t slash = out.rfind('\\'); slash != std::string::npos && out.size() - slash < 4) out.resize(slash);
    out += "...";
  }
  return out;
}

std::string PgErrorReason(std::string_view sqlstate, std::string_view message) {
  // PgStatus's text is "<context>: ERROR:  <primary>\nDETAIL: ...\nCONTEXT: ...".
  std::string_view first = message.substr(0, message.find('\n'));
  if (size_t e = first.find("ERROR:"); e != std::string_view::npos) {
    first.remove_prefix(e + 6);
    while (!first.empty() && first.front() == ' ') first.remove_prefix(1);
  }
  if (size_t s = first.find(" (SQLSTATE "); s != std::string_view::npos) first = first.substr(0, s);
  return StorableText(Cat("sqlstate ", sqlstate.empty() ? "?" : sqlstate, ": ", first));
}

absl::StatusOr<bool> InsertDeadLetter(common::PgConnection& conn, const kafka::Record& record,
                                      DeadLetterCategory category, std::string_view sqlstate, std::string_view reason) {
  const v1::Envelope& e = record.envelope;
  auto r = conn.Exec(
      "INSERT INTO event_dead_letter (topic, \"partition\", \"offset\", event_id, tenant_id, type, source, category,"
      " sqlstate, reason, record_key, record_value)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::bytea, $12::bytea)"
      " ON CONFLICT (topic, \"partition\", \"offset\") DO NOTHING",
      {StorableText(record.topic), Cat(record.partition), Cat(record.offset), StorableText(e.id()),
       e.tenant_id().empty() ? std::nullopt : std::optional<std::string>(StorableText(e.tenant_id())),
       StorableText(e.type()), StorableText(e.source()), std::string(CategoryLabel(category)),
       sqlstate.empty() ? std::nullopt : std::optional<std::string>(StorableText(sqlstate, 5)), StorableText(reason),
       record.key.empty() ? std::nullopt : std::optional<std::string>(ByteaHex(record.key)), ByteaHex(record.value)});
  if (!r.ok()) return r.status();
  return r->affected() == 1;
}

absl::StatusOr<std::vector<DeadLetterCount>> CountDeadLetters(common::PgConnection& conn,
                                                              const std::set<std::string>& tenants) {
  std::vector<std::optional<std::string>> params;
  std::string where;
  for (const auto& t : tenants) {
    params.emplace_back(t);
    where += Cat(where.empty() ? " WHERE tenant_id IN (" : ", ", "$", params.size());
  }
  if (!where.empty()) where += ")";
  auto r = conn.Exec(Cat("SELECT topic, tenant_id, count(*),"
                         " (extract(epoch FROM max(dead_lettered_at)) * 1000000)::bigint FROM event_dead_letter",
                         where, " GROUP BY topic, tenant_id ORDER BY topic, tenant_id NULLS LAST"),
                     params);
  if (!r.ok()) return r.status();
  std::vector<DeadLetterCount> out;
  out.reserve(r->rows());
  for (int i = 0; i < r->rows(); ++i) {
    DeadLetterCount c{.topic = std::string(r->Get(i, 0))};
    if (!r->IsNull(i, 1)) c.tenant_id = std::string(r->Get(i, 1));
    int64_t micros = 0;
    const std::string_view count = r->Get(i, 2), newest = r->Get(i, 3);
    if (!absl::SimpleAtoi(absl::string_view(count.data(), count.size()), &c.count) ||
        !absl::SimpleAtoi(absl::string_view(newest.data(), newest.size()), &micros))
      return absl::InternalError(Cat("event_dead_letter: unexpected count row ", count, ", ", newest));
    c.newest = absl::FromUnixMicros(micros);
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace sluice::audit
