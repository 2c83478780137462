// sluice-audit against the real local Kafka and PostgreSQL: every event stored once,
// whatever is redelivered, with the record's coordinates and a queryable JSON payload.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <random>

#include "common/pg.h"
#include "consumers/audit/audit_sink.h"
#include "consumers/consumer.h"
#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "producers/producer.h"
#include "tests/kafka_fixture.h"
#include "tests/pg_schema.h"
#include "tests/subprocess.h"

namespace sluice {
namespace {

using common::Cat;

class AuditTest : public testing::KafkaTest {
 protected:
  void SetUp() override {
    KafkaTest::SetUp();
    if (HasFatalFailure()) return;
    auto c = testing::MigratedSchema("it_audit_", schema_);
    ASSERT_TRUE(c.ok()) << c.status();
    conn_.emplace(*std::move(c));
  }
  void TearDown() override {
    if (conn_) {
      EXPECT_TRUE(testing::DropSchema(*conn_, schema_).ok());
    }
    KafkaTest::TearDown();
  }
  // Publishes `rounds` copies of the 13 golden events with fresh ids; returns the ids.
  std::vector<std::string> Publish(int rounds) {
    auto p = producer::Producer::Create({.bootstrap_servers = bootstrap_}, *catalog_);
    EXPECT_TRUE(p.ok());
    std::vector<std::string> ids;
    for (int i = 0; i < rounds; ++i)
      for (auto e : contracts::testing::Goldens()) {
        e.set_id(contracts::NewUuidV7());
        ids.push_back(e.id());
        (*p)->Send(e, [](absl::StatusOr<producer::DeliveryReport> r) { EXPECT_TRUE(r.ok()) << r.status(); });
      }
    EXPECT_TRUE((*p)->Flush(absl::Seconds(30)).ok());
    return ids;
  }
  std::vector<std::string> AllTopics() {
    std::vector<std::string> t;
    for (const auto& topic : catalog_->topics()) t.push_back(topic.name());
    return t;
  }
  // Reads every topic with a fresh group into the sink until `want` records went through.
  audit::WriteReport Drain(audit::AuditSink& sink, const std::string& group, int64_t want,
                           std::vector<consumer::Record>* seen = nullptr) {
    auto c = consumer::Consumer::Create({.bootstrap_servers = bootstrap_, .group_id = Group(group), .topics = AllTopics()});
    EXPECT_TRUE(c.ok());
    audit::WriteReport total;
    for (absl::Time end = absl::Now() + absl::Seconds(60); total.received < want && absl::Now() < end;)
      (void)(*c)->PollOnce([&](const std::vector<consumer::Record>& batch) -> absl::Status {
        auto r = sink.Write(batch);
        if (!r.ok()) return r.status();
        total.received += r->received;
        total.stored += r->stored;
        total.duplicates += r->duplicates;
        total.merged_batches += r->merged_batches;
        if (seen) seen->insert(seen->end(), batch.begin(), batch.end());
        return absl::OkStatus();
      });
    return total;
  }
  std::string Scalar(const std::string& sql, const std::vector<std::optional<std::string>>& params = {}) {
    auto r = conn_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->rows() > 0 ? std::string(r->Get(0, 0)) : "<none>";
  }

  std::string schema_;
  std::optional<common::PgConnection> conn_;
};

TEST_F(AuditTest, StoresEveryEventOnceWhateverIsRedelivered) {
  auto ids = Publish(20);  // 260 events over 5 topics
  auto sink = audit::AuditSink::Create({.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_});
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<consumer::Record> seen;
  auto first = Drain(**sink, "audit-1", 260, &seen);
  EXPECT_EQ(first.received, 260);
  EXPECT_EQ(first.stored, 260);
  EXPECT_EQ(first.merged_batches, 0);  // nothing stored before: straight COPYs
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_log"), "260");

  // The same records again (a redelivery), and the whole log again (a second group): nothing new.
  auto again = (*sink)->Write(seen);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->stored, 0);
  EXPECT_EQ(again->duplicates, 260);
  EXPECT_EQ(again->merged_batches, 1);  // the direct COPY hit the primary key; merged instead
  auto second = Drain(**sink, "audit-2", 260);
  EXPECT_EQ(second.stored, 0);
  EXPECT_EQ(second.duplicates, 260);
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_log"), "260");
  EXPECT_EQ(Scalar("SELECT count(DISTINCT id) FROM event_log"), "260");

  // Each row carries its record's coordinates and the envelope's fields.
  const consumer::Record& r = seen.front();
  auto row = conn_->Exec(
      "SELECT type, source, tenant_id, topic, \"partition\", \"offset\", correlation_id,"
      " extract(epoch FROM occurred_at)::bigint FROM event_log WHERE id = $1::uuid",
      {r.envelope.id()});
  ASSERT_TRUE(row.ok() && row->rows() == 1);
  EXPECT_EQ(row->Get(0, 0), r.envelope.type());
  EXPECT_EQ(row->Get(0, 1), r.envelope.source());
  EXPECT_EQ(row->Get(0, 2), r.envelope.tenant_id());
  EXPECT_EQ(row->Get(0, 3), r.topic);
  EXPECT_EQ(row->Get(0, 4), std::to_string(r.partition));
  EXPECT_EQ(row->Get(0, 5), std::to_string(r.offset));
  EXPECT_EQ(row->Get(0, 6), r.envelope.correlation_id());
  EXPECT_EQ(row->Get(0, 7), std::to_string(r.envelope.occurred_at().seconds()));
  // The payload is protobuf JSON, queryable with JSONPath.
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_log WHERE type = 'metadata.profile.completed'"
                   " AND jsonb_path_exists(payload, '$.qualityGrade ? (@ starts with \"QUALITY_GRADE_\")')"),
            "20");
}

TEST_F(AuditTest, UnstorableRecordsAreRejectedAndTheRestOfTheBatchStored) {
  auto sink = audit::AuditSink::Create({.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_});
  ASSERT_TRUE(sink.ok());
  std::vector<consumer::Record> batch(3);
  for (int i = 0; i < 3; ++i) {
    batch[i].envelope = contracts::testing::Golden("kpi.changed");
    batch[i].envelope.set_id(contracts::NewUuidV7());
    batch[i].topic = "t";
    batch[i].offset = i;
  }
  batch[1].envelope.set_correlation_id(std::string("nul\0inside", 10));
  batch[2].envelope.set_id("not-a-uuid");
  auto r = (*sink)->Write(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stored, 1);
  EXPECT_EQ(r->rejected, 2);
  EXPECT_EQ(Scalar("SELECT id::text FROM event_log"), batch[0].envelope.id());
}

TEST_F(AuditTest, BinaryStoresEverythingAndStopsCleanlyOnSigterm) {
  Publish(4);
  pid_t pid = testing::Spawn(SLUICE_AUDIT, {"--pg-schema", schema_, "--topic-prefix", prefix_, "--group",
                                            Group("audit-bin"), "--metrics-listen", "", "--log-level", "warn"});
  ASSERT_GT(pid, 0);
  std::string n;
  for (int i = 0; i < 300 && n != "52"; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    n = Scalar("SELECT count(*) FROM event_log");
  }
  EXPECT_EQ(n, "52");
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "graceful stop on SIGTERM";
}

}  // namespace
}  // namespace sluice
