// sluicectl token new: a bearer token and the token-file entry holding only its hash.
#include <google/protobuf/text_format.h>

#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/sha256.h"
#include "sluice/v1/config.pb.h"

namespace sluice::cli {
namespace {

struct TokenNewOptions {
  std::string name;
  std::vector<std::string> tenants, sources, roles;
};

// A new random token and the TokenFile entry holding its hash.
int TokenNew(const TokenNewOptions& o) {
  std::random_device rd;
  std::string token = "slc_";
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  for (int i = 0; i < 40; ++i) token.push_back(kAlphabet[rd() % (sizeof(kAlphabet) - 1)]);
  v1::Principal p;
  p.set_name(o.name);
  p.set_token_sha256(common::Sha256Hex(token));
  for (const auto& t : o.tenants) p.add_tenants(t);
  for (const auto& s : o.sources) p.add_sources(s);
  for (const auto& r : o.roles) p.add_roles(r);
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.PrintToString(p, &text);
  std::printf("token (give it to the caller; it is not stored): %s\n", token.c_str());
  std::printf("token file entry:\nprincipals { %s}\n", text.c_str());
  return 0;
}

}  // namespace

void AddTokenCommand(CLI::App& app, Globals& g) {
  auto o = std::make_shared<TokenNewOptions>();
  auto* token = app.add_subcommand("token", "Gateway bearer tokens");
  token->require_subcommand(1);
  auto* token_new = token->add_subcommand("new", "Make a random token and print its token-file entry (SHA-256 only)");
  token_new->add_option("--name", o->name, "Principal name (logs, metrics)")->required();
  token_new->add_option("--tenant", o->tenants, "Tenant it may publish for; '*' = all (repeatable)")->required();
  token_new->add_option("--source", o->sources, "Source it may publish as (repeatable; none = any)");
  token_new->add_option("--role", o->roles, "Role it holds (repeatable)");
  OnRun(token_new, g, [o] { return TokenNew(*o); });
}

}  // namespace sluice::cli
