#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <string>

namespace sluice::contracts {

// A reflection-driven JSON encoder for hot paths (sluice-audit encodes every event's
// payload): about 1 microsecond for a sluice payload where ToJson takes 20-25, as ToJson
// serializes the message to binary and re-reads it through protobuf's type resolver.
//
// Contract: AppendJson(out, msg) appends exactly the bytes ToJson(msg) (non-pretty)
// returns, and on failure returns exactly ToJson's error with `out` unchanged. That is
// protobuf 3.21's JSON mapping as ToJson configures it: lowerCamelCase (json_name) keys,
// fields without presence omitted at their default value, fields in field-number order,
// enums by name (unknown numbers as numbers), 64-bit integers as quoted decimals,
// float/double in protobuf's shortest-of-%.{6,9}g / %.{15,17}g form with "NaN" and
// "[-]Infinity" quoted, bytes as padded base64, strings escaped like protobuf (control
// characters, '"', '\\', '<', '>', U+007F-U+009F and a list of invisible code points as
// \uXXXX), map entries in the order protobuf serializes them (the map's own iteration
// order; see the one caveat below), and the well-known types Timestamp, Duration,
// Struct/Value/ListValue/NullValue and the wrappers in their special forms. Whatever it
// does not reproduce itself goes to protobuf's printer: Any and FieldMask sub-messages are
// printed by it and spliced in; anything that would make protobuf fail or print oddly
// (invalid UTF-8, out-of-range Timestamp or Duration, unknown fields inside a well-known
// type or numbered like a declared field, proto2 groups, nesting deeper than protobuf
// allows) makes the whole message go through ToJson.
//
// Caveat: a map field other than google.protobuf.Struct's, with two or more entries, that
// was last written through reflection (the text-format parser does that) may list its
// entries in insertion order where protobuf lists them in its hash map's (arbitrary) order:
// protobuf has no public way to walk the map itself. Messages parsed from the wire or
// built through the generated map API are not affected, nor is Struct in any case.
//
// Thread-safe. The per-message-type plans (JSON keys, kinds, enum names) are built once
// per descriptor on first use and kept for the life of the process, so descriptors of
// dynamic pools passed here must outlive the process's use of this function.
absl::Status AppendJson(std::string& out, const google::protobuf::Message& msg);

// How many AppendJson calls so far handed the whole message to ToJson (see above); a
// process-wide count for tests and metrics. Well-formed sluice payloads never need to.
int64_t AppendJsonFallbacks();

// AppendJson into a fresh string.
absl::StatusOr<std::string> ToJsonFast(const google::protobuf::Message& msg);

// What google::protobuf::util::TimeUtil::ToString(t) returns, byte for byte (RFC 3339 in
// UTC: "2025-12-01T10:00:00Z", with ".fff", ".ffffff" or ".fffffffff" when the nanos need
// them), without its printf: the producer formats ce_time and the audit sink occurred_at
// for every event. Outside protobuf's range (years 1-9999, nanos 0-999999999) it returns
// what TimeUtil::ToString does.
std::string FormatTimestamp(const google::protobuf::Timestamp& t);

}  // namespace sluice::contracts
