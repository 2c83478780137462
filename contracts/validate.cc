#include "contracts/validate.h"

#include <absl/strings/ascii.h>
#include <absl/strings/cord.h>
#include <absl/strings/escaping.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/map.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include <map>
#include <vector>

#include "common/strings.h"
#include "contracts/envelope.h"
#include "sluice/v1/options.pb.h"

namespace sluice::contracts {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr char kTypeUrl[] = "type.sluice.dev/sluice.v1.FieldPath";
constexpr int64_t kMinSeconds = 946684800;  // 2000-01-01T00:00:00Z

absl::Status Violation(std::string_view path, std::string_view what) {
  return WithFieldPath(absl::InvalidArgumentError(common::Cat(path, ": ", what)), path);
}

bool IsLowerHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Caller-supplied text quoted in an error message: printable whatever it holds.
std::string Escaped(std::string_view s) { return absl::CHexEscape(absl::string_view(s.data(), s.size())); }

bool AllZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

absl::Status CheckTimestamp(const Message& m, std::string_view path, absl::Time now) {
  const auto& ts = static_cast<const google::protobuf::Timestamp&>(m);
  if (ts.nanos() < 0 || ts.nanos() > 999'999'999) return Violation(path, "nanos out of range");
  if (ts.seconds() < kMinSeconds) return Violation(path, "before 2000-01-01");
  if (absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos()) > now + kMaxClockSkew)
    return Violation(path, "more than 5 minutes in the future");
  return absl::OkStatus();
}

absl::Status CheckDuration(const Message& m, std::string_view path) {
  const auto& d = static_cast<const google::protobuf::Duration&>(m);
  if (d.seconds() < 0 || d.nanos() < 0) return Violation(path, "must not be negative");
  if (d.nanos() > 999'999'999) return Violation(path, "nanos out of range");
  // Past protobuf's own Duration range the JSON mapping fails, and every consumer that
  // renders events as JSON (the audit sink) would have to drop the event.
  if (d.seconds() > google::protobuf::util::TimeUtil::kDurationMaxSeconds)
    return Violation(path, "more than 10,000 years");
  return absl::OkStatus();
}

// Where a value sits, as a chain of stack frames: the walk builds no strings, and
// Render() spells the path only when a rule fails.
struct Path {
  enum class Kind { kRoot, kField, kIndex, kKey };
  const Path* parent;
  Kind kind;
  std::string_view text;  // root or field name, or a Struct/map key
  int index;

  Path Field(std::string_view name) const { return {this, Kind::kField, name, 0}; }
  Path Index(int i) const { return {this, Kind::kIndex, {}, i}; }
  Path Key(std::string_view key) const { return {this, Kind::kKey, key, 0}; }
};

Path RootPath(std::string_view name) { return {nullptr, Path::Kind::kRoot, name, 0}; }

enum class TextProblem { kNone, kNul, kBadUtf8 };

// One pass: the first NUL or malformed UTF-8 sequence (RFC 3629: no overlong forms,
// no surrogates, nothing past U+10FFFF).
TextProblem ScanText(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  auto cont = [](unsigned char c) { return (c & 0xC0) == 0x80; };
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c == 0) return TextProblem::kNul;
      ++p;
      continue;
    }
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return TextProblem::kBadUtf8;
    }
    if (static_cast<size_t>(end - p) < n || p[1] < lo || p[1] > hi) return TextProblem::kBadUtf8;
    for (size_t i = 2; i < n; ++i)
      if (!cont(p[i])) return TextProblem::kBadUtf8;
    p += n;
  }
  return TextProblem::kNone;
}

// A Struct or map key as it appears in a path: escaped so the path stays printable
// UTF-8, and short.
std::string QuoteKey(std::string_view key) {
  constexpr size_t kMaxShown = 64;
  const bool cut = key.size() > kMaxShown;
  std::string_view shown = key.substr(0, kMaxShown);
  const bool utf8 = ScanText(key) != TextProblem::kBadUtf8;
  if (cut && utf8) {
    while (!shown.empty() && (static_cast<unsigned char>(key[shown.size()]) & 0xC0) == 0x80)
      shown.remove_suffix(1);  // don't split a character
  }
  const absl::string_view a(shown.data(), shown.size());
  return common::Cat("\"", utf8 ? absl::Utf8SafeCHexEscape(a) : absl::CHexEscape(a), cut ? "...\"" : "\"");
}

