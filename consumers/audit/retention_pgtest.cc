// Against the local PostgreSQL (dev/stack.sh up): event_log partitioned by month
// (0010_event_log_partitions.sql). Retention drops whole old partitions and nothing else;
// redeliveries still merge; the migration keeps rows stored under the old layout; two
// callers making the same partition at once both succeed.
#include "consumers/audit/retention.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/env.h"
#include "common/pg.h"
#include "common/strings.h"
#include "consumers/audit/audit_sink.h"
#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "tests/pg_schema.h"
#include "tests/subprocess.h"

namespace sluice::audit {
namespace {

using common::Cat;
using common::PgConnection;
using ::testing::UnorderedElementsAreArray;

constexpr absl::Duration kDay = absl::Hours(24);

// The partition name of an instant, as the migration's functions spell it.
std::string PartitionOf(absl::Time t) { return absl::FormatTime("event_log_p%Y_%m", t, absl::UTCTimeZone()); }

// The first instant after t's UTC month.
absl::Time MonthEnd(absl::Time t) {
  const absl::CivilMonth m(absl::ToCivilSecond(t, absl::UTCTimeZone()));
  return absl::FromCivil(absl::CivilSecond(m + 1), absl::UTCTimeZone());
}

// A valid event of `tenant` that occurred at `at`, as the consumer hands it over.
kafka::Record Event(const std::string& tenant, absl::Time at, int64_t offset) {
  v1::Envelope e = contracts::testing::Golden("kpi.changed");
  e.set_id(contracts::NewUuidV7());
  e.set_tenant_id(tenant);
  e.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(at));
  e.mutable_occurred_at()->set_nanos(123000);
  kafka::Record r;
  r.topic = "sluice.kpi";
  r.partition = 0;
  r.offset = offset;
  r.key = tenant;
  r.value = e.SerializeAsString();
  r.envelope = std::move(e);
  return r;
}

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = testing::MigratedSchema("it_retention_", schema_);
    ASSERT_TRUE(c.ok()) << "is the local stack up (dev/stack.sh up)? " << c.status();
    conn_.emplace(*std::move(c));
  }
  void TearDown() override {
    if (conn_) {
      EXPECT_TRUE(testing::DropSchema(*conn_, schema_).ok());
    }
  }
  std::string Scalar(const std::string& sql, const std::vector<std::optional<std::string>>& params = {}) {
    auto r = conn_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->rows() > 0 ? std::string(r->Get(0, 0)) : "<none>";
  }
  std::vector<std::string> Column(const std::string& sql, const std::vector<std::optional<std::string>>& params = {}) {
    auto r = conn_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status();
    std::vector<std::string> out;
    for (int i = 0; r.ok() && i < r->rows(); ++i) out.emplace_back(r->Get(i, 0));
    return out;
  }
  std::vector<std::string> Partitions() {
    return Column(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'event_log'::regclass ORDER BY 1");
  }
  // Waits (bounded) until backend `pid` waits for a lock.
  bool WaitUntilBlocked(const std::string& pid) {
    for (absl::Time end = absl::Now() + absl::Seconds(60); absl::Now() < end; absl::SleepFor(absl::Milliseconds(20)))
      if (Scalar("SELECT count(*) FROM pg_locks WHERE pid = $1::int AND NOT granted", {pid}) == "1") return true;
    return false;
  }
  bool Exists(const std::string& table) {
    return Scalar("SELECT to_regclass($1) IS NOT NULL", {Cat(schema_, ".", table)}) == "t";
  }

  std::string schema_;
  std::optional<PgConnection> conn_;
};

