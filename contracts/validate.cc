#include "contracts/validate.h"

#include <absl/strings/ascii.h>
#include <absl/strings/cord.h>
#include "common/strings.h"
#include <google/protobuf/descriptor.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include <map>
#include <vector>

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
  return absl::OkStatus();
}

bool IsPresent(const Message& m, const FieldDescriptor* f) {
  const Reflection* r = m.GetReflection();
  if (f->is_repeated()) return r->FieldSize(m, f) > 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return !r->GetString(m, f).empty();
    case FieldDescriptor::CPPTYPE_ENUM:
      return r->GetEnumValue(m, f) != 0;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return r->HasField(m, f);
    default:
      return true;  // numbers and bools: zero is a legal value
  }
}

// What to check on each field of a message type, worked out once per type from its
// descriptor and the (sluice.v1.required) options, so validation does no option lookups.
struct FieldRule {
  enum class Kind { kPlain, kTimestamp, kDuration, kNested };
  const FieldDescriptor* field;
  bool required;
  Kind kind;
};

std::vector<FieldRule> BuildRules(const Descriptor* d) {
  std::vector<FieldRule> rules;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    FieldRule r{f, f->options().GetExtension(v1::required), FieldRule::Kind::kPlain};
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const std::string& type = f->message_type()->full_name();
      if (type == "google.protobuf.Timestamp") {
        r.kind = FieldRule::Kind::kTimestamp;
      } else if (type == "google.protobuf.Duration") {
        r.kind = FieldRule::Kind::kDuration;
      } else if (type != "google.protobuf.Struct" && type != "google.protobuf.Value") {
        r.kind = FieldRule::Kind::kNested;
      }
    }
    if (r.required || r.kind != FieldRule::Kind::kPlain) rules.push_back(r);
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

// Walks a payload message: required fields, timestamps, durations, recursively.
absl::Status CheckMessage(const Message& m, const std::string& path, absl::Time now) {
  const Reflection* r = m.GetReflection();
  for (const FieldRule& rule : RulesFor(m.GetDescriptor())) {
    const FieldDescriptor* f = rule.field;
    if (rule.required && !IsPresent(m, f)) return Violation(common::Cat(path, ".", f->name()), "required");
    if (rule.kind == FieldRule::Kind::kPlain) continue;
    auto check = [&](const Message& sub, const std::string& spath) -> absl::Status {
      switch (rule.kind) {
        case FieldRule::Kind::kTimestamp:
          return CheckTimestamp(sub, spath, now);
        case FieldRule::Kind::kDuration:
          return CheckDuration(sub, spath);
        default:
          return CheckMessage(sub, spath, now);
      }
    };
    if (f->is_repeated()) {
      for (int j = 0; j < r->FieldSize(m, f); ++j) {
        if (auto s = check(r->GetRepeatedMessage(m, f, j), common::Cat(path, ".", f->name(), "[", j, "]")); !s.ok())
          return s;
      }
    } else if (r->HasField(m, f)) {
      if (auto s = check(r->GetMessage(m, f), common::Cat(path, ".", f->name())); !s.ok()) return s;
    }
  }
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

  if (env.type().empty()) return Violation("type", "required");
  const Route* route = catalog.Find(env.type());
  if (route == nullptr) return Violation("type", common::Cat("unknown event type \"", env.type(), "\""));

  if (env.version().empty()) return Violation("version", "required");
  if (!IsSemver(env.version())) return Violation("version", "must be MAJOR.MINOR.PATCH");
  if (env.version().substr(0, env.version().find('.')) != route->version.substr(0, route->version.find('.')))
    return Violation("version", common::Cat("major version differs from the catalog's ", route->version));

  if (env.tenant_id().empty()) return Violation("tenant_id", "required");
  if (!IsValidTenantId(env.tenant_id()))
    return Violation("tenant_id", "must be 1-64 characters of a-z, 0-9 and '-', not starting with '-'");

  if (env.source().empty()) return Violation("source", "required");
  if (!catalog.IsKnownSource(env.source()))
    return Violation("source", common::Cat("unknown source \"", env.source(), "\""));

  if (!env.has_occurred_at()) return Violation("occurred_at", "required");
  if (auto s = CheckTimestamp(env.occurred_at(), "occurred_at", now); !s.ok()) return s;

  if (env.ttl_ms() < 0) return Violation("ttl_ms", "must not be negative");
  if (!env.traceparent().empty() && !IsValidTraceparent(env.traceparent()))
    return Violation("traceparent", "must be W3C traceparent 00-<32 hex>-<16 hex>-<2 hex>");

  size_t metadata_bytes = 0;
  for (const auto& [k, v] : env.metadata()) {
    if (k.empty()) return Violation("metadata", "keys must not be empty");
    metadata_bytes += k.size() + v.size();
  }
  if (metadata_bytes > kMaxMetadataBytes)
    return Violation("metadata", common::Cat(metadata_bytes, " bytes exceeds the 2 KiB limit"));

  std::string_view field = PayloadField(env);
  if (field.empty()) return Violation("payload", common::Cat("required (", route->payload_field, ")"));
  if (field != route->payload_field)
    return Violation(field, common::Cat("type ", env.type(), " carries ", route->payload_field));

  const auto* fd = v1::Envelope::descriptor()->FindFieldByName(std::string(field));
  const Message& payload = env.GetReflection()->GetMessage(env, fd);
  if (size_t n = payload.ByteSizeLong(); n > kMaxPayloadBytes)
    return Violation(field, common::Cat(n, " bytes exceeds the 256 KiB limit"));
  return CheckMessage(payload, std::string(field), now);
}

absl::Status WithFieldPath(absl::Status status, std::string_view path) {
  status.SetPayload(kTypeUrl, absl::Cord(std::string(path)));
  return status;
}

std::optional<std::string> FieldPathOf(const absl::Status& status) {
  auto p = status.GetPayload(kTypeUrl);
  if (!p.has_value()) return std::nullopt;
  return std::string(*p);
}

}  // namespace sluice::contracts