void AppendPath(const Path& p, std::string& out) {
  if (p.parent != nullptr) AppendPath(*p.parent, out);
  switch (p.kind) {
    case Path::Kind::kRoot: out.append(p.text); break;
    case Path::Kind::kField:
      out.push_back('.');
      out.append(p.text);
      break;
    case Path::Kind::kIndex: out += common::Cat("[", p.index, "]"); break;
    case Path::Kind::kKey: out += common::Cat("[", QuoteKey(p.text), "]"); break;
  }
}

std::string Render(const Path& p) {
  std::string out;
  AppendPath(p, out);
  return out;
}

absl::Status Violation(const Path& path, std::string_view what) { return Violation(Render(path), what); }

absl::Status TooMany(const Path& path, int n) {
  return Violation(path, common::Cat(n, " entries exceeds the limit of ", kMaxRepeatedEntries));
}

// A payload string: at most 16 KiB of UTF-8 without NUL.
absl::Status CheckText(std::string_view s, const Path& path, std::string_view what = "") {
  if (s.size() > kMaxPayloadStringBytes)
    return Violation(path, common::Cat(what, s.size(), " bytes exceeds the 16 KiB limit"));
  switch (ScanText(s)) {
    case TextProblem::kNul: return Violation(path, common::Cat(what, "contains a NUL character"));
    case TextProblem::kBadUtf8: return Violation(path, common::Cat(what, "is not valid UTF-8"));
    case TextProblem::kNone: break;
  }
  return absl::OkStatus();
}

bool IsPresent(const Message& m, const FieldDescriptor* f) {
  const Reflection* r = m.GetReflection();
  if (f->is_repeated()) return r->FieldSize(m, f) > 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      return !r->GetStringReference(m, f, &scratch).empty();
    }
    case FieldDescriptor::CPPTYPE_ENUM: return r->GetEnumValue(m, f) != 0;
    case FieldDescriptor::CPPTYPE_MESSAGE: return r->HasField(m, f);
    default: return true;  // numbers and bools: zero is a legal value
  }
}

// What to check on each field of a message type, worked out once per type from its
// descriptor and the (sluice.v1.required) options, so validation does no lookups.
// Singular numbers, bools, enums and bytes need no rule unless required; a repeated
// one gets a kScalar rule for its entry count.
struct FieldRule {
  enum class Kind { kScalar, kString, kTimestamp, kDuration, kStruct, kValue, kListValue, kNested };
  const FieldDescriptor* field;
  bool required;
  bool repeated;
  Kind kind;
};

FieldRule::Kind KindOf(const FieldDescriptor* f) {
  using K = FieldRule::Kind;
  if (f->type() == FieldDescriptor::TYPE_STRING) return K::kString;  // not TYPE_BYTES: only the total bounds those
  if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return K::kScalar;
  // Compared by descriptor, not name: the walk casts these to the generated classes,
  // which is only right for the generated pool's types.
  const Descriptor* t = f->message_type();
  if (t == google::protobuf::Timestamp::descriptor()) return K::kTimestamp;
  if (t == google::protobuf::Duration::descriptor()) return K::kDuration;
  if (t == google::protobuf::Struct::descriptor()) return K::kStruct;
  if (t == google::protobuf::Value::descriptor()) return K::kValue;
  if (t == google::protobuf::ListValue::descriptor()) return K::kListValue;
  return K::kNested;
}

std::vector<FieldRule> BuildRules(const Descriptor* d) {
  std::vector<FieldRule> rules;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    FieldRule r{f, f->options().GetExtension(v1::required), f->is_repeated(), KindOf(f)};
    if (r.required || r.repeated || r.kind != FieldRule::Kind::kScalar) rules.push_back(r);
  }
  return rules;
}

