// sluice-relay against the real local PostgreSQL and Kafka: the transactional outbox.
#include "producers/relay/relay.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>
#include <thread>

#include "common/pg.h"
#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "kafka/consumer.h"
#include "outbox/outbox.h"
#include "tests/kafka_fixture.h"
#include "tests/subprocess.h"

namespace sluice {
namespace {

using common::PgConnection;

class RelayTest : public testing::KafkaTest {
 protected:
  void SetUp() override {
    KafkaTest::SetUp();
    if (HasFatalFailure()) return;
    schema_ = common::Cat("it_relay_", std::random_device{}());
    auto c = Connect();
    ASSERT_TRUE(c.ok()) << c.status();
    conn_.emplace(*std::move(c));
    auto m = common::Migrate(*conn_, std::string(SLUICE_SOURCE_DIR) + "/sql/migrations");
    ASSERT_TRUE(m.ok()) << m.status();
    auto p =
        kafka::Producer::Create({.bootstrap_servers = bootstrap_, .delivery_timeout = absl::Seconds(10)}, *catalog_);
    ASSERT_TRUE(p.ok());
    producer_ = *std::move(p);
  }
  void TearDown() override {
    if (conn_) {
      EXPECT_TRUE(conn_->ExecScript(common::Cat("DROP SCHEMA IF EXISTS ", schema_, " CASCADE")).ok());
    }
    producer_.reset();
    KafkaTest::TearDown();
  }
  absl::StatusOr<PgConnection> Connect() {
    auto c = PgConnection::Connect(common::DefaultPgDsn());
    if (!c.ok()) return c.status();
    if (auto s = c->ExecScript(common::Cat("CREATE SCHEMA IF NOT EXISTS ", schema_, "; SET search_path TO ", schema_));
        !s.ok())
      return s;
    return c;
  }
  relay::RelayConfig Config() {
    return {.pg_dsn = common::DefaultPgDsn(),
            .batch_size = 50,
            .poll_interval = absl::Milliseconds(200),
            .backoff = absl::Milliseconds(200),
            .pg_schema = schema_};
  }
  // Appends `n` data.refreshed events for `tenant` in one transaction; returns their ids.
  std::vector<std::string> Append(const std::string& tenant, int n, bool commit = true) {
    std::vector<v1::Envelope> events;
    for (int i = 0; i < n; ++i) {
      v1::Envelope e = contracts::testing::Golden("data.refreshed");
      e.clear_id();
      e.set_tenant_id(tenant);
      events.push_back(e);
    }
    EXPECT_TRUE(conn_->ExecScript("BEGIN").ok());
    EXPECT_TRUE(outbox::AppendToOutbox(*conn_, events, *catalog_).ok());
    EXPECT_TRUE(conn_->ExecScript(commit ? "COMMIT" : "ROLLBACK").ok());
    std::vector<std::string> ids;
    for (const auto& e : events) ids.push_back(e.id());
    return ids;
  }
  int64_t Unsent() {
    return std::stoll(std::string(conn_->Exec("SELECT count(*) FROM event_outbox WHERE sent_at IS NULL")->Get(0, 0)));
  }
  // Records on the data topic, by a fresh group, until `want` arrived (+ a quiet second).
  std::vector<kafka::Record> Read(size_t want) {
    auto c = kafka::Consumer::Create({.bootstrap_servers = bootstrap_,
                                      .group_id = Group(common::Cat("r", readers_++)),
                                      .topics = {catalog_->Find("data.refreshed")->topic},
                                      .max_batch = 5000});
    std::vector<kafka::Record> got;
    absl::Time deadline = absl::Now() + absl::Seconds(60), quiet = absl::InfiniteFuture();
    while (absl::Now() < deadline && absl::Now() < quiet) {
      (void)(*c)->PollOnce([&](const std::vector<kafka::Record>& b) {
        got.insert(got.end(), b.begin(), b.end());
        return absl::OkStatus();
      });
      if (got.size() >= want && quiet == absl::InfiniteFuture()) quiet = absl::Now() + absl::Seconds(1);
    }
    return got;
  }
  // Every id exactly once, and within each tenant in the order they were appended.
  void ExpectOnceInOrder(const std::vector<kafka::Record>& got,
                         const std::map<std::string, std::vector<std::string>>& want) {
    std::map<std::string, std::vector<std::string>> seen;  // tenant -> ids in offset order
    std::vector<kafka::Record> sorted = got;
    std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
    for (const auto& r : sorted) seen[r.envelope.tenant_id()].push_back(r.envelope.id());
    EXPECT_EQ(seen, want);
  }

