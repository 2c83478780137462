// sluice-audit against the real local Kafka and PostgreSQL: every event stored once,
// whatever is redelivered, with the record's coordinates and a queryable JSON payload.
#include <absl/strings/escaping.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <mutex>
#include <random>

#include "common/pg.h"
#include "consumers/audit/audit_sink.h"
#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "contracts/validate.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "kafka/util.h"
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
    auto p = kafka::Producer::Create({.bootstrap_servers = bootstrap_}, *catalog_);
    EXPECT_TRUE(p.ok());
    std::vector<std::string> ids;
    for (int i = 0; i < rounds; ++i)
      for (auto e : contracts::testing::Goldens()) {
        e.set_id(contracts::NewUuidV7());
        ids.push_back(e.id());
        (*p)->Send(e, [](absl::StatusOr<kafka::DeliveryReport> r) { EXPECT_TRUE(r.ok()) << r.status(); });
      }
    EXPECT_TRUE((*p)->Flush(absl::Seconds(30)).ok());
    return ids;
  }
  // Polls event_log's row count every 100 ms until it is `want` or `tries` polls passed.
  std::string WaitForRows(const std::string& want, int tries = 300) {
    std::string n;
    for (int i = 0; i < tries && n != want; ++i) {
      absl::SleepFor(absl::Milliseconds(100));
      n = Scalar("SELECT count(*) FROM event_log");
    }
    return n;
  }
  std::vector<std::string> AllTopics() {
    std::vector<std::string> t;
    for (const auto& topic : catalog_->topics()) t.push_back(topic.name());
    return t;
  }
  // Reads every topic with a fresh group into the sink until `want` records went through.
  audit::WriteReport Drain(audit::AuditSink& sink, const std::string& group, int64_t want,
                           std::vector<kafka::Record>* seen = nullptr) {
    auto c =
        kafka::Consumer::Create({.bootstrap_servers = bootstrap_, .group_id = Group(group), .topics = AllTopics()});
    EXPECT_TRUE(c.ok());
    audit::WriteReport total;
    for (absl::Time end = absl::Now() + absl::Seconds(60); total.received < want && absl::Now() < end;)
      (void)(*c)->PollOnce([&](const std::vector<kafka::Record>& batch) -> absl::Status {
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
  std::vector<kafka::Record> seen;
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
  const kafka::Record& r = seen.front();
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

TEST_F(AuditTest, UnstorableRecordsAreDeadLetteredAndTheRestOfTheBatchStored) {
  auto sink = audit::AuditSink::Create({.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_});
  ASSERT_TRUE(sink.ok());
  std::vector<kafka::Record> batch(3);
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
  EXPECT_EQ(r->dead_lettered, 2);
  EXPECT_EQ(Scalar("SELECT id::text FROM event_log"), batch[0].envelope.id());
  EXPECT_EQ(Scalar("SELECT string_agg(event_id || ' ' || reason, '; ' ORDER BY \"offset\") FROM event_dead_letter"),
            Cat(batch[1].envelope.id(), " correlation_id: contains a NUL character; not-a-uuid id: must be a UUID"));
}

// A record as the consumer hands it over, with the bytes it was read as.
kafka::Record AsRead(v1::Envelope e, int64_t offset) {
  kafka::Record r;
  r.topic = "sluice.kpi";
  r.partition = 0;
  r.offset = offset;
  r.key = e.tenant_id();
  r.value = e.SerializeAsString();
  r.envelope = std::move(e);
  return r;
}

// `n` random printable characters: compression cannot shrink them below an index's limit.
std::string Incompressible(size_t n, unsigned seed = 7) {
  std::mt19937 rng(seed);
  std::string s(n, ' ');
  for (char& ch : s) ch = static_cast<char>(0x21 + rng() % 94);
  return s;
}

v1::Envelope KpiChanged(const std::string& tenant) {
  v1::Envelope e = contracts::testing::Golden("kpi.changed");
  e.set_id(contracts::NewUuidV7());
  e.set_tenant_id(tenant);
  return e;
}

TEST_F(AuditTest, OnePoisonEventNeverFailsTheBatchAndNothingIsSkipped) {
  auto sink = audit::AuditSink::Create({.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_});
  ASSERT_TRUE(sink.ok());
  v1::Envelope a = KpiChanged("tenant-a"), long_corr = KpiChanged("tenant-a"), nul = KpiChanged("tenant-b"),
               literal = KpiChanged("tenant-b"), b = KpiChanged("tenant-b");
  long_corr.set_correlation_id(Incompressible(4000));  // a btree entry too large for event_log_correlation
  nul.mutable_kpi_changed()->set_changed_fields(0, std::string("form\0ula", 8));
  // Six harmless characters, not a NUL: stored as they are.
  const std::string text = R"(see \u0000 in the docs)";
  literal.mutable_kpi_changed()->set_changed_fields(0, text);
  (*literal.mutable_metadata())["note"] = text;
  const std::vector<kafka::Record> batch = {AsRead(a, 10), AsRead(long_corr, 11), AsRead(nul, 12), AsRead(literal, 13),
                                            AsRead(b, 14)};

  auto r = (*sink)->Write(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stored, 3);
  EXPECT_EQ(r->dead_lettered, 2);
  EXPECT_EQ(r->dead_lettered_by[static_cast<size_t>(audit::DeadLetterCategory::kInvalid)], 2);
  EXPECT_EQ(r->duplicates, 0);
  EXPECT_EQ(Scalar("SELECT string_agg(id::text, ',' ORDER BY \"offset\") FROM event_log"),
            Cat(a.id(), ",", literal.id(), ",", b.id()));
  EXPECT_EQ(Scalar("SELECT payload->'changedFields'->>0 || '|' || (metadata->>'note') FROM event_log"
                   " WHERE id = $1::uuid",
                   {literal.id()}),
            Cat(text, "|", text));
  // The two bad ones, each with a reason naming the field, and the exact bytes read.
  auto dl = conn_->Exec(
      "SELECT \"offset\", event_id, tenant_id, type, source, category, sqlstate IS NULL, reason,"
      " record_value = decode($1, 'hex'), record_value = decode($2, 'hex'), encode(record_key, 'escape')"
      " FROM event_dead_letter ORDER BY \"offset\"",
      {absl::BytesToHexString(batch[1].value), absl::BytesToHexString(batch[2].value)});
  ASSERT_TRUE(dl.ok()) << dl.status();
  ASSERT_EQ(dl->rows(), 2);
  EXPECT_EQ(dl->Get(0, 0), "11");
  EXPECT_EQ(dl->Get(0, 1), long_corr.id());
  EXPECT_EQ(dl->Get(0, 2), "tenant-a");
  EXPECT_EQ(dl->Get(0, 3), "kpi.changed");
  EXPECT_EQ(dl->Get(0, 4), long_corr.source());
  EXPECT_EQ(dl->Get(0, 5), "invalid");
  EXPECT_EQ(dl->Get(0, 6), "t");
  EXPECT_EQ(dl->Get(0, 7), "correlation_id: 4000 bytes exceeds the 128-byte limit");
  EXPECT_EQ(dl->Get(0, 8), "t");
  EXPECT_EQ(dl->Get(0, 10), "tenant-a");
  EXPECT_EQ(dl->Get(1, 0), "12");
  EXPECT_EQ(dl->Get(1, 2), "tenant-b");
  EXPECT_EQ(dl->Get(1, 5), "invalid");
  EXPECT_THAT(std::string(dl->Get(1, 7)), ::testing::HasSubstr("kpi_changed.changed_fields[0]"));
  EXPECT_THAT(std::string(dl->Get(1, 7)), ::testing::HasSubstr("NUL"));
  EXPECT_EQ(dl->Get(1, 9), "t");

  // The same batch again (a redelivery): nothing new anywhere.
  auto again = (*sink)->Write(batch);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->stored, 0);
  EXPECT_EQ(again->dead_lettered, 0);
  EXPECT_EQ(again->duplicates, 5);
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_log"), "3");
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_dead_letter"), "2");

  // What the gateway's health report reads.
  auto all = audit::CountDeadLetters(*conn_, {});
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].topic, "sluice.kpi");
  EXPECT_EQ((*all)[0].tenant_id, "tenant-a");
  EXPECT_EQ((*all)[0].count, 1);
  EXPECT_EQ((*all)[1].tenant_id, "tenant-b");
  EXPECT_LE((*all)[1].newest, absl::Now());
  EXPECT_GT((*all)[1].newest, absl::Now() - absl::Minutes(5));
  auto only_b = audit::CountDeadLetters(*conn_, {"tenant-b", "tenant-z"});
  ASSERT_TRUE(only_b.ok()) << only_b.status();
  ASSERT_EQ(only_b->size(), 1u);
  EXPECT_EQ((*only_b)[0].tenant_id, "tenant-b");
  EXPECT_EQ((*only_b)[0].count, 1);
}

