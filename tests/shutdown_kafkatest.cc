// Graceful shutdown under load, with the real binaries: SIGTERM while events flow, then
// check that nothing was lost or duplicated. sluice-gateway answers every call it took;
// sluice-audit stops with exactly what it stored committed; sluice-relay marks sent
// exactly what it published.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "common/pg.h"
#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "gateway/auth.h"
#include "kafka/producer.h"
#include "kafka/reader.h"
#include "outbox/outbox.h"
#include "sluice/v1/gateway.grpc.pb.h"
#include "tests/kafka_fixture.h"
#include "tests/pg_schema.h"
#include "tests/subprocess.h"

namespace sluice {
namespace {

using common::Cat;

class ShutdownTest : public testing::KafkaTest {
 protected:
  void SetUp() override {
    KafkaTest::SetUp();
    if (HasFatalFailure()) return;
    auto c = testing::MigratedSchema("it_shutdown_", schema_);
    ASSERT_TRUE(c.ok()) << c.status();
    conn_.emplace(*std::move(c));
    dir_ = Cat(::testing::TempDir(), "/", schema_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    for (pid_t p : pids_) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
    if (conn_) {
      EXPECT_TRUE(testing::DropSchema(*conn_, schema_).ok());
    }
    KafkaTest::TearDown();
  }

  pid_t Start(const char* binary, const std::vector<std::string>& args, const std::string& log) {
    pid_t pid = testing::Spawn(binary, args, Cat(dir_, "/", log));
    pids_.push_back(pid);
    return pid;
  }
  // SIGTERM, then the exit status and how long the process took to exit.
  std::pair<int, absl::Duration> Terminate(pid_t pid) {
    const absl::Time t = absl::Now();
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    std::erase(pids_, pid);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), absl::Now() - t};
  }
  std::string Log(const std::string& name) {
    std::ifstream in(Cat(dir_, "/", name));
    return {std::istreambuf_iterator<char>(in), {}};
  }
  int64_t Count(const std::string& sql) { return std::stoll(std::string(conn_->Exec(sql)->Get(0, 0))); }