using RuleMap = std::map<const Descriptor*, std::vector<FieldRule>>;

void AddRules(const Descriptor* d, RuleMap& out) {
  if (out.contains(d)) return;
  out[d] = BuildRules(d);
  for (const FieldRule& r : out[d])
    if (r.kind == FieldRule::Kind::kNested) AddRules(r.field->message_type(), out);
}

// Rules for every message reachable from Envelope, built once (thread-safe static
// initialisation) and read without locks afterwards.
const std::vector<FieldRule>& RulesFor(const Descriptor* d) {
  static const RuleMap* const kRules = [] {
    auto* m = new RuleMap;
    AddRules(v1::Envelope::descriptor(), *m);
    return m;
  }();
  auto it = kRules->find(d);
  if (it != kRules->end()) return it->second;
  thread_local RuleMap others;  // messages outside the contract (not expected)
  AddRules(d, others);
  return others[d];
}

absl::Status CheckStruct(const google::protobuf::Struct& s, const Path& path, int depth);
absl::Status CheckList(const google::protobuf::ListValue& l, const Path& path, int depth);

// A Value one level inside its Struct or ListValue (`depth` is that container's level).
absl::Status CheckValue(const google::protobuf::Value& v, const Path& path, int depth) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kStringValue: return CheckText(v.string_value(), path);
    case google::protobuf::Value::kStructValue: return CheckStruct(v.struct_value(), path, depth + 1);
    case google::protobuf::Value::kListValue: return CheckList(v.list_value(), path, depth + 1);
    default: return absl::OkStatus();
  }
}