TEST_F(AuditTest, TenantsMayUseTheSameEventId) {
  auto sink = audit::AuditSink::Create({.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_});
  ASSERT_TRUE(sink.ok());
  v1::Envelope a = KpiChanged("tenant-a"), b = KpiChanged("tenant-b");
  b.set_id(a.id());
  // Tenant A's event stored first, tenant B's (the same id) in a later batch.
  auto first = (*sink)->Write({AsRead(a, 0)});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = (*sink)->Write({AsRead(b, 1), AsRead(a, 0)});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->stored, 1);
  EXPECT_EQ(second->duplicates, 1);
  EXPECT_EQ(Scalar("SELECT string_agg(tenant_id, ',' ORDER BY tenant_id) FROM event_log WHERE id = $1::uuid", {a.id()}),
            "tenant-a,tenant-b");
  // Both in one batch, for two other tenants.
  v1::Envelope c = KpiChanged("tenant-c"), d = KpiChanged("tenant-d");
  d.set_id(c.id());
  auto third = (*sink)->Write({AsRead(c, 2), AsRead(d, 3)});
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->stored, 2);
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_log"), "4");
}

TEST_F(AuditTest, RowsPostgresRefusesAreFoundAndDeadLetteredTheRestStored) {
  // Constraints the events do not know about, as an operator might add: a CHECK (SQLSTATE
  // 23514) and an index whose entries a large payload overflows (54000). Valid events
  // break them, so only storing them shows which rows are refused.
  ASSERT_TRUE(conn_
                  ->ExecScript("ALTER TABLE event_log ADD CONSTRAINT test_refused"
                               "  CHECK (correlation_id IS DISTINCT FROM 'refused-by-check');"
                               "CREATE INDEX test_payload_text ON event_log ((payload::text))")
                  .ok());
  auto sink = audit::AuditSink::Create({.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_});
  ASSERT_TRUE(sink.ok());
  std::vector<kafka::Record> batch;
  for (int i = 0; i < 20; ++i) batch.push_back(AsRead(KpiChanged(Cat("tenant-", i % 3)), 100 + i));
  // One already stored, so its part goes through the merge, which must isolate too.
  ASSERT_TRUE((*sink)->Write({batch[5]}).ok());
  batch[3].envelope.set_correlation_id("refused-by-check");
  const std::string noise = Incompressible(12000);
  batch[11].envelope.mutable_kpi_changed()->set_changed_fields(0, noise);
  ASSERT_TRUE(contracts::Validate(batch[3].envelope).ok());
  ASSERT_TRUE(contracts::Validate(batch[11].envelope).ok());

  auto r = (*sink)->Write(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stored, 17);
  EXPECT_EQ(r->duplicates, 1);
  EXPECT_EQ(r->dead_lettered, 2);
  EXPECT_EQ(r->dead_lettered_by[static_cast<size_t>(audit::DeadLetterCategory::kUnstorable)], 2);
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_log"), "18");
  auto dl = conn_->Exec("SELECT \"offset\", category, sqlstate, reason FROM event_dead_letter ORDER BY \"offset\"");
  ASSERT_TRUE(dl.ok()) << dl.status();
  ASSERT_EQ(dl->rows(), 2);
  EXPECT_EQ(dl->Get(0, 0), "103");
  EXPECT_EQ(dl->Get(0, 1), "unstorable");
  EXPECT_EQ(dl->Get(0, 2), "23514");
  EXPECT_THAT(std::string(dl->Get(0, 3)), ::testing::StartsWith("sqlstate 23514: "));
  EXPECT_THAT(std::string(dl->Get(0, 3)), ::testing::HasSubstr("test_refused"));
  EXPECT_EQ(dl->Get(1, 0), "111");
  EXPECT_EQ(dl->Get(1, 2), "54000");
  EXPECT_THAT(std::string(dl->Get(1, 3)), ::testing::StartsWith("sqlstate 54000: index row"));
  // Short, and never the row's contents.
  EXPECT_LE(dl->Get(1, 3).size(), 256u);
  EXPECT_THAT(std::string(dl->Get(1, 3)), ::testing::Not(::testing::HasSubstr(noise.substr(0, 32))));

  // An error that is not about the rows (here: the table is gone) fails the batch for a
  // retry; nothing is dead-lettered for it.
  ASSERT_TRUE(conn_->ExecScript("ALTER TABLE event_log RENAME TO event_log_away").ok());
  auto failed = (*sink)->Write({AsRead(KpiChanged("tenant-a"), 500)});
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_dead_letter"), "2");
}

