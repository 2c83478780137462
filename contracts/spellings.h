#pragma once

// The two spellings of a closed set (a protobuf enum), and where each is accepted.
//
//   enum name (what JSON shows: protobuf's JSON mapping)   short (the database, the reference documents)
//   TIER_1 .. TIER_5                                      tier1 .. tier5
//   QUALITY_GRADE_A .. QUALITY_GRADE_F                    A .. F
//   ENTITY_TYPE_METADATA, ENTITY_TYPE_BUSINESS_RULE       metadata, business_rule
//   APPROVAL_STATUS_PENDING, LANE_GOVERNED                pending, governed
//   PRIORITY_HIGH, PROFILE_REASON_QUALITY_DROP, ...       high, quality_drop, ... (the name without the enum's
//                                                          prefix, lower case)
//
// Output is always the enum name. Input accepts both: envelopes and requests as JSON
// (contracts::FromJson), JSONPath filters (WidenEnumComparisons), sluicectl flags. The
// short spelling is matched case-insensitively (HIGH, high), except inside a JSONPath
// where it is matched exactly as the database stores it. UNSPECIFIED has no short
// spelling. The database spellings are governance.h's; a test keeps the two in step.

#include <absl/status/statusor.h>
#include <google/protobuf/descriptor.h>

#include <string>
#include <string_view>

namespace sluice::contracts {

// The short spelling of `value` ("" for the UNSPECIFIED value, number 0).
std::string ShortSpelling(const google::protobuf::EnumValueDescriptor& value);

// The value of `type` spelled either way; nullptr when `text` is neither.
const google::protobuf::EnumValueDescriptor* FindEnumValue(const google::protobuf::EnumDescriptor& type,
                                                           std::string_view text);

// `json`, an object of message `type`, with the short spelling of every enum-typed field
// (at any depth, repeated included) replaced by the enum name. InvalidArgument when `json`
// is not JSON, or holds an integer beyond 2^53 (it would not survive being re-encoded);
// fields and values it does not recognize are left for the parser to judge.
absl::StatusOr<std::string> NormalizeEnumSpellings(std::string_view json, const google::protobuf::Descriptor& type);

// A SQL/JSON path in which every comparison `X == "s"`, where `s` is the short spelling
// of some closed-set value of the event payloads, becomes `(X == "s" || X == "NAME")`
// (NAME: every enum name spelled `s`), and `X != "s"` (or `<>`) becomes
// `(X != "s" && X != "NAME")`, so a filter written from the database or the reference
// (`$.tier ? (@ == "tier1")`) means the same on the JSON as stored. Only a plain path as X
// (`@`, `$`, keys, [n], [*]) that is not itself an operand of arithmetic is rewritten;
// anything else (the reversed form `"s" == X` included) is left as written.
std::string WidenEnumComparisons(std::string_view path);

}  // namespace sluice::contracts