TEST_F(RetentionTest, SweepDropsOnlyWhollyExpiredPartitionsAndRedeliveriesStillMerge) {
  const absl::Time now = absl::Now();
  const absl::Duration retention = 365 * kDay;
  const absl::Time horizon = now - retention;
  // Events from now back to two and a half years ago, two tenants, a month or so apart.
  std::vector<kafka::Record> batch;
  for (int i = 0; i < 30; ++i) batch.push_back(Event(Cat("tenant-", i % 2), now - i * 31 * kDay, 100 + i));
  auto sink = AuditSink::Create({.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_});
  ASSERT_TRUE(sink.ok()) << sink.status();
  auto stored = (*sink)->Write(batch);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->stored, 30);

  std::set<std::string> months, expired_months, kept_ids;
  for (const auto& r : batch) {
    const absl::Time at = absl::FromUnixSeconds(r.envelope.occurred_at().seconds());
    months.insert(PartitionOf(at));
    if (MonthEnd(at) <= horizon)
      expired_months.insert(PartitionOf(at));
    else
      kept_ids.insert(r.envelope.id());
  }
  ASSERT_THAT(Partitions(), UnorderedElementsAreArray(months));
  ASSERT_GE(expired_months.size(), 10u);
  ASSERT_GE(kept_ids.size(), 12u);

  // A dry run lists them and drops nothing.
  auto listed = DropExpiredPartitions(*conn_, horizon, /*dry_run=*/true);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_THAT(*listed, UnorderedElementsAreArray(expired_months));
  EXPECT_EQ(Partitions().size(), months.size());

  std::vector<std::string> reported;
  auto sweeper = RetentionSweeper::Create({.pg_dsn = common::DefaultPgDsn(),
                                           .pg_schema = schema_,
                                           .retention = retention,
                                           .on_dropped = [&](const std::string& p) { reported.push_back(p); }});
  ASSERT_TRUE(sweeper.ok()) << sweeper.status();
  auto dropped = (*sweeper)->SweepOnce();
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_THAT(*dropped, UnorderedElementsAreArray(expired_months));
  EXPECT_EQ(reported, *dropped);
  for (const auto& p : expired_months) EXPECT_FALSE(Exists(p)) << p;
  std::set<std::string> kept_months;
  std::set_difference(months.begin(), months.end(), expired_months.begin(), expired_months.end(),
                      std::inserter(kept_months, kept_months.end()));
  EXPECT_THAT(Partitions(), UnorderedElementsAreArray(kept_months));
  // Every younger row is still there, and nothing else.
  EXPECT_THAT(Column("SELECT id::text FROM event_log"), UnorderedElementsAreArray(kept_ids));
  // A second sweep (another replica, the next interval) finds nothing to drop.
  auto again = (*sweeper)->SweepOnce();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->empty());

  // What ListEvents runs (gateway/event_log.cc, list_request.cc): per tenant, a time range,
  // keyset order.
  const std::string from = absl::FormatTime(absl::RFC3339_full, horizon - 60 * kDay, absl::UTCTimeZone());
  auto listed_rows = Column(
      "SELECT id::text FROM event_log WHERE TRUE AND tenant_id = ANY($1::text[]) AND occurred_at >= $2::timestamptz"
      " ORDER BY occurred_at, id LIMIT 1000",
      {"{tenant-0,tenant-1}", from});
  EXPECT_THAT(listed_rows, UnorderedElementsAreArray(kept_ids));

  // A redelivery of stored events (same tenant, id, occurred_at) changes nothing.
  std::vector<kafka::Record> young;
  for (const auto& r : batch)
    if (kept_ids.contains(r.envelope.id())) young.push_back(r);
  auto redelivered = (*sink)->Write(young);
  ASSERT_TRUE(redelivered.ok()) << redelivered.status();
  EXPECT_EQ(redelivered->stored, 0);
  EXPECT_EQ(redelivered->duplicates, static_cast<int64_t>(young.size()));
  EXPECT_EQ(redelivered->merged_batches, 1);
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_log"), std::to_string(kept_ids.size()));

  // An old event replayed after its partition was dropped: the sink still believes the
  // month is there, so the first try fails as retryable (nothing dead-lettered), and the
  // retry makes the partition again and stores it. The next sweep drops it again.
  const kafka::Record& old = batch.back();
  auto first = (*sink)->Write({old});
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable) << first.status();
  auto retried = (*sink)->Write({old});
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->stored, 1);
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_dead_letter"), "0");
  auto last = (*sweeper)->SweepOnce();
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_THAT(*last, ::testing::ElementsAre(PartitionOf(absl::FromUnixSeconds(old.envelope.occurred_at().seconds()))));
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_log"), std::to_string(kept_ids.size()));
}

