// Two sluice-gateway processes behind one Service, as the prod HPA runs them: with
// PostgreSQL (--pg-dsn) a source's rate limit is the cluster's, so the two together accept
// `limit` events per window, not 2 x limit, and both report the pause; without it each
// replica counts on its own (the old behaviour, unchanged).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/env.h"
#include "common/file.h"
#include "contracts/test_util.h"
#include "sluice/v1/event_query.grpc.pb.h"
#include "tests/gateway_fixture.h"
#include "tests/pg_schema.h"
#include "tests/subprocess.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using common::Cat;

constexpr char kToken[] = "token-acme";
constexpr int kLimit = 20;
// 20 events per minute, then a minute's pause: the test runs well inside one window.
constexpr char kLimits[] = R"([{"source":"etl.pipeline","limit":20,"intervalMs":60000,"pauseMs":60000}])";

class GatewayReplicas : public testing::KafkaTest {
 protected:
  struct Replica {
    pid_t pid = -1;
    std::string name, log;
    std::unique_ptr<v1::EventGateway::Stub> events;
    std::unique_ptr<v1::EventQueryService::Stub> query;
  };

  void SetUp() override {
    KafkaTest::SetUp();
    if (HasFatalFailure()) return;
    dir_ = fs::temp_directory_path() / Cat("sluice-replicas-", std::random_device{}());
    fs::create_directories(dir_);
    tokens_ = (dir_ / "tokens.textproto").string();
    std::ofstream(tokens_) << Cat("principals { name: \"acme\" token_sha256: \"", gateway::Sha256Hex(kToken),
                                  "\" tenants: \"tenant-acme\" }\n");
    auto c = testing::MigratedSchema("it_replicas_", schema_);
    ASSERT_TRUE(c.ok()) << c.status();
    pg_ = std::make_unique<common::PgConnection>(*std::move(c));
  }
  void TearDown() override {
    for (auto& r : replicas_) {
      if (r.pid <= 0) continue;
      kill(r.pid, SIGKILL);
      waitpid(r.pid, nullptr, 0);
    }
    if (pg_) {
      EXPECT_TRUE(testing::DropSchema(*pg_, schema_).ok());
    }
    fs::remove_all(dir_);
    KafkaTest::TearDown();
  }

