#pragma once

#include <absl/status/statusor.h>
#include <grpcpp/server_context.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/sha256.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::gateway {

// Moved to common/sha256.h; the alias keeps existing gateway::Sha256Hex callers building.
using common::Sha256Hex;

// Bearer tokens of the gateway, from a sluice.v1.TokenFile (text format). Only token
// hashes are held. Thread-safe: Authenticate reads an immutable table that Reload swaps
// atomically for a new one, so calls in flight keep the table (and the principal) they
// authenticated with until they drop the returned pointer.
class TokenStore {
 public:
  // InvalidArgument naming the principal when an entry is malformed (bad hash, no
  // tenants, duplicate hash, a name used twice: names identify requesters of approvals).
  static absl::StatusOr<TokenStore> Parse(std::string_view textproto);
  // A store that remembers `path`, so Reload can read it again.
  static absl::StatusOr<TokenStore> FromFile(const std::string& path);

  // Moves are for setting up (returning from Parse, handing to the gateway); not while
  // other threads use either store.
  TokenStore(TokenStore&& o) noexcept : path_(std::move(o.path_)), table_(o.table_.load()) {}
  TokenStore& operator=(TokenStore&& o) noexcept;

  // The principal shares ownership of the table it came from: it stays valid while the
  // caller holds it, across any Reload.
  using PrincipalPtr = std::shared_ptr<const v1::Principal>;
  // The principal of an "authorization" metadata value ("Bearer <token>");
  // Unauthenticated when missing, malformed or unknown.
  absl::StatusOr<PrincipalPtr> Authenticate(std::string_view authorization) const;
  // The principal of a gRPC call, from its "authorization" metadata. Every RPC starts here.
  absl::StatusOr<PrincipalPtr> Authenticate(const grpc::ServerContextBase& ctx) const;

  // Reads the file of FromFile again and puts its principals in force for calls that
  // authenticate from now on. A file that does not read, parse or validate changes
  // nothing: the error is returned and the old principals stay in force.
  // FailedPrecondition for a store made by Parse.
  absl::Status Reload();
  // Like Reload, from text already read (the caller compares file contents first).
  absl::Status ReloadFrom(std::string_view textproto);

  const std::string& path() const { return path_; }
  size_t size() const { return table_.load()->by_hash.size(); }

 private:
  struct Table {
    std::map<std::string, v1::Principal, std::less<>> by_hash;
  };
  TokenStore() = default;
  static absl::StatusOr<std::shared_ptr<const Table>> ParseTable(std::string_view textproto);

  std::string path_;
  std::atomic<std::shared_ptr<const Table>> table_;
};

// What a principal may do is decided in one place: contracts::Authorizer (contracts/authz.h).

}  // namespace sluice::gateway