TEST_F(RetentionTest, SweeperThreadSweepsOnStartAndStops) {
  const absl::Time old = absl::Now() - 400 * kDay;
  ASSERT_EQ(Scalar("SELECT event_log_ensure_partition($1::timestamptz)::text",
                   {absl::FormatTime(absl::RFC3339_full, old, absl::UTCTimeZone())}),
            PartitionOf(old));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> reported;
  auto sweeper = RetentionSweeper::Create({.pg_dsn = common::DefaultPgDsn(),
                                           .pg_schema = schema_,
                                           .retention = 30 * kDay,
                                           .interval = absl::Hours(1),
                                           .on_dropped = [&](const std::string& p) {
                                             std::lock_guard lock(mu);
                                             reported.push_back(p);
                                             cv.notify_all();
                                           }});
  ASSERT_TRUE(sweeper.ok()) << sweeper.status();
  (*sweeper)->Start();
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(60), [&] { return !reported.empty(); });
  }
  (*sweeper)->Stop();  // returns although the next sweep is an hour away
  EXPECT_THAT(reported, ::testing::ElementsAre(PartitionOf(old)));
  EXPECT_FALSE(Exists(PartitionOf(old)));
  EXPECT_FALSE(RetentionSweeper::Create({.pg_dsn = common::DefaultPgDsn(), .retention = absl::ZeroDuration()}).ok());
}

TEST_F(RetentionTest, SluicectlAuditRetentionDryRunsAndDrops) {
  const absl::Time old = absl::Now() - 400 * kDay;
  ASSERT_EQ(Scalar("SELECT event_log_ensure_partition($1::timestamptz)::text",
                   {absl::FormatTime(absl::RFC3339_full, old, absl::UTCTimeZone())}),
            PartitionOf(old));
  ASSERT_EQ(Scalar("SELECT event_log_ensure_partition(now())::text"), PartitionOf(absl::Now()));
  auto run = [&](std::vector<std::string> args) {
    const std::string log = Cat(::testing::TempDir(), "/retention-", schema_, ".out");
    args.insert(args.begin(), {"audit", "retention", "--pg-dsn", common::DefaultPgDsn(), "--pg-schema", schema_});
    pid_t pid = testing::Spawn(SLUICECTL, args, log);
    int status = -1;
    waitpid(pid, &status, 0);
    std::stringstream out;
    out << std::ifstream(log).rdbuf();
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, out.str());
  };
  auto [dry_rc, dry] = run({"--days", "90", "--dry-run"});
  EXPECT_EQ(dry_rc, 0) << dry;
  EXPECT_THAT(dry, ::testing::HasSubstr(Cat("would drop ", PartitionOf(old), "\n")));
  EXPECT_THAT(dry, ::testing::HasSubstr("1 partition(s) would be dropped"));
  EXPECT_TRUE(Exists(PartitionOf(old)));
  auto [rc, out] = run({"--days", "90"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr(Cat("dropped ", PartitionOf(old), "\n")));
  EXPECT_FALSE(Exists(PartitionOf(old)));
  EXPECT_TRUE(Exists(PartitionOf(absl::Now())));
  auto [bad_rc, bad] = run({"--days", "0"});
  EXPECT_NE(bad_rc, 0) << bad;
}