  std::string schema_;
  std::optional<PgConnection> conn_;
  std::unique_ptr<kafka::Producer> producer_;
  int readers_ = 0;
};

TEST_F(RelayTest, PublishesCommittedRowsOnceInCommitOrderWithTheirIds) {
  std::map<std::string, std::vector<std::string>> want;
  for (const char* t : {"tenant-a", "tenant-b", "tenant-c"})
    for (int tx = 0; tx < 3; ++tx) {
      auto ids = Append(t, 7);
      want[t].insert(want[t].end(), ids.begin(), ids.end());
    }
  auto rolled_back = Append("tenant-a", 5, /*commit=*/false);

  auto relay = relay::Relay::Create(Config(), *producer_);
  ASSERT_TRUE(relay.ok());
  int64_t sent = 0;
  for (int i = 0; i < 10 && sent < 63; ++i) sent += (*relay)->RunOnce().value_or(0);
  EXPECT_EQ(sent, 63);
  EXPECT_EQ(*(*relay)->RunOnce(), 0);  // nothing twice
  EXPECT_EQ(Unsent(), 0);

  auto got = Read(63);
  ExpectOnceInOrder(got, want);
  for (const auto& r : got)
    EXPECT_EQ(std::find(rolled_back.begin(), rolled_back.end(), r.envelope.id()), rolled_back.end());
  // The row remembers where its event went.
  auto row = conn_->Exec("SELECT sent_topic, sent_partition, sent_offset FROM event_outbox WHERE event_id = $1::uuid",
                         {got[0].envelope.id()});
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->Get(0, 0), got[0].topic);
  EXPECT_EQ(std::stoll(std::string(row->Get(0, 2))), got[0].offset);
}

TEST_F(RelayTest, PruneDeletesOldSentRowsInShortBatchesAndKeepsTheRest) {
  Append("tenant-a", 25);
  // 20 sent 8 days ago, 3 sent just now, 2 never sent.
  ASSERT_TRUE(conn_
                  ->ExecScript("UPDATE event_outbox SET sent_at = now() - interval '8 days' - id * interval '1 second' "
                               "WHERE id IN (SELECT id FROM event_outbox ORDER BY id LIMIT 20);"
                               "UPDATE event_outbox SET sent_at = now() WHERE id IN (SELECT id FROM event_outbox "
                               "WHERE sent_at IS NULL ORDER BY id LIMIT 3)")
                  .ok());
  relay::RelayConfig config = Config();
  config.retention = absl::Hours(24 * 7);
  config.prune_batch = 3;  // seven statements, the last one short
  auto relay = relay::Relay::Create(config, *producer_);
  ASSERT_TRUE(relay.ok()) << relay.status();
  auto pruned = (*relay)->Prune();
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 20);
  EXPECT_EQ((*relay)->stats().pruned, 20);
  auto left = conn_->Exec(
      "SELECT count(*) FILTER (WHERE sent_at IS NULL), count(*) FILTER (WHERE sent_at > now() - interval '1 hour'), "
      "count(*) FROM event_outbox");
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->Get(0, 0), "2");
  EXPECT_EQ(left->Get(0, 1), "3");
  EXPECT_EQ(left->Get(0, 2), "5");
  EXPECT_EQ(*(*relay)->Prune(), 0);

  // A budget used up stops after the statement that used it; the next call goes on.
  Append("tenant-a", 6);
  ASSERT_TRUE(
      conn_->ExecScript("UPDATE event_outbox SET sent_at = now() - interval '8 days' WHERE sent_at IS NULL").ok());
  config.prune_budget = absl::ZeroDuration();
  auto budgeted = relay::Relay::Create(config, *producer_);
  ASSERT_TRUE(budgeted.ok());
  EXPECT_EQ(*(*budgeted)->Prune(), 3);
  EXPECT_EQ(*(*budgeted)->Prune(), 3);
  EXPECT_EQ(*(*budgeted)->Prune(), 2);
  EXPECT_EQ(*(*budgeted)->Prune(), 0);
}

TEST_F(RelayTest, BacklogAndPublishedCountsAreExported) {
  prometheus::Registry registry;
  auto relay = relay::Relay::Create(Config(), *producer_, &registry);
  ASSERT_TRUE(relay.ok());
  auto value = [&](const std::string& name) -> double {
    for (const auto& f : registry.Collect())
      if (f.name == name) return f.metric.at(0).gauge.value + f.metric.at(0).counter.value;
    ADD_FAILURE() << name << " not registered";
    return -1;
  };
  Append("tenant-a", 5);
  absl::SleepFor(absl::Milliseconds(1100));
  ASSERT_TRUE((*relay)->UpdateBacklogMetrics().ok());
  EXPECT_EQ(value("sluice_outbox_backlog"), 5);
  EXPECT_GE(value("sluice_outbox_oldest_unsent_seconds"), 1.0);
  auto n = (*relay)->RunOnce();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 5);
  ASSERT_TRUE((*relay)->UpdateBacklogMetrics().ok());
  EXPECT_EQ(value("sluice_outbox_backlog"), 0);
  EXPECT_EQ(value("sluice_outbox_oldest_unsent_seconds"), 0);
  EXPECT_EQ(value("sluice_relay_published_total"), 5);
  EXPECT_EQ(value("sluice_relay_errors_total"), 0);
}

