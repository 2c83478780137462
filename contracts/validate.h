#pragma once

#include <absl/status/status.h>
#include <absl/time/time.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "contracts/catalog.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::contracts {

// The bounds Validate enforces (see the comment on Validate for what each covers).
inline constexpr size_t kMaxPayloadBytes = 256 * 1024;
inline constexpr size_t kMaxMetadataBytes = 2 * 1024;
inline constexpr size_t kMaxMetadataEntries = 32;
inline constexpr size_t kMaxMetadataKeyBytes = 128;
inline constexpr size_t kMaxMetadataValueBytes = 1024;
inline constexpr size_t kMaxTenantIdLength = 64;
inline constexpr size_t kMaxTypeBytes = 64;
inline constexpr size_t kMaxSourceBytes = 64;
// correlation_id and causation_id each.
inline constexpr size_t kMaxCorrelationIdBytes = 128;
// Any string in a payload, Struct keys and string values included.
inline constexpr size_t kMaxPayloadStringBytes = 16 * 1024;
// Any repeated field in a payload, Struct fields and ListValue values included.
inline constexpr int kMaxRepeatedEntries = 1000;
// Struct and ListValue levels in a payload; the outermost Struct is level 1.
inline constexpr int kMaxStructDepth = 32;
// How far in the future a timestamp may lie (producer clock skew).
inline constexpr absl::Duration kMaxClockSkew = absl::Minutes(5);

// At most this many violations are reported for one envelope, and only as many as fit
// in kMaxViolationBytes of paths and messages, the joined message in a third of it: a
// gRPC answer carrying them stays well inside the 8 KiB of metadata clients accept.
inline constexpr size_t kMaxViolations = 20;
inline constexpr size_t kMaxViolationBytes = 3072;

// The one validation every entry point runs (gateway, producer, relay, CLI). Returns
// OK or InvalidArgument whose message starts with the offending field path, e.g.
// "profile_due.triggered_by.actor_id: required"; FieldPathOf() extracts the path.
// Every field is checked, so all that is wrong is reported at once (up to
// kMaxViolations and kMaxViolationBytes): the message then joins each "<path>: <what>"
// with "; " (ending "; and N more" for those that did not fit), FieldPathOf names the
// first and ViolationsOf lists them all. Inside one Struct, string or repeated entry only
// the first problem is reported.
//
// Every field is bounded, so an event that passes can be stored (PostgreSQL text takes
// no NUL), indexed (btree entries stay small) and deduplicated (one spelling per id):
// - id: a UUID in canonical lower-case form (FillDefaults lower-cases an upper-case
//   one; Validate rejects it).
// - type: at most 64 bytes and in the catalog; version: semver (at most 9 digits per
//   part) with the catalog's major.
// - tenant_id: 1-64 of [a-z0-9-] starting with a letter or digit.
// - source: at most 64 bytes and a catalog source.
// - occurred_at: set; ttl_ms >= 0; traceparent, when set, W3C version 00 form.
// - correlation_id, causation_id: optional, at most 128 bytes of printable ASCII
//   (0x21-0x7E: no space, no NUL, no control characters).
// - metadata: at most 32 entries; keys 1-128 bytes of [A-Za-z0-9._-]; values at most
//   1024 bytes of valid UTF-8 without control characters (0x00-0x1F, 0x7F); keys plus
//   values at most 2 KiB in total.
// - payload: its case matches the type; it encodes to at most 256 KiB; fields marked
//   (sluice.v1.required) are set, recursively; every string anywhere in it, including
//   google.protobuf.Struct keys and string values, is at most 16 KiB of valid UTF-8
//   without NUL; every repeated field (Struct fields and ListValue values included) has
//   at most 1,000 entries; Struct/ListValue nest at most 32 levels; bytes fields are
//   bounded by the payload total only; every timestamp lies between 2000-01-01 and
//   now + 5 minutes, and every duration lies between 0 and 10,000 years (protobuf's
//   Duration range, which its JSON mapping needs).
//
// Paths name fields as protobuf does, with repeated indexes in brackets
// ("profile_completed.changed_fields[3]"). Inside a Struct the path follows the
// Struct's own fields with each Value left out: a key is `.fields["key"]` and a list
// item `.values[2]`, e.g. `approval_created.payload.fields["x"].values[2].fields["y"]`.
// Keys are shown with '"', '\\', control bytes and bytes of invalid UTF-8 C-escaped,
// cut to 64 bytes with "..." after. A metadata value's path is `metadata["key"]`; an
// entry count, key or total problem is reported on `metadata`.
//
// Cost: one pass over the payload with per-type rules built once per process; no
// allocation unless a rule fails.
absl::Status Validate(const v1::Envelope& env, const Catalog& catalog = Catalog::Default(),
                      absl::Time now = absl::Now());

// The field path carried by a Validate error, or nullopt for other statuses.
std::optional<std::string> FieldPathOf(const absl::Status& status);

// One field that is wrong: its path and "<path>: <what>".
struct FieldViolation {
  std::string field;
  std::string description;
};

// Every violation a Validate error carries, in the order found; a status with only a
// field path (InvalidField) gives one, any other status none.
std::vector<FieldViolation> ViolationsOf(const absl::Status& status);

// InvalidArgument carrying `list` (non-empty) as ViolationsOf reads it back, the
// descriptions joined by "; " as the message: for rewording a Validate error (e.g. the
// request's field names for the event's), keeping every violation.
absl::Status InvalidFields(const std::vector<FieldViolation>& list);

// `status` with `path` attached as its field path (what FieldPathOf returns).
absl::Status WithFieldPath(absl::Status status, std::string_view path);
// InvalidArgument "<field>: <what>" carrying `field` as its field path: how every
// request check names the field that is wrong.
absl::Status InvalidField(std::string_view field, std::string_view what);

// True for a tenant id in the documented format.
bool IsValidTenantId(std::string_view tenant);

// True for a W3C traceparent "00-<32 hex>-<16 hex>-<2 hex>" with non-zero ids.
bool IsValidTraceparent(std::string_view tp);

}  // namespace sluice::contracts
