#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/v1/envelope.pb.h"

namespace sluice::contracts {

// One Kafka record header.
struct Header {
  std::string key;
  std::string value;
  bool operator==(const Header&) const = default;
};
using Headers = std::vector<Header>;

inline constexpr std::string_view kHeaderType = "ce_type";
inline constexpr std::string_view kContentType = "application/protobuf";

// CloudEvents 1.0 attributes as carried in Kafka headers (binary content mode).
struct CloudEventAttributes {
  std::string id;
  std::string source;
  std::string type;
  absl::Time time;
  std::string tenant_id;
  std::string partition_key;
  std::string traceparent;  // empty when absent
  std::string content_type;
};

// Headers for an envelope, in the CloudEvents Kafka binding's binary mode:
// ce_specversion=1.0, ce_id, ce_source, ce_type, ce_time (RFC 3339), ce_tenantid,
// ce_partitionkey (= tenant_id, the record key), traceparent when set, and
// content-type: application/protobuf.
Headers ToKafkaHeaders(const v1::Envelope& env);

// Reads the attributes back; InvalidArgument naming the header when one is missing
// or malformed, or when ce_specversion is not 1.0.
absl::StatusOr<CloudEventAttributes> FromKafkaHeaders(const Headers& headers);

// First value of header `key`, if present.
std::optional<std::string_view> FindHeader(const Headers& headers, std::string_view key);

}  // namespace sluice::contracts
