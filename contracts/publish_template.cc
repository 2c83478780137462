#include "contracts/publish_template.h"

#include <absl/strings/str_join.h>
#include <absl/strings/str_split.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <array>
#include <functional>

#include "common/sha256.h"
#include "common/strings.h"
#include "contracts/json.h"
#include "contracts/validate.h"
#include "sluice/v1/options.pb.h"

namespace sluice::contracts {
namespace {

using common::Cat;
using google::protobuf::Struct;
using google::protobuf::Value;

constexpr size_t kMaxPathNames = 8, kMaxNameBytes = 64;

// A placeholder: "{{event.<attribute>}}" or "{{payload.<name>[.<name>...]}}".
struct Placeholder {
  bool payload = false;
  std::vector<std::string> names;  // payload: the path; event: one attribute
};

constexpr std::array<std::string_view, 4> kEventAttributes = {"id", "type", "source", "correlation_id"};

bool IsName(std::string_view s) {
  return !s.empty() && s.size() <= kMaxNameBytes && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Whether `s` is meant as a placeholder ("{{...}}"), and then what it names or why it is
// not one.
bool IsPlaceholder(std::string_view s) { return s.starts_with("{{") && s.ends_with("}}") && s.size() >= 4; }

absl::StatusOr<Placeholder> ParsePlaceholder(std::string_view s) {
  std::string_view inner = s.substr(2, s.size() - 4);
  std::vector<std::string> parts = absl::StrSplit(std::string(inner), '.');
  Placeholder p;
  if (parts.size() == 2 && parts[0] == "event") {
    if (std::find(kEventAttributes.begin(), kEventAttributes.end(), parts[1]) == kEventAttributes.end())
      return absl::InvalidArgumentError(Cat("placeholder {{", common::LogSafe(inner, 80),
                                            "}}: event attributes are id, type, source and correlation_id"));
    p.names = {parts[1]};
    return p;
  }
  if (parts.size() >= 2 && parts.size() <= kMaxPathNames + 1 && parts[0] == "payload" &&
      std::all_of(parts.begin() + 1, parts.end(), IsName)) {
    p.payload = true;
    p.names.assign(parts.begin() + 1, parts.end());
    return p;
  }
  return absl::InvalidArgumentError(Cat("placeholder {{", common::LogSafe(inner, 80),
                                        "}} is neither {{event.<attribute>}} nor {{payload.<name>[.<name>...]}} (at "
                                        "most ",
                                        kMaxPathNames, " names of letters, digits and _)"));
}

// Calls `visit` for every string value of `v` (in objects and lists), which may replace it.
absl::Status EachString(Value& v, const std::function<absl::Status(Value&)>& visit, int depth = 0) {
  if (depth > 16) return absl::InvalidArgumentError("nested more than 16 levels deep");
  switch (v.kind_case()) {
    case Value::kStringValue: return visit(v);
    case Value::kStructValue:
      for (auto& [k, child] : *v.mutable_struct_value()->mutable_fields())
        if (auto s = EachString(child, visit, depth + 1); !s.ok()) return s;
      return absl::OkStatus();
    case Value::kListValue:
      for (auto& child : *v.mutable_list_value()->mutable_values())
        if (auto s = EachString(child, visit, depth + 1); !s.ok()) return s;
      return absl::OkStatus();
    default: return absl::OkStatus();
  }
}

absl::StatusOr<Value> ParseTemplate(std::string_view tmpl) {
  if (tmpl.empty()) return absl::InvalidArgumentError("required: the derived event's payload (protobuf JSON)");
  if (tmpl.size() > kMaxPublishTemplateBytes)
    return absl::InvalidArgumentError(Cat("longer than ", kMaxPublishTemplateBytes, " bytes"));
  Value v;
  if (!google::protobuf::util::JsonStringToMessage(std::string(tmpl), &v).ok() || !v.has_struct_value())
    return absl::InvalidArgumentError("not one JSON object");
  return v;
}

// The payload message of `route` in a scratch envelope.
google::protobuf::Message* PayloadOf(v1::Envelope& env, const Route& route) {
  const auto* field = v1::Envelope::descriptor()->FindFieldByName(route.payload_field);
  return env.GetReflection()->MutableMessage(&env, field);
}

std::string ToJsonText(const Value& v) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(v, &out);
  return out;
}

// The value `names` leads to in `payload`, or why none.
absl::StatusOr<Value> Lookup(const Struct& payload, const std::vector<std::string>& names) {
  const Struct* at = &payload;
  for (size_t i = 0; i < names.size(); ++i) {
    auto it = at->fields().find(names[i]);
    if (it == at->fields().end())
      return absl::InvalidArgumentError(
          Cat("placeholder {{payload.", absl::StrJoin(names, "."), "}}: the event's payload has no ", names[i]));
    if (i + 1 == names.size()) {
      const Value& v = it->second;
      if (v.has_struct_value() || v.has_list_value())
        return absl::InvalidArgumentError(
            Cat("placeholder {{payload.", absl::StrJoin(names, "."), "}}: an object or a list, not one value"));
      return v;
    }
    if (!it->second.has_struct_value())
      return absl::InvalidArgumentError(
          Cat("placeholder {{payload.", absl::StrJoin(names, "."), "}}: ", names[i], " is not an object"));
    at = &it->second.struct_value();
  }
  return absl::InvalidArgumentError("placeholder without a name");
}

}  // namespace

std::vector<std::string> PublishableTypes(const Catalog& catalog) {
  std::vector<std::string> out;
  for (const auto& r : catalog.routes())
    if (std::find(r.producers.begin(), r.producers.end(), kTriggerSource) != r.producers.end()) out.push_back(r.type);
  return out;
}

absl::Status CheckPublishAction(const Catalog& catalog, std::string_view type, std::string_view tmpl,
                                std::string_view prefix) {
  std::vector<FieldViolation> v;
  auto add = [&](std::string_view name, std::string_view what) {
    const std::string field = Cat(prefix, name);
    v.push_back({field, Cat(field, ": ", what)});
  };
  const std::vector<std::string> allowed = PublishableTypes(catalog);
  const Route* route = nullptr;
  if (type.empty()) {
    add("type", Cat("required: one of ", absl::StrJoin(allowed, ", ")));
  } else if (std::find(allowed.begin(), allowed.end(), type) == allowed.end()) {
    add("type", Cat("not a type the catalog lets ", kTriggerSource, " emit (", absl::StrJoin(allowed, ", "), ")"));
  } else {
    route = catalog.Find(type);
  }
  auto parsed = ParseTemplate(tmpl);
  if (!parsed.ok()) {
    add("payload_template", std::string(parsed.status().message()));
  } else if (route != nullptr) {
    // Placeholders become null, which every field takes: what is left are the names and
    // literal values, which the type's payload must accept.
    absl::Status s = EachString(*parsed, [](Value& value) -> absl::Status {
      if (!IsPlaceholder(value.string_value())) return absl::OkStatus();
      auto p = ParsePlaceholder(value.string_value());
      if (!p.ok()) return p.status();
      value.set_null_value(google::protobuf::NULL_VALUE);
      return absl::OkStatus();
    });
    if (s.ok()) {
      v1::Envelope scratch;
      s = FromJson(ToJsonText(*parsed), *PayloadOf(scratch, *route));
      if (!s.ok()) s = absl::InvalidArgumentError(Cat("not a ", route->payload_message, ": ", s.message()));
    }
    if (s.ok()) {
      // Every required field is given, as a value or a placeholder (else every match fails).
      std::vector<std::string> missing;
      const auto& keys = parsed->struct_value().fields();
      const auto* message = v1::Envelope::descriptor()->FindFieldByName(route->payload_field)->message_type();
      for (int i = 0; i < message->field_count(); ++i) {
        const auto* f = message->field(i);
        if (f->options().GetExtension(v1::required) && !keys.contains(f->json_name()) && !keys.contains(f->name()))
          missing.push_back(f->json_name());
      }
      if (!missing.empty())
        s = absl::InvalidArgumentError(Cat("required fields missing: ", absl::StrJoin(missing, ", ")));
    }
    if (!s.ok()) add("payload_template", common::LogSafe(std::string(s.message()), 300));
  }
  if (!v.empty()) return InvalidFields(v);
  return absl::OkStatus();
}

std::string DerivedEventId(std::string_view trigger_id, const v1::Envelope& source) {
  const std::string digest = common::Sha256Hex(Cat(trigger_id, "\n", source.id()));
  // UUIDv7: 48 bits of the source's time in ms, version 7, variant 10, the rest digest.
  const uint64_t ms = static_cast<uint64_t>(std::max<int64_t>(
                          0, google::protobuf::util::TimeUtil::TimestampToMilliseconds(source.occurred_at()))) &
                      0xFFFFFFFFFFFFULL;
  char hex[13];
  std::snprintf(hex, sizeof hex, "%012llx", static_cast<unsigned long long>(ms));
  std::string h = Cat(hex, "7", digest.substr(0, 3));
  static constexpr char kHex[] = "0123456789abcdef";
  const int variant_nibble = 8 | (std::stoi(digest.substr(3, 1), nullptr, 16) & 0x3);
  h += kHex[variant_nibble];
  h += digest.substr(4, 15);
  return Cat(h.substr(0, 8), "-", h.substr(8, 4), "-", h.substr(12, 4), "-", h.substr(16, 4), "-", h.substr(20, 12));
}

absl::StatusOr<std::string> PayloadJsonWithDefaults(const v1::Envelope& e) {
  const auto* field =
      e.GetReflection()->GetOneofFieldDescriptor(e, v1::Envelope::descriptor()->FindOneofByName("payload"));
  if (field == nullptr) return absl::InvalidArgumentError("the event has no payload");
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  if (auto s = google::protobuf::util::MessageToJsonString(e.GetReflection()->GetMessage(e, field), &out, options);
      !s.ok())
    return absl::InvalidArgumentError(Cat("the event's payload: ", std::string(s.message())));
  return out;
}

absl::StatusOr<v1::Envelope> DeriveEvent(const Catalog& catalog, std::string_view trigger_id, std::string_view type,
                                         std::string_view tmpl, const v1::Envelope& source, absl::Time now) {
  auto source_payload_json = PayloadJsonWithDefaults(source);
  if (!source_payload_json.ok()) return source_payload_json.status();
  const Route* route = catalog.Find(type);
  const std::vector<std::string> allowed = PublishableTypes(catalog);
  if (route == nullptr || std::find(allowed.begin(), allowed.end(), type) == allowed.end())
    return absl::InvalidArgumentError(Cat("type ", type, " is not one ", kTriggerSource, " may emit"));
  auto parsed = ParseTemplate(tmpl);
  if (!parsed.ok()) return absl::InvalidArgumentError(Cat("payload template: ", parsed.status().message()));
  Struct payload;
  if (!google::protobuf::util::JsonStringToMessage(*source_payload_json, &payload).ok())
    return absl::InvalidArgumentError("the event's payload is not a JSON object");
  const std::string correlation = source.correlation_id().empty() ? source.id() : source.correlation_id();
  absl::Status filled = EachString(*parsed, [&](Value& value) -> absl::Status {
    if (!IsPlaceholder(value.string_value())) return absl::OkStatus();
    auto p = ParsePlaceholder(value.string_value());
    if (!p.ok()) return p.status();
    if (p->payload) {
      auto found = Lookup(payload, p->names);
      if (!found.ok()) return found.status();
      value = *std::move(found);
      return absl::OkStatus();
    }
    const std::string& a = p->names[0];
    value.set_string_value(a == "id"       ? source.id()
                           : a == "type"   ? source.type()
                           : a == "source" ? source.source()
                                           : correlation);
    return absl::OkStatus();
  });
  if (!filled.ok()) return filled;
  v1::Envelope out;
  if (auto s = FromJson(ToJsonText(*parsed), *PayloadOf(out, *route)); !s.ok())
    return absl::InvalidArgumentError(Cat("the filled payload is not a ", route->payload_message, ": ",
                                          common::LogSafe(std::string(s.message()), 300)));
  out.set_id(DerivedEventId(trigger_id, source));
  out.set_type(route->type);
  out.set_version(route->version);
  out.set_tenant_id(source.tenant_id());
  out.set_source(kTriggerSource);
  *out.mutable_occurred_at() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(absl::ToUnixMillis(now));
  out.set_correlation_id(correlation);
  out.set_causation_id(source.id());
  out.set_traceparent(source.traceparent());
  if (auto s = Validate(out, catalog, now); !s.ok())
    return absl::InvalidArgumentError(
        Cat("the derived event is invalid: ", common::LogSafe(std::string(s.message()), 300)));
  return out;
}

}  // namespace sluice::contracts
