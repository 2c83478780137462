#pragma once

#include <absl/status/statusor.h>

#include <map>
#include <string>
#include <string_view>

#include "sluice/v1/config.pb.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::gateway {

// SHA-256 of `data` as lower-case hex.
std::string Sha256Hex(std::string_view data);

// Bearer tokens of the gateway, from a sluice.v1.TokenFile (text format). Only token
// hashes are held. Immutable after loading; thread-safe.
class TokenStore {
 public:
  // InvalidArgument naming the principal when an entry is malformed (bad hash, no
  // tenants, duplicate hash).
  static absl::StatusOr<TokenStore> Parse(std::string_view textproto);
  static absl::StatusOr<TokenStore> FromFile(const std::string& path);

  // The principal of an "authorization" metadata value ("Bearer <token>");
  // Unauthenticated when missing, malformed or unknown.
  absl::StatusOr<const v1::Principal*> Authenticate(std::string_view authorization) const;

  size_t size() const { return by_hash_.size(); }

 private:
  std::map<std::string, v1::Principal, std::less<>> by_hash_;
};

// True when `who` may act for `tenant` (one of its tenants, or "*").
bool TenantAllowed(const v1::Principal& who, std::string_view tenant);

// PermissionDenied unless `who` may publish `envelope`: its tenant must be one of the
// principal's tenants (or "*"), and its source one of the principal's sources (when any
// are listed).
absl::Status Authorize(const v1::Principal& who, const v1::Envelope& envelope);

}  // namespace sluice::gateway