TEST_F(RetentionTest, TwoCallersMakingTheSameMonthAtOnceBothSucceed) {
  const std::string month = "2024-02-10T12:00:00Z";
  auto a = common::Connect(common::DefaultPgDsn(), schema_);
  auto b = common::Connect(common::DefaultPgDsn(), schema_);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string b_pid(b->Exec("SELECT pg_backend_pid()")->Get(0, 0));
  // A makes the partition in an open transaction (holding the lock creators take); B asks
  // for the same month meanwhile, sees no partition yet and waits.
  auto tx = common::PgTransaction::Begin(*a);
  ASSERT_TRUE(tx.ok());
  auto made = a->Exec("SELECT event_log_ensure_partition($1::timestamptz)::text", {month});
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(made->Get(0, 0), "event_log_p2024_02");
  absl::StatusOr<common::PgResult> b_made = absl::UnknownError("not run");
  std::thread other([&] { b_made = b->Exec("SELECT event_log_ensure_partition($1::timestamptz)::text", {month}); });
  // B cannot get past A's lock while A's transaction is open.
  EXPECT_TRUE(WaitUntilBlocked(b_pid));
  ASSERT_TRUE(tx->Commit().ok());
  other.join();
  ASSERT_TRUE(b_made.ok()) << b_made.status();
  EXPECT_EQ(b_made->Get(0, 0), "event_log_p2024_02");
  EXPECT_THAT(Partitions(), ::testing::ElementsAre("event_log_p2024_02"));
  // Two sweepers at once: one drops, the other waits, then finds nothing left.
  auto sweep_tx = common::PgTransaction::Begin(*a);
  ASSERT_TRUE(sweep_tx.ok());
  auto dropped = a->Exec("SELECT event_log_drop_expired('2025-01-01T00:00:00Z')");
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  ASSERT_EQ(dropped->rows(), 1);
  absl::StatusOr<std::vector<std::string>> b_dropped = absl::UnknownError("not run");
  std::thread sweeper(
      [&] { b_dropped = DropExpiredPartitions(*b, absl::FromUnixSeconds(1735689600), false, absl::Seconds(60)); });
  EXPECT_TRUE(WaitUntilBlocked(b_pid));
  ASSERT_TRUE(sweep_tx->Commit().ok());
  sweeper.join();
  ASSERT_TRUE(b_dropped.ok()) << b_dropped.status();
  EXPECT_TRUE(b_dropped->empty());
  EXPECT_TRUE(Partitions().empty());
}