absl::Status CheckStruct(const google::protobuf::Struct& s, const Path& path, int depth) {
  if (depth > kMaxStructDepth) return Violation(path, common::Cat("nested deeper than ", kMaxStructDepth, " levels"));
  const Path fields = path.Field("fields");
  if (s.fields_size() > kMaxRepeatedEntries) return TooMany(fields, s.fields_size());
  for (const auto& [key, value] : s.fields()) {
    const Path at = fields.Key(key);
    if (auto st = CheckText(key, at, "key "); !st.ok()) return st;
    if (auto st = CheckValue(value, at, depth); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status CheckList(const google::protobuf::ListValue& l, const Path& path, int depth) {
  if (depth > kMaxStructDepth) return Violation(path, common::Cat("nested deeper than ", kMaxStructDepth, " levels"));
  const Path values = path.Field("values");
  if (l.values_size() > kMaxRepeatedEntries) return TooMany(values, l.values_size());
  for (int i = 0; i < l.values_size(); ++i)
    if (auto st = CheckValue(l.values(i), values.Index(i), depth); !st.ok()) return st;
  return absl::OkStatus();
}

absl::Status CheckMessage(const Message& m, const Path& path, absl::Time now);

// One value of a field (an entry of a repeated one) by its rule.
absl::Status CheckOne(const FieldRule& rule, const Message& m, int index, const Path& path, absl::Time now) {
  const Reflection* r = m.GetReflection();
  const FieldDescriptor* f = rule.field;
  if (rule.kind == FieldRule::Kind::kString) {
    std::string scratch;
    const std::string& s =
        rule.repeated ? r->GetRepeatedStringReference(m, f, index, &scratch) : r->GetStringReference(m, f, &scratch);
    return CheckText(s, path);
  }
  const Message& sub = rule.repeated ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f);
  switch (rule.kind) {
    case FieldRule::Kind::kTimestamp: return CheckTimestamp(sub, Render(path), now);
    case FieldRule::Kind::kDuration: return CheckDuration(sub, Render(path));
    case FieldRule::Kind::kStruct: return CheckStruct(static_cast<const google::protobuf::Struct&>(sub), path, 1);
    case FieldRule::Kind::kListValue: return CheckList(static_cast<const google::protobuf::ListValue&>(sub), path, 1);
    case FieldRule::Kind::kValue: return CheckValue(static_cast<const google::protobuf::Value&>(sub), path, 0);
    default: return CheckMessage(sub, path, now);
  }
}

// Walks a payload message: required fields, strings, repeated counts, timestamps,
// durations and Structs, recursively.
absl::Status CheckMessage(const Message& m, const Path& path, absl::Time now) {
  const Reflection* r = m.GetReflection();
  for (const FieldRule& rule : RulesFor(m.GetDescriptor())) {
    const FieldDescriptor* f = rule.field;
    const Path at = path.Field(f->name());
    if (rule.required && !IsPresent(m, f)) return Violation(at, "required");
    if (rule.repeated) {
      const int n = r->FieldSize(m, f);
      if (n > kMaxRepeatedEntries) return TooMany(at, n);
      if (rule.kind == FieldRule::Kind::kScalar) continue;
      for (int j = 0; j < n; ++j)
        if (auto s = CheckOne(rule, m, j, at.Index(j), now); !s.ok()) return s;
    } else if (rule.kind == FieldRule::Kind::kString || (rule.kind != FieldRule::Kind::kScalar && r->HasField(m, f))) {
      if (auto s = CheckOne(rule, m, 0, at, now); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

// correlation_id and causation_id: short printable ASCII, so they index and log cleanly.
absl::Status CheckCorrelationId(std::string_view v, std::string_view path) {
  if (v.size() > kMaxCorrelationIdBytes)
    return Violation(path, common::Cat(v.size(), " bytes exceeds the ", kMaxCorrelationIdBytes, "-byte limit"));
  for (size_t i = 0; i < v.size(); ++i) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (c == 0) return Violation(path, "contains a NUL character");
    if (c < 0x21 || c > 0x7E) return Violation(path, common::Cat("byte ", i, " is not printable ASCII (0x21-0x7E)"));
  }
  return absl::OkStatus();
}

bool IsMetadataKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

absl::Status CheckMetadata(const google::protobuf::Map<std::string, std::string>& metadata) {
  if (metadata.size() > kMaxMetadataEntries)
    return Violation("metadata", common::Cat(metadata.size(), " entries exceeds the limit of ", kMaxMetadataEntries));
  size_t total = 0;
  const Path root = RootPath("metadata");
  for (const auto& [k, v] : metadata) {
    if (k.empty()) return Violation("metadata", "keys must not be empty");
    if (k.size() > kMaxMetadataKeyBytes)
      return Violation("metadata",
                       common::Cat("a key of ", k.size(), " bytes exceeds the ", kMaxMetadataKeyBytes, "-byte limit"));
    for (char c : k)
      if (!IsMetadataKeyChar(c)) return Violation("metadata", "keys must be of A-Z, a-z, 0-9, '.', '_' and '-'");
    const Path at = root.Key(k);
    if (v.size() > kMaxMetadataValueBytes)
      return Violation(at, common::Cat(v.size(), " bytes exceeds the ", kMaxMetadataValueBytes, "-byte limit"));
    for (char c : v) {
      const auto u = static_cast<unsigned char>(c);
      if (u == 0) return Violation(at, "contains a NUL character");
      if (u < 0x20 || u == 0x7F) return Violation(at, "contains a control character");
    }
    if (ScanText(v) != TextProblem::kNone) return Violation(at, "is not valid UTF-8");
    total += k.size() + v.size();
  }
  if (total > kMaxMetadataBytes) return Violation("metadata", common::Cat(total, " bytes exceeds the 2 KiB limit"));
  return absl::OkStatus();
}

}  // namespace

bool IsValidTenantId(std::string_view t) {
  if (t.empty() || t.size() > kMaxTenantIdLength) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && !(c == '-' && i > 0)) return false;
  }
  return true;
}

bool IsValidTraceparent(std::string_view tp) {
  // 00-<trace-id 32>-<parent-id 16>-<flags 2>
  if (tp.size() != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return false;
  std::string_view version = tp.substr(0, 2), trace = tp.substr(3, 32), parent = tp.substr(36, 16),
                   flags = tp.substr(53, 2);
  return version == "00" && IsLowerHex(trace) && IsLowerHex(parent) && IsLowerHex(flags) && !AllZero(trace) &&
         !AllZero(parent);
}

absl::Status Validate(const v1::Envelope& env, const Catalog& catalog, absl::Time now) {
  if (env.id().empty()) return Violation("id", "required");
  if (!IsUuid(env.id())) return Violation("id", "must be a UUID");
  for (char c : env.id())
    if (c >= 'A' && c <= 'F') return Violation("id", "must be a lower-case UUID");

  if (env.type().empty()) return Violation("type", "required");
  if (env.type().size() > kMaxTypeBytes)
    return Violation("type", common::Cat(env.type().size(), " bytes exceeds the ", kMaxTypeBytes, "-byte limit"));
  const Route* route = catalog.Find(env.type());
  if (route == nullptr) return Violation("type", common::Cat("unknown event type \"", Escaped(env.type()), "\""));

  if (env.version().empty()) return Violation("version", "required");
  if (!IsSemver(env.version())) return Violation("version", "must be MAJOR.MINOR.PATCH");
  if (env.version().substr(0, env.version().find('.')) != route->version.substr(0, route->version.find('.')))
    return Violation("version", common::Cat("major version differs from the catalog's ", route->version));

  if (env.tenant_id().empty()) return Violation("tenant_id", "required");
  if (!IsValidTenantId(env.tenant_id()))
    return Violation("tenant_id", "must be 1-64 characters of a-z, 0-9 and '-', not starting with '-'");

  if (env.source().empty()) return Violation("source", "required");
  if (env.source().size() > kMaxSourceBytes)
    return Violation("source", common::Cat(env.source().size(), " bytes exceeds the ", kMaxSourceBytes, "-byte limit"));
  if (!catalog.IsKnownSource(env.source()))
    return Violation("source", common::Cat("unknown source \"", Escaped(env.source()), "\""));

  if (!env.has_occurred_at()) return Violation("occurred_at", "required");
  if (auto s = CheckTimestamp(env.occurred_at(), "occurred_at", now); !s.ok()) return s;

  if (env.ttl_ms() < 0) return Violation("ttl_ms", "must not be negative");
  if (!env.traceparent().empty() && !IsValidTraceparent(env.traceparent()))
    return Violation("traceparent", "must be W3C traceparent 00-<32 hex>-<16 hex>-<2 hex>");

  if (auto s = CheckCorrelationId(env.correlation_id(), "correlation_id"); !s.ok()) return s;
  if (auto s = CheckCorrelationId(env.causation_id(), "causation_id"); !s.ok()) return s;
  if (auto s = CheckMetadata(env.metadata()); !s.ok()) return s;

  static const google::protobuf::OneofDescriptor* const kPayload =
      v1::Envelope::descriptor()->FindOneofByName("payload");
  const FieldDescriptor* fd = env.GetReflection()->GetOneofFieldDescriptor(env, kPayload);
  const std::string_view field = fd == nullptr ? std::string_view() : std::string_view(fd->name());
  if (field.empty()) return Violation("payload", common::Cat("required (", route->payload_field, ")"));
  if (field != route->payload_field)
    return Violation(field, common::Cat("type ", env.type(), " carries ", route->payload_field));

  const Message& payload = env.GetReflection()->GetMessage(env, fd);
  if (size_t n = payload.ByteSizeLong(); n > kMaxPayloadBytes)
    return Violation(field, common::Cat(n, " bytes exceeds the 256 KiB limit"));
  return CheckMessage(payload, RootPath(field), now);
}

absl::Status WithFieldPath(absl::Status status, std::string_view path) {
  status.SetPayload(kTypeUrl, absl::Cord(std::string(path)));
  return status;
}

absl::Status InvalidField(std::string_view field, std::string_view what) {
  return WithFieldPath(absl::InvalidArgumentError(common::Cat(field, ": ", what)), field);
}

std::optional<std::string> FieldPathOf(const absl::Status& status) {
  auto p = status.GetPayload(kTypeUrl);
  if (!p.has_value()) return std::nullopt;
  return std::string(*p);
}

}  // namespace sluice::contracts
