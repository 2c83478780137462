#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gateway/server.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "kafka/consumer.h"
#include "sluice/v1/gateway.grpc.pb.h"
#include "tests/kafka_fixture.h"

namespace sluice::testing {

// Every field a google.rpc.BadRequest in the status details names, in order.
inline std::vector<std::string> ViolationFields(const grpc::Status& s) {
  google::rpc::Status rich;
  google::rpc::BadRequest bad;
  std::vector<std::string> fields;
  if (!rich.ParseFromString(s.error_details()) || rich.details_size() == 0 || !rich.details(0).UnpackTo(&bad))
    return fields;
  for (const auto& v : bad.field_violations()) fields.push_back(v.field());
  return fields;
}

// The first field a google.rpc.BadRequest in the status details names, or "".
inline std::string ViolationField(const grpc::Status& s) {
  auto fields = ViolationFields(s);
  return fields.empty() ? "" : fields.front();
}

inline constexpr char kTokenA[] = "token-tenant-a";
inline constexpr char kTokenB[] = "token-tenant-b";
inline constexpr char kTokenEtl[] = "token-etl";
inline constexpr char kTokenSteward[] = "token-steward";
inline constexpr char kTokenOps[] = "token-ops";

// A gateway in this process, on a free loopback port, over the test's own topics.
// Tokens: kTokenA (tenant-acme, any source, role trigger_admin), kTokenB (tenant-b), kTokenEtl (tenant-acme,
// source etl.pipeline only), kTokenSteward (tenant-acme, roles metadata_steward and
// kpi_owner), kTokenOps (every tenant, role operator). finance.service is limited to 3 events per minute.
class GatewayTest : public KafkaTest {
 protected:
  void SetUp() override {
    KafkaTest::SetUp();
    if (HasFatalFailure()) return;
    gateway_ = StartGateway(bootstrap_, config_overrides_);
    ASSERT_NE(gateway_, nullptr);
    channel_ = grpc::CreateChannel(common::Cat("127.0.0.1:", gateway_->port()), grpc::InsecureChannelCredentials());
    events_ = v1::EventGateway::NewStub(channel_);
    refresh_ = v1::DataRefreshService::NewStub(channel_);
  }
  void TearDown() override {
    events_.reset();
    refresh_.reset();
    gateway_.reset();
    KafkaTest::TearDown();
  }

  std::unique_ptr<gateway::Gateway> StartGateway(const std::string& bootstrap,
                                                 const std::function<void(gateway::GatewayConfig&)>& tweak) {
    auto tokens = gateway::TokenStore::Parse(common::Cat(
        "principals { name: \"a\" token_sha256: \"", gateway::Sha256Hex(kTokenA),
        "\" tenants: \"tenant-acme\" roles: \"trigger_admin\" }\n", "principals { name: \"b\" token_sha256: \"",
        gateway::Sha256Hex(kTokenB), "\" tenants: \"tenant-b\" }\n", "principals { name: \"etl\" token_sha256: \"",
        gateway::Sha256Hex(kTokenEtl), "\" tenants: \"tenant-acme\" sources: \"etl.pipeline\" }\n",
        "principals { name: \"steward\" token_sha256: \"", gateway::Sha256Hex(kTokenSteward),
        "\" tenants: \"tenant-acme\" roles: \"metadata_steward\" roles: \"kpi_owner\" }\n",
        "principals { name: \"ops\" token_sha256: \"", gateway::Sha256Hex(kTokenOps),
        "\" tenants: \"*\" roles: \"operator\" }\n"));
    EXPECT_TRUE(tokens.ok()) << tokens.status();
    auto limits = gateway::RateLimiter::FromJson(
        R"([{"source":"finance.service","limit":3,"intervalMs":60000,"pauseMs":60000}])");
    EXPECT_TRUE(limits.ok());
    gateway::GatewayConfig c{.listen = "127.0.0.1:0", .bootstrap_servers = bootstrap};
    if (tweak) tweak(c);
    auto gw = gateway::Gateway::Start(c, *std::move(tokens), *std::move(limits), *catalog_, registry_);
    EXPECT_TRUE(gw.ok()) << gw.status();
    return gw.ok() ? *std::move(gw) : nullptr;
  }

  static std::unique_ptr<grpc::ClientContext> Ctx(const char* token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (token != nullptr) ctx->AddMetadata("authorization", common::Cat("Bearer ", token));
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return ctx;
  }

  // Every record on `topic`, read by a fresh consumer group until `want` arrived
  // (then a short quiet period to catch extras) or the timeout.
  std::vector<kafka::Record> ReadTopic(const std::string& topic, size_t want,
                                       absl::Duration timeout = absl::Seconds(60)) {
    auto c = kafka::Consumer::Create({.bootstrap_servers = bootstrap_,
                                      .group_id = Group(common::Cat("reader-", readers_++)),
                                      .topics = {topic},
                                      .max_batch = 5000});
    EXPECT_TRUE(c.ok()) << c.status();
    std::vector<kafka::Record> got;
    if (!c.ok()) return got;
    absl::Time deadline = absl::Now() + timeout;
    absl::Time quiet_until = absl::InfiniteFuture();
    while (absl::Now() < deadline && absl::Now() < quiet_until) {
      auto n = (*c)->PollOnce([&](const std::vector<kafka::Record>& batch) {
        got.insert(got.end(), batch.begin(), batch.end());
        return absl::OkStatus();
      });
      EXPECT_TRUE(n.ok()) << n.status();
      if (got.size() >= want && quiet_until == absl::InfiniteFuture()) quiet_until = absl::Now() + absl::Seconds(2);
    }
    return got;
  }

  std::function<void(gateway::GatewayConfig&)> config_overrides_;
  prometheus::Registry registry_;
  std::unique_ptr<gateway::Gateway> gateway_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EventGateway::Stub> events_;
  std::unique_ptr<v1::DataRefreshService::Stub> refresh_;
  int readers_ = 0;
};

}  // namespace sluice::testing
