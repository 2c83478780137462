#pragma once

#include <absl/status/statusor.h>
#include <grpcpp/server_context.h>

#include <map>
#include <string>
#include <string_view>

#include "common/sha256.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::gateway {

// Moved to common/sha256.h; the alias keeps existing gateway::Sha256Hex callers building.
using common::Sha256Hex;

// Bearer tokens of the gateway, from a sluice.v1.TokenFile (text format). Only token
// hashes are held. Immutable after loading; thread-safe.
class TokenStore {
 public:
  // InvalidArgument naming the principal when an entry is malformed (bad hash, no
  // tenants, duplicate hash, a name used twice: names identify requesters of approvals).
  static absl::StatusOr<TokenStore> Parse(std::string_view textproto);
  static absl::StatusOr<TokenStore> FromFile(const std::string& path);

  // The principal of an "authorization" metadata value ("Bearer <token>");
  // Unauthenticated when missing, malformed or unknown.
  absl::StatusOr<const v1::Principal*> Authenticate(std::string_view authorization) const;
  // The principal of a gRPC call, from its "authorization" metadata. Every RPC starts here.
  absl::StatusOr<const v1::Principal*> Authenticate(const grpc::ServerContextBase& ctx) const;

  size_t size() const { return by_hash_.size(); }

 private:
  std::map<std::string, v1::Principal, std::less<>> by_hash_;
};

// What a principal may do is decided in one place: contracts::Authorizer (contracts/authz.h).

}  // namespace sluice::gateway
