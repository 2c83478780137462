#include "contracts/cloudevents.h"

#include <google/protobuf/util/time_util.h>

#include "common/strings.h"
#include "contracts/fast_json.h"

namespace sluice::contracts {

using google::protobuf::util::TimeUtil;

Headers ToKafkaHeaders(const v1::Envelope& env) {
  Headers h;
  h.reserve(9);
  h.push_back({"ce_specversion", "1.0"});
  h.push_back({"ce_id", env.id()});
  h.push_back({"ce_source", env.source()});
  h.push_back({"ce_type", env.type()});
  h.push_back({"ce_time", FormatTimestamp(env.occurred_at())});
  h.push_back({"ce_tenantid", env.tenant_id()});
  h.push_back({"ce_partitionkey", env.tenant_id()});
  if (!env.traceparent().empty()) h.push_back({"traceparent", env.traceparent()});
  h.push_back({"content-type", std::string(kContentType)});
  return h;
}

std::optional<std::string_view> FindHeader(const Headers& headers, std::string_view key) {
  for (const auto& h : headers)
    if (h.key == key) return std::string_view(h.value);
  return std::nullopt;
}

absl::StatusOr<CloudEventAttributes> FromKafkaHeaders(const Headers& headers) {
  auto need = [&](std::string_view key) -> absl::StatusOr<std::string> {
    auto v = FindHeader(headers, key);
    if (!v.has_value() || v->empty()) return absl::InvalidArgumentError(common::Cat("header ", key, ": required"));
    return std::string(*v);
  };
  auto spec = need("ce_specversion");
  if (!spec.ok()) return spec.status();
  if (*spec != "1.0")
    return absl::InvalidArgumentError(common::Cat("header ce_specversion: \"", *spec, "\" is not 1.0"));

  CloudEventAttributes a;
  for (auto [key, out] : {std::pair<std::string_view, std::string*>{"ce_id", &a.id},
                          {"ce_source", &a.source},
                          {"ce_type", &a.type},
                          {"ce_tenantid", &a.tenant_id},
                          {"ce_partitionkey", &a.partition_key},
                          {"content-type", &a.content_type}}) {
    auto v = need(key);
    if (!v.ok()) return v.status();
    *out = *std::move(v);
  }
  auto time = need("ce_time");
  if (!time.ok()) return time.status();
  google::protobuf::Timestamp ts;
  if (!TimeUtil::FromString(*time, &ts))
    return absl::InvalidArgumentError(common::Cat("header ce_time: \"", *time, "\" is not RFC 3339"));
  a.time = absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
  if (auto tp = FindHeader(headers, "traceparent")) a.traceparent = std::string(*tp);
  return a;
}

}  // namespace sluice::contracts