TEST_F(AuditTest, BinaryStoresEverythingAndStopsCleanlyOnSigterm) {
  Publish(4);
  // --retention-days 0: the golden events carry a fixed occurred_at, which a year's
  // retention would drop some day.
  pid_t pid =
      testing::Spawn(SLUICE_AUDIT, {"--pg-schema", schema_, "--topic-prefix", prefix_, "--group", Group("audit-bin"),
                                    "--metrics-listen", "", "--log-level", "warn", "--retention-days", "0"});
  ASSERT_GT(pid, 0);
  EXPECT_EQ(WaitForRows("52"), "52");
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "graceful stop on SIGTERM";
}

TEST_F(AuditTest, PartitionsOfAKilledSinkMoveToTheNextWithinTheSessionTimeout) {
  // A sink killed without leaving its group holds its partitions until the group's session
  // timeout (10 s) ends; with librdkafka's default (45 s) the audit log stood still as long.
  auto start = [&] {
    return testing::Spawn(SLUICE_AUDIT,
                          {"--pg-schema", schema_, "--topic-prefix", prefix_, "--group", Group("audit-killed"),
                           "--metrics-listen", "", "--log-level", "warn", "--retention-days", "0"});
  };
  Publish(1);
  pid_t first = start();
  ASSERT_GT(first, 0);
  ASSERT_EQ(WaitForRows("13"), "13");
  kill(first, SIGKILL);
  int status = 0;
  waitpid(first, &status, 0);
  Publish(1);
  const absl::Time killed = absl::Now();
  pid_t second = start();
  ASSERT_GT(second, 0);
  const std::string n = WaitForRows("26", 900);
  const absl::Duration took = absl::Now() - killed;
  kill(second, SIGTERM);
  waitpid(second, &status, 0);
  ASSERT_EQ(n, "26");
  // The session timeout and a rebalance, well short of the 45 s default.
  EXPECT_LT(took, absl::Seconds(30)) << absl::FormatDuration(took);
}

