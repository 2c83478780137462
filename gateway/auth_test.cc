#include "gateway/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::gateway {
namespace {

using ::testing::HasSubstr;

TokenStore Store() {
  auto s = TokenStore::Parse(R"pb(
                               principals { name: "etl" token_sha256: ")pb" +
                             Sha256Hex("etl-secret") + R"pb(" tenants: " tenant - a " sources: " etl.pipeline " }
                                                            principals { name: "admin" token_sha256: ")pb" +
                             Sha256Hex("admin-secret") + R"pb(" tenants: " * " roles: " metadata_steward " }
  )pb");
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

TEST(Sha256Hex, KnownValue) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TokenStore, AuthenticatesBearerTokensByHash) {
  TokenStore s = Store();
  auto p = s.Authenticate("Bearer etl-secret");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->name(), "etl");
  for (const char* bad : {"", "etl-secret", "Bearer ", "Basic etl-secret", "Bearer nope"})
    EXPECT_EQ(s.Authenticate(bad).status().code(), absl::StatusCode::kUnauthenticated) << bad;
}

TEST(TokenStore, RejectsMalformedFilesNamingThePrincipal) {
  EXPECT_THAT(
      std::string(
          TokenStore::Parse(R"pb(principals { name: "x" token_sha256: "abc" tenants: "t" })pb").status().message()),
      HasSubstr("principals[0] (x).token_sha256"));
  EXPECT_THAT(
      std::string(
          TokenStore::Parse("principals { name: \"y\" token_sha256: \"" + Sha256Hex("k") + "\" }").status().message()),
      HasSubstr("(y).tenants"));
  std::string dup = "principals { name: \"a\" token_sha256: \"" + Sha256Hex("k") + "\" tenants: \"t\" }";
  EXPECT_THAT(std::string(TokenStore::Parse(dup + dup).status().message()), HasSubstr("used by another principal"));
  EXPECT_FALSE(TokenStore::Parse("principals {").ok());
}

TEST(TokenStore, PrincipalNamesAreUnique) {
  // Names identify requesters: two tokens under one name could decide each other's approvals.
  std::string a = "principals { name: \"ops\" token_sha256: \"" + Sha256Hex("k1") + "\" tenants: \"t\" }";
  std::string b = "principals { name: \"ops\" token_sha256: \"" + Sha256Hex("k2") +
                  "\" tenants: \"t\" roles: \"metadata_steward\" }";
  auto s = TokenStore::Parse(a + b);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("principals[1] (ops).name: used by another principal"));
}

}  // namespace
}  // namespace sluice::gateway
