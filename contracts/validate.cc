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
// Every violation when there are several: "path\0message\0" for each, in order.
constexpr char kListTypeUrl[] = "type.sluice.dev/sluice.v1.FieldViolations";
constexpr int64_t kMinSeconds = 946684800;  // 2000-01-01T00:00:00Z

absl::Status Violation(std::string_view path, std::string_view what) {
  return WithFieldPath(absl::InvalidArgumentError(common::Cat(path, ": ", what)), path);
}

// Every violation of one envelope, up to kMaxViolations (the rest are not looked for).
// Allocates only when a rule fails.
class Violations {
 public:
  bool full() const { return list_.size() >= kMaxViolations; }
  void Add(absl::Status s) {
    if (!s.ok() && !full()) list_.push_back(std::move(s));
  }
  // OK, the one violation, or the first with the messages joined by "; " and the list
  // attached (ViolationsOf). Bounded, so an answer carrying them fits gRPC's metadata
  // (8 KiB by default) whatever the paths inside Structs: what does not fit is counted
  // ("; and N more"). The first violation always goes in.
  absl::Status ToStatus() && {
    if (list_.empty()) return absl::OkStatus();
    if (list_.size() == 1) return std::move(list_.front());
    std::string message, encoded;
    size_t left_out = 0;
    for (const absl::Status& v : list_) {
      std::string entry =
          common::Cat(FieldPathOf(v).value_or(""), std::string_view("\0", 1), v.message(), std::string_view("\0", 1));
      if (!encoded.empty() && (encoded.size() + entry.size() > kMaxViolationBytes ||
                               message.size() + v.message().size() + 2 > kMaxViolationBytes / 3)) {
        ++left_out;
        continue;
      }
      if (!message.empty()) message += "; ";
      message.append(v.message().data(), v.message().size());
      encoded += entry;
    }
    if (left_out > 0) message += common::Cat("; and ", left_out, " more");
    absl::Status all = WithFieldPath(absl::InvalidArgumentError(message), FieldPathOf(list_.front()).value_or(""));
    all.SetPayload(kListTypeUrl, absl::Cord(std::move(encoded)));
    return all;
  }

 private:
  std::vector<absl::Status> list_;
};

bool IsLowerHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Caller-supplied text quoted in an error message: printable whatever it holds.
std::string Escaped(std::string_view s) { return absl::CHexEscape(absl::string_view(s.data(), s.size())); }

bool AllZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

// `path`: a string_view, or a Path (below) spelled only if the value is refused.
template <typename P>
absl::Status CheckTimestamp(const Message& m, const P& path, absl::Time now) {
  const auto& ts = static_cast<const google::protobuf::Timestamp&>(m);
  if (ts.nanos() < 0 || ts.nanos() > 999'999'999) return Violation(path, "nanos out of range");
  if (ts.seconds() < kMinSeconds) return Violation(path, "before 2000-01-01");
  if (absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos()) > now + kMaxClockSkew)
    return Violation(path, "more than 5 minutes in the future");
  return absl::OkStatus();
}

template <typename P>
absl::Status CheckDuration(const Message& m, const P& path) {
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
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == 0) return TextProblem::kNul;
      ++i;
      continue;
    }
    const size_t n = common::Utf8SequenceLength(s, i);
    if (n == 0) return TextProblem::kBadUtf8;
    i += n;
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

void CheckMessage(const Message& m, const Path& path, absl::Time now, Violations& out);

// One value of a field (an entry of a repeated one) by its rule.
void CheckOne(const FieldRule& rule, const Message& m, int index, const Path& path, absl::Time now, Violations& out) {
  const Reflection* r = m.GetReflection();
  const FieldDescriptor* f = rule.field;
  if (rule.kind == FieldRule::Kind::kString) {
    std::string scratch;
    const std::string& s =
        rule.repeated ? r->GetRepeatedStringReference(m, f, index, &scratch) : r->GetStringReference(m, f, &scratch);
    out.Add(CheckText(s, path));
    return;
  }
  const Message& sub = rule.repeated ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f);
  switch (rule.kind) {
    case FieldRule::Kind::kTimestamp: out.Add(CheckTimestamp(sub, path, now)); break;
    case FieldRule::Kind::kDuration: out.Add(CheckDuration(sub, path)); break;
    case FieldRule::Kind::kStruct:
      out.Add(CheckStruct(static_cast<const google::protobuf::Struct&>(sub), path, 1));
      break;
    case FieldRule::Kind::kListValue:
      out.Add(CheckList(static_cast<const google::protobuf::ListValue&>(sub), path, 1));
      break;
    case FieldRule::Kind::kValue: out.Add(CheckValue(static_cast<const google::protobuf::Value&>(sub), path, 0)); break;
    default: CheckMessage(sub, path, now, out);
  }
}