  // How many records each event id has in `topics`.
  std::map<std::string, int> InKafka(const std::vector<std::string>& topics) {
    std::map<std::string, int> out;
    auto r = kafka::TopicReader::OpenRange({.bootstrap_servers = bootstrap_}, topics, {});
    EXPECT_TRUE(r.ok()) << r.status();
    while (r.ok() && !(*r)->done()) {
      auto batch = (*r)->Next(5000, absl::Seconds(1));
      EXPECT_TRUE(batch.ok()) << batch.status();
      if (!batch.ok()) break;
      for (const auto& rec : *batch) ++out[rec.envelope.id()];
    }
    return out;
  }
  // Sum of the committed offsets of `group` over `topics` (records it has acknowledged).
  int64_t Committed(const std::string& group, const std::vector<std::string>& topics) {
    auto conf = kafka::MakeConf({{"bootstrap.servers", bootstrap_}, {"group.id", group}});
    EXPECT_TRUE(conf.ok());
    char err[256];
    kafka::KafkaHandle rk(rd_kafka_new(RD_KAFKA_CONSUMER, conf->release(), err, sizeof(err)));
    kafka::PartitionListHandle list(rd_kafka_topic_partition_list_new(64));
    for (const auto& t : topics)
      for (int p = 0; p < catalog_->topics().front().partitions(); ++p)
        rd_kafka_topic_partition_list_add(list.get(), t.c_str(), p);
    EXPECT_EQ(rd_kafka_committed(rk.get(), list.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t sum = 0;
    for (int i = 0; i < list->cnt; ++i) sum += std::max<int64_t>(0, list->elems[i].offset);
    return sum;
  }
  std::vector<std::string> AllTopics() const {
    std::vector<std::string> t;
    for (const auto& topic : catalog_->topics()) t.push_back(topic.name());
    return t;
  }

  std::string schema_, dir_;
  std::optional<common::PgConnection> conn_;
  std::vector<pid_t> pids_;
};

TEST_F(ShutdownTest, GatewayAnswersEveryCallItTookAndPublishesNothingElse) {
  const std::string token = "load-token";
  {
    std::ofstream f(Cat(dir_, "/tokens.textproto"));
    f << "principals { name: \"load\" token_sha256: \"" << gateway::Sha256Hex(token) << "\" tenants: \"*\" }\n";
  }
  pid_t gw = Start(SLUICE_GATEWAY_BIN,
                   {"--listen", "127.0.0.1:0", "--tokens", Cat(dir_, "/tokens.textproto"), "--bootstrap", bootstrap_,
                    "--topic-prefix", prefix_, "--metrics-listen", "", "--shutdown-grace-s", "20"},
                   "gateway.log");
  int port = 0;
  for (int i = 0; i < 100 && port == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    const std::string log = Log("gateway.log");
    auto at = log.find("listening on port ");
    if (at != std::string::npos) port = std::atoi(log.c_str() + at + 18);
  }
  ASSERT_GT(port, 0) << Log("gateway.log");

  // Eight callers publish as fast as they can until the gateway stops answering.
  auto channel = grpc::CreateChannel(Cat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto stub = v1::EventGateway::NewStub(channel);
  std::mutex mu;
  std::set<std::string> acked, refused;
  std::atomic<int64_t> calls{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        v1::PublishRequest req;
        *req.mutable_envelope() = contracts::testing::Golden("data.refreshed");
        req.mutable_envelope()->set_id(contracts::NewUuidV7());
        req.mutable_envelope()->set_tenant_id(Cat("tenant-", t % 3));
        v1::PublishResponse resp;
        grpc::ClientContext ctx;
        ctx.AddMetadata("authorization", Cat("Bearer ", token));
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        grpc::Status s = stub->Publish(&ctx, req, &resp);
        ++calls;
        std::lock_guard lock(mu);
        if (s.ok()) {
          acked.insert(req.envelope().id());
        } else {
          refused.insert(req.envelope().id());
          // The gateway is going or gone: a call that reached it while it stopped is
          // cancelled unhandled. Either way the event must not be in Kafka (checked below).
          if (s.error_code() == grpc::StatusCode::UNAVAILABLE || s.error_code() == grpc::StatusCode::CANCELLED) return;
          ADD_FAILURE() << s.error_code() << " " << s.error_message();
          return;
        }
      }
    });
  }
  while (calls.load() < 2000) absl::SleepFor(absl::Milliseconds(10));
  auto [code, took] = Terminate(gw);
  for (auto& c : callers) c.join();
  EXPECT_EQ(code, 0) << Log("gateway.log");
  EXPECT_LT(took, absl::Seconds(20));
  EXPECT_GT(acked.size(), 2000u - 8);

