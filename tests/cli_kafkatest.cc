// The sluicectl binary against an in-process gateway and the real broker.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "contracts/envelope.h"
#include "tests/gateway_fixture.h"

namespace sluice {
namespace {

struct CliRun {
  int exit_code;
  std::string out;
};

CliRun Sluicectl(const std::string& args) {
  std::string cmd = common::Cat(SLUICECTL, " ", args, " 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  CliRun r{-1, ""};
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class Cli : public testing::GatewayTest {};

TEST_F(Cli, PublishThroughTheGatewayAndTailFromKafka) {
  const std::string file = common::Cat(::testing::TempDir(), prefix_, "events.jsonl");
  std::vector<std::string> ids;
  {
    std::ofstream out(file);
    for (int i = 0; i < 3; ++i) {
      ids.push_back(contracts::NewUuidV7());
      out << R"({"id":")" << ids.back()
          << R"(","tenantId":"tenant-acme","source":"etl.pipeline","dataRefreshed":{"entityUrn":"sales.t)" << i
          << R"(","service":{"schema":"public","table":"t"},"refreshType":"REFRESH_TYPE_FULL",)"
          << R"("completedAt":"2026-01-01T00:00:00Z","triggeredBy":{"actorId":"etl","actorType":"ACTOR_TYPE_SYSTEM"}}})"
          << "\n";
    }
    out << R"({"tenantId":"tenant-acme","source":"etl.pipeline","dataRefreshed":{}})"
        << "\n";
  }
  const std::string gw = common::Cat("--gateway 127.0.0.1:", gateway_->port());
  CliRun pub = Sluicectl(common::Cat("publish ", gw, " --token ", testing::kTokenA, " ", file));
  EXPECT_EQ(pub.exit_code, 1) << pub.out;  // one of four is invalid
  for (const auto& id : ids) EXPECT_THAT(pub.out, ::testing::HasSubstr("ok " + id)) << pub.out;
  EXPECT_THAT(pub.out, ::testing::HasSubstr("error #4 3 data_refreshed.entity_urn: required"));

  CliRun denied = Sluicectl(common::Cat("publish ", gw, " --token ", testing::kTokenB, " ", file));
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_THAT(denied.out, ::testing::HasSubstr("tenant_id: b may not act for tenant \"tenant-acme\""));

  CliRun tail = Sluicectl(common::Cat("--bootstrap ", bootstrap_, " --topic-prefix ", prefix_,
                                      " tail --type data.refreshed --from-beginning --max 3"));
  EXPECT_EQ(tail.exit_code, 0) << tail.out;
  for (const auto& id : ids) EXPECT_THAT(tail.out, ::testing::HasSubstr(R"("id":")" + id + "\"")) << tail.out;
  std::remove(file.c_str());
}

TEST_F(Cli, TokenNewPrintsAnEntryTheGatewayAccepts) {
  CliRun r = Sluicectl("token new --name etl --tenant tenant-acme --source etl.pipeline");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto tok_at = r.out.find("slc_");
  ASSERT_NE(tok_at, std::string::npos);
  std::string token = r.out.substr(tok_at, r.out.find('\n', tok_at) - tok_at);
  auto entry_at = r.out.find("principals {");
  ASSERT_NE(entry_at, std::string::npos);
  auto store = gateway::TokenStore::Parse(r.out.substr(entry_at));
  ASSERT_TRUE(store.ok()) << store.status();
  auto who = store->Authenticate("Bearer " + token);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ((*who)->name(), "etl");
  EXPECT_EQ((*who)->sources(0), "etl.pipeline");
}

}  // namespace
}  // namespace sluice