// Walks a payload message: required fields, strings, repeated counts, timestamps,
// durations and Structs, recursively. Every field is checked (one violation per field,
// the first found inside a Struct), until `out` is full.
void CheckMessage(const Message& m, const Path& path, absl::Time now, Violations& out) {
  const Reflection* r = m.GetReflection();
  for (const FieldRule& rule : RulesFor(m.GetDescriptor())) {
    if (out.full()) return;
    const FieldDescriptor* f = rule.field;
    const Path at = path.Field(f->name());
    if (rule.required && !IsPresent(m, f)) {
      out.Add(Violation(at, "required"));
      continue;
    }
    if (rule.repeated) {
      const int n = r->FieldSize(m, f);
      if (n > kMaxRepeatedEntries) {
        out.Add(TooMany(at, n));
        continue;
      }
      if (rule.kind == FieldRule::Kind::kScalar) continue;
      for (int j = 0; j < n && !out.full(); ++j) CheckOne(rule, m, j, at.Index(j), now, out);
    } else if (rule.kind == FieldRule::Kind::kString || (rule.kind != FieldRule::Kind::kScalar && r->HasField(m, f))) {
      CheckOne(rule, m, 0, at, now, out);
    }
  }
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

namespace {

absl::Status CheckId(std::string_view id) {
  if (id.empty()) return Violation("id", "required");
  if (!IsUuid(id)) return Violation("id", "must be a UUID");
  for (char c : id)
    if (c >= 'A' && c <= 'F') return Violation("id", "must be a lower-case UUID");
  return absl::OkStatus();
}

absl::Status CheckType(std::string_view type, const Catalog& catalog, const Route** route) {
  if (type.empty()) return Violation("type", "required");
  if (type.size() > kMaxTypeBytes)
    return Violation("type", common::Cat(type.size(), " bytes exceeds the ", kMaxTypeBytes, "-byte limit"));
  *route = catalog.Find(type);
  if (*route == nullptr) return Violation("type", common::Cat("unknown event type \"", Escaped(type), "\""));
  return absl::OkStatus();
}

// `route` is null when the type is wrong: then only the form is checked.
absl::Status CheckVersion(std::string_view version, const Route* route) {
  if (version.empty()) return Violation("version", "required");
  if (!IsSemver(version)) return Violation("version", "must be MAJOR.MINOR.PATCH");
  if (route != nullptr && version.substr(0, version.find('.')) != route->version.substr(0, route->version.find('.')))
    return Violation("version", common::Cat("major version differs from the catalog's ", route->version));
  return absl::OkStatus();
}

absl::Status CheckTenant(std::string_view tenant) {
  if (tenant.empty()) return Violation("tenant_id", "required");
  if (!IsValidTenantId(tenant))
    return Violation("tenant_id", "must be 1-64 characters of a-z, 0-9 and '-', not starting with '-'");
  return absl::OkStatus();
}

absl::Status CheckSource(std::string_view source, const Catalog& catalog) {
  if (source.empty()) return Violation("source", "required");
  if (source.size() > kMaxSourceBytes)
    return Violation("source", common::Cat(source.size(), " bytes exceeds the ", kMaxSourceBytes, "-byte limit"));
  if (!catalog.IsKnownSource(source))
    return Violation("source", common::Cat("unknown source \"", Escaped(source), "\""));
  return absl::OkStatus();
}

void CheckPayload(const v1::Envelope& env, const Route* route, absl::Time now, Violations& out) {
  static const google::protobuf::OneofDescriptor* const kPayload =
      v1::Envelope::descriptor()->FindOneofByName("payload");
  const FieldDescriptor* fd = env.GetReflection()->GetOneofFieldDescriptor(env, kPayload);
  if (fd == nullptr) {
    out.Add(Violation(
        "payload", route == nullptr ? std::string("required") : common::Cat("required (", route->payload_field, ")")));
    return;
  }
  const std::string_view field = fd->name();
  if (route != nullptr && field != route->payload_field) {
    out.Add(Violation(field, common::Cat("type ", env.type(), " carries ", route->payload_field)));
    return;
  }
  const Message& payload = env.GetReflection()->GetMessage(env, fd);
  if (size_t n = payload.ByteSizeLong(); n > kMaxPayloadBytes) {
    out.Add(Violation(field, common::Cat(n, " bytes exceeds the 256 KiB limit")));
    return;
  }
  CheckMessage(payload, RootPath(field), now, out);
}

}  // namespace

absl::Status Validate(const v1::Envelope& env, const Catalog& catalog, absl::Time now) {
  Violations out;
  out.Add(CheckId(env.id()));
  const Route* route = nullptr;
  out.Add(CheckType(env.type(), catalog, &route));
  out.Add(CheckVersion(env.version(), route));
  out.Add(CheckTenant(env.tenant_id()));
  out.Add(CheckSource(env.source(), catalog));
  if (!env.has_occurred_at()) {
    out.Add(Violation("occurred_at", "required"));
  } else {
    out.Add(CheckTimestamp(env.occurred_at(), std::string_view("occurred_at"), now));
  }
  if (env.ttl_ms() < 0) out.Add(Violation("ttl_ms", "must not be negative"));
  if (!env.traceparent().empty() && !IsValidTraceparent(env.traceparent()))
    out.Add(Violation("traceparent", "must be W3C traceparent 00-<32 hex>-<16 hex>-<2 hex>"));
  out.Add(CheckCorrelationId(env.correlation_id(), "correlation_id"));
  out.Add(CheckCorrelationId(env.causation_id(), "causation_id"));
  out.Add(CheckMetadata(env.metadata()));
  CheckPayload(env, route, now, out);
  return std::move(out).ToStatus();
}

absl::Status WithFieldPath(absl::Status status, std::string_view path) {
  status.SetPayload(kTypeUrl, absl::Cord(std::string(path)));
  return status;
}

absl::Status InvalidField(std::string_view field, std::string_view what) {
  return WithFieldPath(absl::InvalidArgumentError(common::Cat(field, ": ", what)), field);
}

std::vector<FieldViolation> ViolationsOf(const absl::Status& status) {
  std::vector<FieldViolation> out;
  if (auto list = status.GetPayload(kListTypeUrl); list.has_value()) {
    const std::string flat(*list);
    std::vector<std::string> parts;
    for (size_t at = 0, nul; (nul = flat.find('\0', at)) != std::string::npos; at = nul + 1)
      parts.push_back(flat.substr(at, nul - at));
    for (size_t i = 0; i + 1 < parts.size(); i += 2) out.push_back({parts[i], parts[i + 1]});
    return out;
  }
  if (auto path = FieldPathOf(status)) out.push_back({*path, std::string(status.message())});
  return out;
}

absl::Status InvalidFields(const std::vector<FieldViolation>& list) {
  if (list.empty()) return absl::InvalidArgumentError("invalid");
  if (list.size() == 1) return WithFieldPath(absl::InvalidArgumentError(list[0].description), list[0].field);
  std::string message, encoded;
  for (const auto& v : list) {
    if (!message.empty()) message += "; ";
    message += v.description;
    encoded += common::Cat(v.field, std::string_view("\0", 1), v.description, std::string_view("\0", 1));
  }
  absl::Status all = WithFieldPath(absl::InvalidArgumentError(message), list.front().field);
  all.SetPayload(kListTypeUrl, absl::Cord(std::move(encoded)));
  return all;
}

std::optional<std::string> FieldPathOf(const absl::Status& status) {
  auto p = status.GetPayload(kTypeUrl);
  if (!p.has_value()) return std::nullopt;
  return std::string(*p);
}

}  // namespace sluice::contracts
