#include "gateway/auth.h"

#include <google/protobuf/text_format.h>

#include <algorithm>
#include <set>

#include "common/file.h"
#include "common/sha256.h"
#include "common/strings.h"

namespace sluice::gateway {

absl::StatusOr<std::shared_ptr<const TokenStore::Table>> TokenStore::ParseTable(std::string_view textproto) {
  v1::TokenFile file;
  if (!google::protobuf::TextFormat::ParseFromString(std::string(textproto), &file))
    return absl::InvalidArgumentError("token file: not a valid sluice.v1.TokenFile text proto");
  auto table = std::make_shared<Table>();
  std::set<std::string> names;
  for (int i = 0; i < file.principals_size(); ++i) {
    const auto& p = file.principals(i);
    std::string at = common::Cat("token file principals[", i, "] (", p.name(), ")");
    const std::string& h = p.token_sha256();
    if (h.size() != 64 ||
        !std::all_of(h.begin(), h.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
      return absl::InvalidArgumentError(common::Cat(at, ".token_sha256: must be 64 lower-case hex characters"));
    if (p.name().empty()) return absl::InvalidArgumentError(common::Cat(at, ".name: required"));
    if (p.tenants().empty()) return absl::InvalidArgumentError(common::Cat(at, ".tenants: at least one is required"));
    if (p.name().size() > 128) return absl::InvalidArgumentError(common::Cat(at, ".name: at most 128 characters"));
    if (!names.insert(p.name()).second)
      return absl::InvalidArgumentError(common::Cat(at, ".name: used by another principal (names must be unique)"));
    if (!table->by_hash.emplace(h, p).second)
      return absl::InvalidArgumentError(common::Cat(at, ".token_sha256: used by another principal"));
  }
  return table;
}

absl::StatusOr<TokenStore> TokenStore::Parse(std::string_view textproto) {
  auto table = ParseTable(textproto);
  if (!table.ok()) return table.status();
  TokenStore store;
  store.table_.store(*std::move(table));
  return store;
}

absl::StatusOr<TokenStore> TokenStore::FromFile(const std::string& path) {
  auto text = common::ReadFile(path);
  if (!text.ok()) return text.status();
  auto store = Parse(*text);
  if (!store.ok()) return absl::Status(store.status().code(), common::Cat(path, ": ", store.status().message()));
  store->path_ = path;
  return store;
}

TokenStore& TokenStore::operator=(TokenStore&& o) noexcept {
  path_ = std::move(o.path_);
  table_.store(o.table_.load());
  return *this;
}

absl::Status TokenStore::Reload() {
  if (path_.empty()) return absl::FailedPreconditionError("token store: not read from a file, nothing to reload");
  auto text = common::ReadFile(path_);
  if (!text.ok()) return text.status();
  return ReloadFrom(*text);
}

absl::Status TokenStore::ReloadFrom(std::string_view textproto) {
  auto table = ParseTable(textproto);
  if (!table.ok()) {
    if (path_.empty()) return table.status();
    return absl::Status(table.status().code(), common::Cat(path_, ": ", table.status().message()));
  }
  // The old table lives on while a call in flight holds one of its principals.
  table_.store(*std::move(table));
  return absl::OkStatus();
}

absl::StatusOr<TokenStore::PrincipalPtr> TokenStore::Authenticate(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.empty()) return absl::UnauthenticatedError("missing authorization metadata (Bearer token)");
  if (authorization.substr(0, kBearer.size()) != kBearer || authorization.size() == kBearer.size())
    return absl::UnauthenticatedError("authorization metadata must be \"Bearer <token>\"");
  std::shared_ptr<const Table> table = table_.load();  // one snapshot for the whole lookup
  auto it = table->by_hash.find(common::Sha256Hex(authorization.substr(kBearer.size())));
  if (it == table->by_hash.end()) return absl::UnauthenticatedError("unknown token");
  return PrincipalPtr(std::move(table), &it->second);  // aliasing: owns the table, points at the entry
}

absl::StatusOr<TokenStore::PrincipalPtr> TokenStore::Authenticate(const grpc::ServerContextBase& ctx) const {
  auto [b, e] = ctx.client_metadata().equal_range("authorization");
  if (b == e) return Authenticate(std::string_view());
  return Authenticate(std::string_view(b->second.data(), b->second.size()));
}

}  // namespace sluice::gateway