TEST_F(AuditTest, BinarySweepsExpiredPartitionsWhileStoringAndStops) {
  // A partition (with a row) almost three years old, beside the events the binary stores
  // (the golden events' occurred_at, younger than the 500 days kept).
  ASSERT_EQ(Scalar("SELECT event_log_ensure_partition(now() - interval '1000 days')::text"),
            Scalar("SELECT 'event_log_p' || to_char((now() - interval '1000 days') AT TIME ZONE 'UTC', 'YYYY_MM')"));
  ASSERT_TRUE(
      conn_
          ->ExecScript("INSERT INTO event_log (id, type, source, tenant_id, occurred_at, payload, topic,"
                       " \"partition\", \"offset\") VALUES (gen_random_uuid(), 'kpi.changed', 'svc', 'tenant-a',"
                       " now() - interval '1000 days', '{}', 't', 0, 0)")
          .ok());
  Publish(4);
  pid_t pid = testing::Spawn(SLUICE_AUDIT, {"--pg-schema", schema_, "--topic-prefix", prefix_, "--group",
                                            Group("audit-retention"), "--metrics-listen", "", "--log-level", "warn",
                                            "--retention-days", "500", "--retention-interval-s", "1"});
  ASSERT_GT(pid, 0);
  std::string n, old = "1";
  for (int i = 0; i < 300 && (n != "52" || old != "0"); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    n = Scalar("SELECT count(*) FROM event_log");
    old = Scalar(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'event_log'::regclass AND c.relname::text < 'event_log_p' ||"
        " to_char((now() - interval '500 days') AT TIME ZONE 'UTC', 'YYYY_MM')");
  }
  EXPECT_EQ(n, "52");  // the events published, and not the old row
  EXPECT_EQ(old, "0");
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "graceful stop on SIGTERM";
}