TEST_F(RetentionTest, MigratingTheOldLayoutKeepsEveryRow) {
  // A schema at 0009 (event_log unpartitioned, keyed by tenant and id) with rows in it.
  ASSERT_TRUE(testing::DropSchema(*conn_, schema_).ok());
  ASSERT_TRUE(conn_->ExecScript(Cat("CREATE SCHEMA ", schema_, "; SET search_path TO ", schema_)).ok());
  namespace fs = std::filesystem;
  const fs::path all = fs::path(SLUICE_SOURCE_DIR) / "sql" / "migrations";
  const fs::path before = fs::temp_directory_path() / schema_;
  fs::create_directories(before);
  for (const auto& e : fs::directory_iterator(all))
    if (e.path().filename().string() < "0010") fs::copy_file(e.path(), before / e.path().filename());
  auto old = common::Migrate(*conn_, before.string());
  fs::remove_all(before);
  ASSERT_TRUE(old.ok()) << old.status();
  ASSERT_EQ(Scalar("SELECT relkind::text FROM pg_class WHERE oid = 'event_log'::regclass"), "r");
  // A sweep before 0010 says what is missing instead of passing PostgreSQL's error on.
  auto early = DropExpiredPartitions(*conn_, absl::Now(), /*dry_run=*/true);
  ASSERT_EQ(early.status().code(), absl::StatusCode::kFailedPrecondition) << early.status();
  EXPECT_THAT(std::string(early.status().message()), ::testing::HasSubstr("apply migration 0010"));
  // 3000 rows over 30 months and 3 tenants, one id under two tenants, every column set
  // for some.
  ASSERT_TRUE(
      conn_
          ->ExecScript("INSERT INTO event_log (id, type, source, tenant_id, occurred_at, received_at, payload,"
                       " correlation_id, causation_id, ttl_ms, metadata, topic, \"partition\", \"offset\", version,"
                       " traceparent)"
                       " SELECT gen_random_uuid(), 'kpi.changed', 'svc', 'tenant-' || (g % 3),"
                       "  timestamptz '2024-01-01T00:00:00Z' + g * interval '7 hours 13 minutes', now(),"
                       "  jsonb_build_object('n', g), CASE WHEN g % 2 = 0 THEN 'corr-' || g END, NULL,"
                       "  CASE WHEN g % 5 = 0 THEN g END, '{\"k\":\"v\"}', 'sluice.kpi', g % 4, g, '1',"
                       "  NULL FROM generate_series(1, 3000) g;"
                       "INSERT INTO event_log (id, type, source, tenant_id, occurred_at, payload, topic, \"partition\","
                       " \"offset\") SELECT '0190c2d2-0000-7000-8000-000000000001', 'kpi.changed', 'svc', t,"
                       "  '2023-12-31T23:59:59.999999Z', '{}', 'sluice.kpi', 0, 1 FROM unnest(ARRAY['a', 'b']) t")
          .ok());
  const std::string digest_sql =
      "SELECT count(*) || ':' || md5(string_agg(e::text, '|' ORDER BY tenant_id, id))"
      " FROM (SELECT * FROM event_log) e";
  const std::string digest = Scalar(digest_sql);
  ASSERT_THAT(digest, ::testing::StartsWith("3002:"));

  auto migrated = common::Migrate(*conn_, all.string());
  ASSERT_TRUE(migrated.ok()) << migrated.status();
  EXPECT_THAT(migrated->applied, ::testing::Contains("0010_event_log_partitions.sql"));
  EXPECT_EQ(Scalar("SELECT relkind::text FROM pg_class WHERE oid = 'event_log'::regclass"), "p");
  EXPECT_EQ(Scalar(digest_sql), digest);  // every row, every column, same column order
  EXPECT_EQ(Scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = 'event_log'::regclass"),
            Scalar("SELECT count(DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')) FROM event_log"));
  EXPECT_TRUE(Exists("event_log_p2023_12"));
  EXPECT_FALSE(Exists("event_log_unpartitioned"));
  EXPECT_EQ(Scalar("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'event_log_pkey'"
                   " AND conrelid = 'event_log'::regclass"),
            "PRIMARY KEY (tenant_id, id, occurred_at)");
  EXPECT_THAT(
      Column("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'event_log'::regclass"),
      UnorderedElementsAreArray({"event_log_pkey", "event_log_tenant_time", "event_log_tenant_type_time",
                                 "event_log_tenant_source_time", "event_log_correlation", "event_log_payload_path"}));

  // The sink stores into the migrated table, and a migrated row delivered again merges.
  v1::Envelope e = contracts::testing::Golden("kpi.changed");
  e.set_id("0190c2d2-0000-7000-8000-000000000001");
  e.set_tenant_id("a");
  e.mutable_occurred_at()->set_seconds(1704067199);  // 2023-12-31T23:59:59.999999Z
  e.mutable_occurred_at()->set_nanos(999999000);
  kafka::Record again;
  again.topic = "sluice.kpi";
  again.offset = 1;
  again.envelope = e;
  auto sink = AuditSink::Create({.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_});
  ASSERT_TRUE(sink.ok()) << sink.status();
  auto r = (*sink)->Write({again, Event("a", absl::Now(), 2)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stored, 1);
  EXPECT_EQ(r->duplicates, 1);
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_log"), "3003");
}

}  // namespace
}  // namespace sluice::audit