  // Starts a sluice-gateway named `name` with the shared token file and limits, on the
  // test's schema when `with_pg`.
  void StartReplica(const std::string& name, bool with_pg) {
    Replica r;
    r.name = name;
    r.log = (dir_ / (name + ".log")).string();
    std::vector<std::string> args{"--listen",
                                  "127.0.0.1:0",
                                  "--tokens",
                                  tokens_,
                                  "--bootstrap",
                                  bootstrap_,
                                  "--topic-prefix",
                                  prefix_,
                                  "--metrics-listen",
                                  "",
                                  "--rate-limits",
                                  kLimits,
                                  "--replica-name",
                                  name,
                                  "--health-interval-s",
                                  "0",
                                  "--reload-interval-s",
                                  "0"};
    // Without PostgreSQL says so explicitly: an empty --pg-dsn, or the gateway would take
    // SLUICE_PG_DSN from the environment (dev/env.sh exports it) and share the limit anyway.
    for (const std::string& a : {std::string("--pg-dsn"), with_pg ? common::DefaultPgDsn() : std::string(),
                                 std::string("--pg-schema"), with_pg ? schema_ : std::string()})
      args.push_back(a);
    r.pid = testing::Spawn(SLUICE_GATEWAY_BIN, args, r.log);
    ASSERT_GT(r.pid, 0);
    int port = 0;
    for (int i = 0; i < 300 && port == 0; ++i) {
      absl::SleepFor(absl::Milliseconds(100));
      auto text = common::ReadFile(r.log);
      auto at = text.ok() ? text->find("listening on port ") : std::string::npos;
      if (at != std::string::npos) port = std::atoi(text->c_str() + at + 18);
    }
    ASSERT_GT(port, 0) << common::ReadFile(r.log).value_or("");
    auto channel = grpc::CreateChannel(Cat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    r.events = v1::EventGateway::NewStub(channel);
    r.query = v1::EventQueryService::NewStub(channel);
    replicas_.push_back(std::move(r));
  }

  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", Cat("Bearer ", kToken));
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return ctx;
  }
  // A new etl.pipeline event of tenant-acme (a new id each time: not a duplicate).
  static grpc::Status Publish(Replica& r) {
    v1::PublishRequest req;
    *req.mutable_envelope() = contracts::testing::Golden("data.refreshed");
    req.mutable_envelope()->clear_id();
    v1::PublishResponse resp;
    return r.events->Publish(Ctx().get(), req, &resp);
  }
  // Publishes through the replicas in turn, 3 x kLimit events; returns how many were
  // accepted before the first refusal and checks every event after it is refused.
  int AcceptedBeforeRefusal(int total) {
    int accepted = 0;
    bool refused = false;
    for (int i = 0; i < total; ++i) {
      grpc::Status s = Publish(replicas_[i % replicas_.size()]);
      if (s.ok()) {
        EXPECT_FALSE(refused) << "event " << i << " accepted after a refusal";
        if (!refused) ++accepted;
      } else {
        EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED) << i << ": " << s.error_message();
        refused = true;
      }
    }
    return accepted;
  }
  v1::GetEventHealthResponse Health(Replica& r) {
    v1::GetEventHealthResponse resp;
    grpc::Status s = r.query->GetEventHealth(Ctx().get(), v1::GetEventHealthRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  static const v1::SourceActivity* Etl(const v1::GetEventHealthResponse& h) {
    for (const auto& s : h.sources())
      if (s.tenant_id() == "tenant-acme" && s.source() == "etl.pipeline") return &s;
    return nullptr;
  }

  fs::path dir_;
  std::string tokens_, schema_;
  std::unique_ptr<common::PgConnection> pg_;
  std::vector<Replica> replicas_;
};

TEST_F(GatewayReplicas, WithPostgresTheLimitIsTheClustersAndBothReplicasReportThePause) {
  ASSERT_NO_FATAL_FAILURE(StartReplica("gw-1", true));
  ASSERT_NO_FATAL_FAILURE(StartReplica("gw-2", true));
  // Per-replica limiters would accept 2 x 20 here (20 on each).
  EXPECT_EQ(AcceptedBeforeRefusal(3 * kLimit), kLimit);
  // The refusal names the pause, on either replica.
  for (auto& r : replicas_) {
    grpc::Status s = Publish(r);
    EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED);
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("paused by its rate limit until")) << r.name;
  }
  int64_t published = 0;
  for (auto& r : replicas_) {
    v1::GetEventHealthResponse h = Health(r);
    EXPECT_EQ(h.replica(), r.name);
    const v1::SourceActivity* etl = Etl(h);
    ASSERT_NE(etl, nullptr) << r.name << ": " << h.DebugString();
    EXPECT_TRUE(etl->has_paused_until()) << r.name << ": " << h.DebugString();  // the cluster's pause
    published += etl->published_total();                                        // each replica's own count
  }
  EXPECT_EQ(published, kLimit);
  // The shared state is the table's.
  auto row = pg_->Exec(
      "SELECT paused_until > now() FROM gateway_rate_window WHERE tenant_id = 'tenant-acme' AND source = "
      "'etl.pipeline'");
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_EQ(row->rows(), 1);
  EXPECT_EQ(row->Get(0, 0), "t");
}

TEST_F(GatewayReplicas, WithoutPostgresEachReplicaCountsOnItsOwn) {
  ASSERT_NO_FATAL_FAILURE(StartReplica("gw-1", false));
  ASSERT_NO_FATAL_FAILURE(StartReplica("gw-2", false));
  int accepted[2] = {0, 0};
  for (int i = 0; i < 3 * kLimit; ++i)
    if (Publish(replicas_[i % 2]).ok()) ++accepted[i % 2];
  EXPECT_EQ(accepted[0], kLimit);
  EXPECT_EQ(accepted[1], kLimit);
  for (auto& r : replicas_) {
    v1::GetEventHealthResponse h = Health(r);
    EXPECT_EQ(h.replica(), r.name);
    const v1::SourceActivity* etl = Etl(h);
    ASSERT_NE(etl, nullptr);
    EXPECT_TRUE(etl->has_paused_until());
    EXPECT_EQ(etl->published_total(), kLimit);
  }
}

}  // namespace
}  // namespace sluice