TEST_F(AuditTest, PoisonRecordOnTheTopicDoesNotStallTheSink) {
  // Produced raw (as any Kafka client could), so nothing validates it on the way in.
  auto p = kafka::Producer::Create({.bootstrap_servers = bootstrap_}, *catalog_);
  ASSERT_TRUE(p.ok()) << p.status();
  const std::string topic = catalog_->Find("kpi.changed")->topic;
  // Where each event landed, so a failure can say which records went missing.
  std::mutex landed_mu;
  std::map<std::string, std::string> landed;  // event id -> "partition@offset", or why not
  auto produce = [&](const v1::Envelope& e) {
    {
      std::lock_guard lock(landed_mu);
      landed[e.id()] = "no partition (no delivery report)";
    }
    (*p)->SendRecord({.topic = topic,
                      .key = e.tenant_id(),
                      .value = e.SerializeAsString(),
                      .headers = contracts::ToKafkaHeaders(e),
                      .event_id = e.id()},
                     [&, id = e.id()](absl::StatusOr<kafka::DeliveryReport> r) {
                       EXPECT_TRUE(r.ok()) << r.status();
                       // Success means the broker stored it at an offset (see kafka::Producer).
                       if (r.ok()) {
                         EXPECT_GE(r->offset, 0) << id;
                       }
                       std::lock_guard lock(landed_mu);
                       landed[id] = r.ok() ? Cat(r->partition, "@", r->offset)
                                           : Cat("no partition (delivery failed: ", r.status().message(), ")");
                     });
  };
  v1::Envelope poison = KpiChanged("tenant-a");
  poison.set_correlation_id(Incompressible(4000));
  produce(poison);
  // And a record that is not an envelope at all: kept too, not skipped without trace.
  const std::string garbage = "\xff\xff\xff not protobuf";
  (*p)->SendRecord({.topic = topic, .key = "tenant-a", .value = garbage, .event_id = "garbage"},
                   [](absl::StatusOr<kafka::DeliveryReport> r) { EXPECT_TRUE(r.ok()) << r.status(); });
  for (int i = 0; i < 50; ++i) produce(KpiChanged(Cat("tenant-", "abcde"[i % 5])));
  ASSERT_TRUE((*p)->Flush(absl::Seconds(30)).ok());

  // Where each partition ends, and where the group has committed to.
  auto conf = kafka::MakeConf({{"bootstrap.servers", bootstrap_}, {"group.id", Group("audit-poison")}});
  ASSERT_TRUE(conf.ok());
  char err[256];
  kafka::KafkaHandle rk(rd_kafka_new(RD_KAFKA_CONSUMER, conf->release(), err, sizeof(err)));
  ASSERT_TRUE(rk) << err;
  int partitions = 0;
  for (const auto& t : catalog_->topics())
    if (t.name() == topic) partitions = t.partitions();
  ASSERT_GT(partitions, 0);
  std::vector<int64_t> ends(partitions);
  for (int i = 0; i < partitions; ++i) {
    int64_t low = 0;
    ASSERT_TRUE(kafka::QueryWatermarks(rk.get(), topic, i, low, ends[i]).ok());
  }
  auto committed_to_end = [&] {
    kafka::PartitionListHandle list(rd_kafka_topic_partition_list_new(partitions));
    for (int i = 0; i < partitions; ++i) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), i);
    if (rd_kafka_committed(rk.get(), list.get(), 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
    for (int i = 0; i < list->cnt; ++i)
      if (std::max<int64_t>(0, list->elems[i].offset) != ends[list->elems[i].partition]) return false;
    return true;
  };

  auto sink = audit::AuditSink::Create({.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_});
  ASSERT_TRUE(sink.ok());
  auto c = kafka::Consumer::Create({.bootstrap_servers = bootstrap_,
                                    .group_id = Group("audit-poison"),
                                    .topics = {topic},
                                    .max_batch = 20,
                                    .retry_backoff = absl::Milliseconds(50),
                                    .keep_undecodable = true});
  ASSERT_TRUE(c.ok()) << c.status();
  int failures = 0;
  // Bounded: a stalled sink ends the loop with the assertions below failing, not a hang.
  for (absl::Time end = absl::Now() + absl::Seconds(60); absl::Now() < end;) {
    auto n = (*c)->PollOnce([&](const std::vector<kafka::Record>& batch) -> absl::Status {
      auto r = (*sink)->Write(batch);
      return r.ok() ? absl::OkStatus() : r.status();
    });
    if (!n.ok()) ++failures;
    if (Scalar("SELECT count(*) FROM event_log") == "50" && committed_to_end()) break;
  }
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_log"), "50");
  if (Scalar("SELECT count(*) FROM event_log") != "50") {
    // Which records are missing, and where the group stands: enough to tell a record never
    // read from one read and not stored.
    std::string missing;
    {
      std::lock_guard lock(landed_mu);
      for (const auto& [id, at] : landed)
        if (id != poison.id() && Scalar(Cat("SELECT count(*) FROM event_log WHERE id = '", id, "'")) != "1")
          missing += Cat(" ", id, " at ", at, ";");
    }
    kafka::PartitionListHandle list(rd_kafka_topic_partition_list_new(partitions));
    for (int i = 0; i < partitions; ++i) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), i);
    std::string offsets;
    if (rd_kafka_committed(rk.get(), list.get(), 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
      for (int i = 0; i < list->cnt; ++i)
        offsets += Cat(" ", list->elems[i].partition, ": committed ", list->elems[i].offset, " end ",
                       ends[list->elems[i].partition], ";");
    const kafka::ConsumerStats stats = (*c)->stats();
    ADD_FAILURE() << "missing from event_log:" << missing << "\ngroup offsets:" << offsets << "\nconsumer: delivered "
                  << stats.delivered << ", batches " << stats.batches << ", handler failures " << stats.handler_failures
                  << ", undecodable " << stats.undecodable;
  }
  EXPECT_EQ(Scalar("SELECT count(DISTINCT tenant_id) FROM event_log"), "5");
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_dead_letter"), "2");
  EXPECT_EQ(Scalar(Cat("SELECT category FROM event_dead_letter WHERE event_id = '", poison.id(), "'")), "invalid");
  EXPECT_EQ(Scalar("SELECT reason FROM event_dead_letter WHERE event_id = ''"),
            Cat("value: not a sluice.v1.Envelope (", garbage.size(), " bytes)"));
  EXPECT_EQ(Scalar("SELECT length(record_value) || ' ' || get_byte(record_value, 0) FROM event_dead_letter"
                   " WHERE event_id = ''"),
            Cat(garbage.size(), " 255"));
  EXPECT_TRUE(committed_to_end());
}

}  // namespace
}  // namespace sluice
