#include "gateway/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

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

// A token file on disk, replaced the way Kubernetes replaces a Secret's file: written
// next to it, then renamed over it.
class TokenFile {
 public:
  TokenFile() : path_(::testing::TempDir() + "tokens-" + std::to_string(::getpid()) + "-" + Unique() + ".textproto") {}
  ~TokenFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }
  void Write(const std::string& text) const {
    const std::string tmp = path_ + ".tmp";
    std::ofstream(tmp) << text;
    ASSERT_EQ(std::rename(tmp.c_str(), path_.c_str()), 0);
  }

 private:
  static std::string Unique() {
    static int n = 0;
    return std::to_string(++n);
  }
  std::string path_;
};

std::string Entry(const std::string& name, const std::string& token) {
  return "principals { name: \"" + name + "\" token_sha256: \"" + Sha256Hex(token) + "\" tenants: \"t\" }\n";
}

TEST(TokenStore, ReloadPutsANewFileInForce) {
  TokenFile f;
  f.Write(Entry("old", "old-secret") + Entry("kept", "kept-secret"));
  auto s = TokenStore::FromFile(f.path());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->Authenticate("Bearer old-secret").ok());

  f.Write(Entry("new", "new-secret") + Entry("kept", "kept-secret"));
  ASSERT_TRUE(s->Reload().ok());
  EXPECT_EQ(s->size(), 2u);
  auto added = s->Authenticate("Bearer new-secret");
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ((*added)->name(), "new");
  EXPECT_TRUE(s->Authenticate("Bearer kept-secret").ok());
  EXPECT_EQ(s->Authenticate("Bearer old-secret").status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(TokenStore, ABadFileIsRefusedAndTheOldPrincipalsStayInForce) {
  TokenFile f;
  f.Write(Entry("etl", "etl-secret"));
  auto s = TokenStore::FromFile(f.path());
  ASSERT_TRUE(s.ok()) << s.status();
  for (const std::string& bad : {std::string("principals {"),                                // does not parse
                                 Entry("etl", "etl-secret") + Entry("etl", "other-secret"),  // does not validate
                                 std::string("principals { name: \"x\" token_sha256: \"abc\" tenants: \"t\" }")}) {
    f.Write(bad);
    absl::Status st = s->Reload();
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_THAT(std::string(st.message()), HasSubstr(f.path()));
    EXPECT_EQ(s->size(), 1u);
    auto p = s->Authenticate("Bearer etl-secret");
    ASSERT_TRUE(p.ok()) << bad;
    EXPECT_EQ((*p)->name(), "etl");
    EXPECT_FALSE(s->Authenticate("Bearer other-secret").ok());
  }
  std::remove(f.path().c_str());  // a file gone is refused too
  EXPECT_FALSE(s->Reload().ok());
  EXPECT_TRUE(s->Authenticate("Bearer etl-secret").ok());
}

TEST(TokenStore, APrincipalHeldByACallOutlivesTheTableItCameFrom) {
  TokenFile f;
  f.Write(Entry("etl", "etl-secret"));
  auto s = TokenStore::FromFile(f.path());
  ASSERT_TRUE(s.ok()) << s.status();
  auto held = s->Authenticate("Bearer etl-secret");  // what an RPC in flight holds
  ASSERT_TRUE(held.ok());
  // Two swaps: the table `held` came from is no longer the store's.
  f.Write(Entry("other", "other-secret"));
  ASSERT_TRUE(s->Reload().ok());
  f.Write(Entry("third", "third-secret"));
  ASSERT_TRUE(s->Reload().ok());
  // Still the same principal, readable (AddressSanitizer builds would catch a freed one).
  EXPECT_EQ((*held)->name(), "etl");
  EXPECT_EQ((*held)->tenants(0), "t");
  EXPECT_FALSE(s->Authenticate("Bearer etl-secret").ok());
}

TEST(TokenStore, AStoreParsedFromTextHasNothingToReload) {
  TokenStore s = Store();
  EXPECT_EQ(s.Reload().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TokenStore, AuthenticateAndReloadRunConcurrently) {
  TokenFile f;
  f.Write(Entry("etl", "etl-secret"));
  auto s = TokenStore::FromFile(f.path());
  ASSERT_TRUE(s.ok()) << s.status();
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i)
    readers.emplace_back([&] {
      while (!done.load()) {
        auto p = s->Authenticate("Bearer etl-secret");  // in every table written below
        if (!p.ok() || (*p)->name() != "etl") ++failures;
      }
    });
  for (int i = 0; i < 200; ++i)
    ASSERT_TRUE(
        s->ReloadFrom(Entry("etl", "etl-secret") + Entry("n" + std::to_string(i), "k" + std::to_string(i))).ok());
  done.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace sluice::gateway