TEST_F(RelayTest, ConcurrentRelaysNeitherDuplicateNorReorderATenant) {
  std::map<std::string, std::vector<std::string>> want;
  for (int t = 0; t < 8; ++t)
    for (int tx = 0; tx < 5; ++tx) {
      auto ids = Append(common::Cat("tenant-", t), 10);
      want[common::Cat("tenant-", t)].insert(want[common::Cat("tenant-", t)].end(), ids.begin(), ids.end());
    }
  std::vector<std::thread> relays;
  std::atomic<int64_t> total{0};
  for (int r = 0; r < 3; ++r) {
    relays.emplace_back([&] {
      auto p = kafka::Producer::Create({.bootstrap_servers = bootstrap_}, *catalog_);
      auto relay = relay::Relay::Create(Config(), **p);
      for (int i = 0; i < 200 && total.load() < 400; ++i) {
        auto n = (*relay)->RunOnce();
        ASSERT_TRUE(n.ok()) << n.status();
        total += *n;
      }
    });
  }
  for (auto& t : relays) t.join();
  EXPECT_EQ(total.load(), 400);
  ExpectOnceInOrder(Read(400), want);
}

TEST_F(RelayTest, FailedPublishBacksOffAndHoldsTheTenantsLaterRows) {
  Append("tenant-a", 3);
  // A producer whose topics do not exist: the broker refuses the first row.
  auto missing = contracts::Catalog::Default().WithTopicPrefix(prefix_ + "missing.");
  auto bad = kafka::Producer::Create({.bootstrap_servers = bootstrap_, .delivery_timeout = absl::Seconds(2)}, missing);
  auto relay = relay::Relay::Create(Config(), **bad);
  EXPECT_EQ(*(*relay)->RunOnce(), 0);
  auto rows = conn_->Exec(
      "SELECT attempts, last_error IS NOT NULL, next_attempt_at > clock_timestamp() FROM event_outbox ORDER BY id");
  ASSERT_EQ(rows->rows(), 3);
  EXPECT_EQ(rows->Get(0, 0), "1");
  EXPECT_EQ(rows->Get(0, 1), "t");
  EXPECT_EQ(rows->Get(0, 2), "t");
  EXPECT_EQ(Unsent(), 3);
  // Once the back-off passed, a working relay publishes all three, in order.
  absl::SleepFor(absl::Milliseconds(300));
  auto good = relay::Relay::Create(Config(), *producer_);
  EXPECT_EQ(*(*good)->RunOnce(), 3);
}

pid_t StartRelayBinary(const std::vector<std::string>& args) { return testing::Spawn(SLUICE_RELAY, args); }

TEST_F(RelayTest, SigkilledRelayDeliversEveryEventOnceAfterRestartWithTheSameIds) {
  const std::vector<std::string> args{"--pg-schema",      schema_, "--topic-prefix", prefix_, "--poll-ms", "200",
                                      "--metrics-listen", "",      "--log-level",    "warn"};
  pid_t first = StartRelayBinary(args);
  ASSERT_GT(first, 0);
  auto before = Append("tenant-a", 10);
  for (int i = 0; i < 100 && Unsent() > 0; ++i) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_EQ(Unsent(), 0);
  ASSERT_EQ(kill(first, SIGKILL), 0);
  waitpid(first, nullptr, 0);

  // Committed while no relay runs.
  auto during = Append("tenant-a", 10);
  auto other = Append("tenant-b", 10);
  EXPECT_EQ(Unsent(), 20);

  pid_t second = StartRelayBinary(args);
  for (int i = 0; i < 100 && Unsent() > 0; ++i) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Unsent(), 0);
  kill(second, SIGTERM);
  int status = 0;
  waitpid(second, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "graceful stop on SIGTERM";

  std::map<std::string, std::vector<std::string>> want;
  want["tenant-a"] = before;
  want["tenant-a"].insert(want["tenant-a"].end(), during.begin(), during.end());
  want["tenant-b"] = other;
  ExpectOnceInOrder(Read(30), want);
}

TEST_F(RelayTest, ReconnectsAfterPostgresRestarts) {
  auto relay = relay::Relay::Create(Config(), *producer_);
  ASSERT_TRUE(relay.ok());
  std::thread runner([&] { (*relay)->Run(); });
  auto first = Append("tenant-a", 5);
  for (int i = 0; i < 100 && Unsent() > 0; ++i) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Unsent(), 0);

  conn_.reset();
  ASSERT_EQ(std::system(common::Cat("bash ", SLUICE_SOURCE_DIR, "/dev/postgres.sh stop >/dev/null 2>&1").c_str()), 0);
  absl::SleepFor(absl::Seconds(1));
  ASSERT_EQ(std::system(common::Cat("bash ", SLUICE_SOURCE_DIR, "/dev/postgres.sh start >/dev/null 2>&1").c_str()), 0);
  auto c = Connect();
  ASSERT_TRUE(c.ok()) << c.status();
  conn_.emplace(*std::move(c));
  auto second = Append("tenant-a", 5);
  for (int i = 0; i < 150 && Unsent() > 0; ++i) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Unsent(), 0) << "the relay did not reconnect";
  (*relay)->Stop();
  runner.join();
  std::map<std::string, std::vector<std::string>> want;
  want["tenant-a"] = first;
  want["tenant-a"].insert(want["tenant-a"].end(), second.begin(), second.end());
  ExpectOnceInOrder(Read(10), want);
}

}  // namespace
}  // namespace sluice
