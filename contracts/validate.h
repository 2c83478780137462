#pragma once

#include <absl/status/status.h>
#include <absl/time/time.h>

#include <cstddef>
#include <optional>
#include <string>

#include "contracts/catalog.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::contracts {

inline constexpr size_t kMaxPayloadBytes = 256 * 1024;
inline constexpr size_t kMaxMetadataBytes = 2 * 1024;
inline constexpr size_t kMaxTenantIdLength = 64;
// How far in the future a timestamp may lie (producer clock skew).
inline constexpr absl::Duration kMaxClockSkew = absl::Minutes(5);

// The one validation every entry point runs (gateway, producer, relay, CLI). Returns
// OK or InvalidArgument whose message starts with the offending field path, e.g.
// "profile_due.triggered_by.actor_id: required"; FieldPathOf() extracts the path.
//
// Rules: id is a UUID; type is in the catalog; version is semver with the catalog's
// major; tenant_id is 1-64 of [a-z0-9-] starting with a letter or digit; source is a
// known source; occurred_at is set; the payload case matches the type; the payload
// encodes to at most 256 KiB; metadata keys are non-empty and keys plus values total
// at most 2 KiB; traceparent, when set, is W3C version 00 form; ttl_ms >= 0; payload
// fields marked (sluice.v1.required) are set, recursively; every timestamp lies
// between 2000-01-01 and now + 5 minutes, and every duration is non-negative.
absl::Status Validate(const v1::Envelope& env, const Catalog& catalog = Catalog::Default(),
                      absl::Time now = absl::Now());

// The field path carried by a Validate error, or nullopt for other statuses.
std::optional<std::string> FieldPathOf(const absl::Status& status);

// `status` with `path` attached as its field path (what FieldPathOf returns).
absl::Status WithFieldPath(absl::Status status, std::string_view path);

// True for a tenant id in the documented format.
bool IsValidTenantId(std::string_view tenant);

// True for a W3C traceparent "00-<32 hex>-<16 hex>-<2 hex>" with non-zero ids.
bool IsValidTraceparent(std::string_view tp);

}  // namespace sluice::contracts