  // Every answered event is in Kafka once; nothing the callers were refused is.
  auto kafka = InKafka({catalog_->Find("data.refreshed")->topic});
  size_t missing = 0, extra = 0;
  for (const auto& id : acked) {
    auto it = kafka.find(id);
    if (it == kafka.end())
      ++missing;
    else
      EXPECT_EQ(it->second, 1) << id << " stored twice";
  }
  for (const auto& [id, n] : kafka)
    if (!acked.contains(id)) ++extra;
  EXPECT_EQ(missing, 0u) << "acknowledged but not in Kafka";
  EXPECT_EQ(extra, 0u) << "in Kafka but the caller was not told (" << refused.size() << " refused)";
  std::printf("gateway: %zu acknowledged, %zu refused after SIGTERM, exit in %s\n", acked.size(), refused.size(),
              absl::FormatDuration(took).c_str());
}

TEST_F(ShutdownTest, AuditStopsWithExactlyWhatItStoredCommitted) {
  // 30,000 events across the topics.
  auto p = kafka::Producer::Create({.bootstrap_servers = bootstrap_}, *catalog_);
  ASSERT_TRUE(p.ok());
  const auto goldens = contracts::testing::Goldens();
  constexpr int kEvents = 30000;
  for (int i = 0; i < kEvents; ++i) {
    v1::Envelope e = goldens[i % goldens.size()];
    e.set_id(contracts::NewUuidV7());
    e.set_tenant_id(Cat("tenant-", i % 7));
    (*p)->Send(e, [](absl::StatusOr<kafka::DeliveryReport> r) { ASSERT_TRUE(r.ok()) << r.status(); });
  }
  ASSERT_TRUE((*p)->Flush(absl::Seconds(60)).ok());
  const std::string group = Group("audit");
  const std::vector<std::string> args{"--pg-dsn", common::DefaultPgDsn(), "--pg-schema", schema_, "--bootstrap",
                                      bootstrap_, "--topic-prefix", prefix_, "--group", group, "--max-batch", "500",
                                      "--metrics-listen", "",
                                      // The golden events' occurred_at is fixed: keep them whatever their age.
                                      "--retention-days", "0"};
  pid_t audit = Start(SLUICE_AUDIT_BIN, args, "audit-1.log");
  int64_t stored = 0;
  for (int i = 0; i < 600 && stored < 3000; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    stored = Count("SELECT count(*) FROM event_log");
  }
  ASSERT_GE(stored, 3000);
  auto [code, took] = Terminate(audit);
  EXPECT_EQ(code, 0) << Log("audit-1.log");
  stored = Count("SELECT count(*) FROM event_log");
  EXPECT_LT(stored, kEvents) << "stopped mid-stream";
  // What is committed is what is stored: nothing stored would be delivered again, and
  // nothing committed is missing.
  EXPECT_EQ(Committed(group, AllTopics()), stored);
  const int64_t first_stop = stored;
  const absl::Duration first_took = took;

  audit = Start(SLUICE_AUDIT_BIN, args, "audit-2.log");
  for (int i = 0; i < 1200 && stored < kEvents; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    stored = Count("SELECT count(*) FROM event_log");
  }
  std::tie(code, took) = Terminate(audit);
  EXPECT_EQ(code, 0) << Log("audit-2.log");
  EXPECT_EQ(Count("SELECT count(*) FROM event_log"), kEvents);
  EXPECT_EQ(Count("SELECT count(DISTINCT id) FROM event_log"), kEvents);
  EXPECT_EQ(Committed(group, AllTopics()), kEvents);
  std::printf("audit: first stop with %lld of %d stored and committed, exit in %s\n",
              static_cast<long long>(first_stop), kEvents, absl::FormatDuration(first_took).c_str());
}

TEST_F(ShutdownTest, RelayMarksSentExactlyWhatItPublished) {
  constexpr int kRows = 6000;
  std::vector<v1::Envelope> events;
  for (int i = 0; i < kRows; ++i) {
    v1::Envelope e = contracts::testing::Golden("data.refreshed");
    e.clear_id();
    e.set_tenant_id(Cat("tenant-", i % 5));
    events.push_back(e);
  }
  ASSERT_TRUE(conn_->ExecScript("BEGIN").ok());
  ASSERT_TRUE(outbox::AppendToOutbox(*conn_, events, *catalog_).ok());
  ASSERT_TRUE(conn_->ExecScript("COMMIT").ok());
  const std::vector<std::string> args{"--pg-dsn",         common::DefaultPgDsn(),
                                      "--pg-schema",      schema_,
                                      "--bootstrap",      bootstrap_,
                                      "--topic-prefix",   prefix_,
                                      "--batch-size",     "100",
                                      "--metrics-listen", ""};
  pid_t relay = Start(SLUICE_RELAY_BIN, args, "relay-1.log");
  int64_t sent = 0;
  for (int i = 0; i < 600 && sent < 500; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    sent = Count("SELECT count(*) FROM event_outbox WHERE sent_at IS NOT NULL");
  }
  auto [code, took] = Terminate(relay);
  EXPECT_EQ(code, 0) << Log("relay-1.log");
  sent = Count("SELECT count(*) FROM event_outbox WHERE sent_at IS NOT NULL");
  EXPECT_LT(sent, kRows) << "stopped mid-stream";
  const std::string topic = catalog_->Find("data.refreshed")->topic;
  auto kafka = InKafka({topic});
  EXPECT_EQ(static_cast<int64_t>(kafka.size()), sent) << "published but not marked sent, or marked but not published";
  std::printf("relay: first stop with %lld of %d rows sent, exit in %s\n", static_cast<long long>(sent), kRows,
              absl::FormatDuration(took).c_str());
  for (const auto& [id, n] : kafka) EXPECT_EQ(n, 1) << id;

  relay = Start(SLUICE_RELAY_BIN, args, "relay-2.log");
  for (int i = 0; i < 1500 && sent < kRows; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    sent = Count("SELECT count(*) FROM event_outbox WHERE sent_at IS NOT NULL");
  }
  std::tie(code, took) = Terminate(relay);
  EXPECT_EQ(code, 0) << Log("relay-2.log");
  kafka = InKafka({topic});
  EXPECT_EQ(kafka.size(), static_cast<size_t>(kRows));
  for (const auto& e : events) EXPECT_EQ(kafka[e.id()], 1) << e.id();
}

}  // namespace
}  // namespace sluice
