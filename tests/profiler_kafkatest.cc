// sluice-profiler and sluice-scheduler against the real local PostgreSQL and Kafka:
// the policy, job-table dedup, lease takeover after SIGKILL, scores on a seeded table,
// failures that execute nothing, degradation, the scheduler's exactly-once emission, and
// the confinement: bindings outside the allow-list and events from sources the catalog
// does not list are refused before anything is queued or read.
#include "consumers/profiler/profiler.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "common/pg.h"
#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "contracts/validate.h"
#include "kafka/consumer.h"
#include "producers/relay/relay.h"
#include "producers/scheduler/scheduler.h"
#include "tests/kafka_fixture.h"
#include "tests/subprocess.h"

namespace sluice {
namespace {

using common::Cat;
using common::PgConnection;
using ::testing::HasSubstr;

constexpr char kTenant[] = "tenant-acme";

class ProfilerTest : public testing::KafkaTest {
 protected:
  void SetUp() override {
    KafkaTest::SetUp();
    if (HasFatalFailure()) return;
    schema_ = Cat("it_prof_", std::random_device{}());
    src_ = Cat(schema_, "_src");
    auto c = Connect();
    ASSERT_TRUE(c.ok()) << c.status();
    conn_.emplace(*std::move(c));
    // The governance tables go to schema_; tables the tests create unqualified go to src_
    // (first in the search_path), the schema the profiler is allowed to read.
    ASSERT_TRUE(conn_->ExecScript(Cat("SET search_path TO ", schema_)).ok());
    auto m = common::Migrate(*conn_, std::string(SLUICE_SOURCE_DIR) + "/sql/migrations");
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_TRUE(conn_->ExecScript(Cat("SET search_path TO ", src_, ", ", schema_)).ok());
  }
  void TearDown() override {
    profilers_.clear();
    if (conn_) {
      EXPECT_TRUE(
          conn_->ExecScript(Cat("DROP SCHEMA IF EXISTS ", schema_, ", ", src_, ", ", schema_, "_other CASCADE")).ok());
    }
    KafkaTest::TearDown();
  }
  absl::StatusOr<PgConnection> Connect() {
    auto c = PgConnection::Connect(common::DefaultPgDsn());
    if (!c.ok()) return c.status();
    if (auto s = c->ExecScript(Cat("CREATE SCHEMA IF NOT EXISTS ", schema_, "; CREATE SCHEMA IF NOT EXISTS ", src_,
                                   "; SET search_path TO ", src_, ", ", schema_));
        !s.ok())
      return s;
    return c;
  }
  profiler::ProfilerConfig Config() {
    profiler::ProfilerConfig pc;
    pc.pg_dsn = common::DefaultPgDsn();
    pc.pg_schema = schema_;
    pc.lease = absl::Seconds(3);
    pc.heartbeat = absl::Milliseconds(500);
    pc.retry_backoff = absl::Milliseconds(100);
    pc.allow_bindings = {Cat(kTenant, "=", src_, ".*")};
    return pc;
  }
  profiler::Profiler& NewProfiler(profiler::ProfilerConfig pc) {
    auto p = profiler::Profiler::Create(std::move(pc), registry_, *catalog_);
    EXPECT_TRUE(p.ok()) << p.status();
    profilers_.push_back(*std::move(p));
    return *profilers_.back();
  }
  profiler::Profiler& Default() { return profilers_.empty() ? NewProfiler(Config()) : *profilers_.front(); }

  std::string Scalar(const std::string& sql, const std::vector<std::optional<std::string>>& params = {}) {
    auto r = conn_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status();
    if (!r.ok() || r->rows() == 0) return "<none>";
    return r->IsNull(0, 0) ? "<null>" : std::string(r->Get(0, 0));
  }
  void Exec(const std::string& sql) { ASSERT_TRUE(conn_->ExecScript(sql).ok()) << sql; }

  // A metadata entity bound to `table` of this test's source schema; returns its id.
  std::string Entity(const std::string& key, const std::string& tier, std::optional<std::string> table,
                     const std::string& rules = "[]") {
    return BoundTo(key, tier, table ? std::optional(src_) : std::nullopt, table, rules);
  }
  std::string BoundTo(const std::string& key, const std::string& tier, std::optional<std::string> schema,
                      std::optional<std::string> table, const std::string& rules = "[]") {
    return Scalar(
        "INSERT INTO mdm_global_metadata (tenant_id, canonical_key, label, tier, binding_schema, binding_table, "
        "column_rules)"
        " VALUES ($1, $2, $2, $3, $4, $5, $6::jsonb) RETURNING id::text",
        {kTenant, key, tier, schema, table, rules});
  }
  v1::Envelope Due(const std::string& entity_id, v1::ProfileReason reason = v1::PROFILE_REASON_SCHEDULE,
                   v1::Priority priority = v1::PRIORITY_HIGH) {
    v1::Envelope e;
    e.set_id(contracts::NewUuidV7());
    e.set_tenant_id(kTenant);
    e.set_source("kernel.scheduler");
    e.set_correlation_id(contracts::NewUuidV7());
    auto* p = e.mutable_profile_due();
    p->set_entity_type(v1::ENTITY_TYPE_METADATA);
    p->set_entity_id(entity_id);
    p->set_canonical_key("k");
    p->set_tier(v1::TIER_1);
    p->set_priority(priority);
    p->set_reason(reason);
    contracts::FillDefaults(e, *catalog_);
    return e;
  }
  v1::Envelope Refreshed(const std::string& key, int64_t rows) {
    v1::Envelope e;
    e.set_id(contracts::NewUuidV7());
    e.set_tenant_id(kTenant);
    e.set_source("etl.pipeline");
    auto* d = e.mutable_data_refreshed();
    d->set_entity_urn(key);
    d->mutable_service()->set_schema(src_);
    d->mutable_service()->set_table("ignored");
    d->set_rows_affected(rows);
    d->set_refresh_type(v1::REFRESH_TYPE_INCREMENTAL);
    *d->mutable_completed_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
    d->mutable_triggered_by()->set_actor_id("etl-job-7");
    d->mutable_triggered_by()->set_actor_type(v1::ACTOR_TYPE_SYSTEM);
    contracts::FillDefaults(e, *catalog_);
    return e;
  }
  v1::Envelope Approved(const std::string& entity_id, v1::Tier tier) {
    v1::Envelope e;
    e.set_id(contracts::NewUuidV7());
    e.set_tenant_id(kTenant);
    e.set_source("metadata-studio.approval");
    auto* m = e.mutable_metadata_approved();
    m->set_approval_id(contracts::NewUuidV7());
    m->set_entity_id(entity_id);
    m->set_canonical_key("k");
    m->set_tier(tier);
    m->mutable_approved_by()->set_actor_id("steward-1");
    m->mutable_approved_by()->set_actor_type(v1::ACTOR_TYPE_HUMAN);
    *m->mutable_approved_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
    contracts::FillDefaults(e, *catalog_);
    return e;
  }
  // Handles one event and runs what it queued, as the consumer's handler does.
  profiler::TriggerOutcome Handle(const v1::Envelope& e, profiler::Profiler* p = nullptr) {
    p = p ? p : &Default();
    auto out = p->HandleEvent(e);
    EXPECT_TRUE(out.ok()) << out.status();
    if (out.ok() && out->queued) {
      EXPECT_TRUE(p->RunReadyJob(out->job_id).ok());
    }
    return out.ok() ? *out : profiler::TriggerOutcome{};
  }
  // Envelopes written to the outbox, of `type`, in order.
  std::vector<v1::Envelope> Outbox(const std::string& type) {
    auto r = conn_->Exec("SELECT envelope FROM event_outbox WHERE event_type = $1 ORDER BY id", {type});
    EXPECT_TRUE(r.ok());
    std::vector<v1::Envelope> out;
    for (int i = 0; r.ok() && i < r->rows(); ++i) {
      size_t n = 0;
      unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r->raw(), i, 0)), &n);
      v1::Envelope e;
      EXPECT_TRUE(e.ParseFromArray(raw, static_cast<int>(n)));
      PQfreemem(raw);
      out.push_back(e);
    }
    return out;
  }
  double Counter(const std::string& family, const std::string& label, const std::string& value) {
    for (const auto& f : registry_.Collect()) {
      if (f.name != family) continue;
      for (const auto& m : f.metric)
        for (const auto& l : m.label)
          if (l.name == label && l.value == value) return m.counter.value;
    }
    return 0;
  }
  int Profiles(const std::string& entity_id) {
    return std::stoi(Scalar("SELECT count(*) FROM mdm_profile WHERE entity_id = $1::uuid", {entity_id}));
  }

  std::string schema_;  // the governance tables
  std::string src_;     // the tables profiled
  std::optional<PgConnection> conn_;
  prometheus::Registry registry_;
  std::vector<std::unique_ptr<profiler::Profiler>> profilers_;
};

TEST_F(ProfilerTest, PolicySkipsAreRecordedCountedAndRedeliveriesDoNothing) {
  Exec(
      "CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric); INSERT INTO orders SELECT g, g FROM "
      "generate_series(1, 100) g");
  const std::string bound = Entity("orders", "tier1", "orders");
  const std::string unbound = Entity("no_table", "tier1", std::nullopt);
  const std::string tier3 = Entity("orders_t3", "tier3", "orders");

  EXPECT_EQ(Handle(Due(unbound)).skip_reason, "no_binding");
  EXPECT_EQ(Handle(Due("0190a0c2-0000-7000-8000-00000000dead")).skip_reason, "entity_not_found");
  EXPECT_EQ(Handle(Approved(tier3, v1::TIER_3)).skip_reason, "tier_not_eligible");
  EXPECT_EQ(Handle(Refreshed("nothing_bound_here", 10)).skip_reason, "entity_not_found");
  // A record that is no trigger at all (mislabelled) is skipped, not retried forever.
  EXPECT_EQ(Handle(contracts::testing::Golden("kpi.changed")).skip_reason, "not_a_trigger");

  // First due event profiles; a scheduled one within the cooldown does not, nor a tier1
  // approval that changes nothing the profile measures (a repeat, which the cooldown
  // guards); MANUAL and QUALITY_DROP do.
  auto first = Due(bound);
  first.set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_TRUE(Handle(first).queued);
  EXPECT_EQ(Profiles(bound), 1);
  EXPECT_EQ(Handle(Due(bound)).skip_reason, "cooldown");
  EXPECT_EQ(Handle(Approved(bound, v1::TIER_1)).skip_reason, "cooldown");
  EXPECT_TRUE(Handle(Due(bound, v1::PROFILE_REASON_MANUAL)).queued);
  EXPECT_TRUE(Handle(Due(bound, v1::PROFILE_REASON_QUALITY_DROP)).queued);
  EXPECT_EQ(Profiles(bound), 3);
  // An approved change of the column rules is structural: it profiles within the
  // cooldown, and that profile records the new definition, so a repeat is guarded again.
  Exec(Cat("UPDATE mdm_global_metadata SET column_rules = '[{\"column\": \"amount\", \"min\": 0}]' WHERE id = '", bound,
           "'"));
  EXPECT_TRUE(Handle(Approved(bound, v1::TIER_1)).queued);
  EXPECT_EQ(Handle(Approved(bound, v1::TIER_1)).skip_reason, "cooldown");
  EXPECT_EQ(Scalar("SELECT count(DISTINCT definition_sha256) FROM mdm_profile WHERE entity_id = $1::uuid", {bound}),
            "2");
  EXPECT_EQ(Profiles(bound), 4);
  // A normal-priority due event profiles what was never profiled, then waits for the
  // tier's stale threshold (tier3: 30 days).
  EXPECT_TRUE(Handle(Due(tier3, v1::PROFILE_REASON_SCHEDULE, v1::PRIORITY_NORMAL)).queued);
  auto not_stale = Handle(Due(tier3, v1::PROFILE_REASON_SCHEDULE, v1::PRIORITY_NORMAL));
  EXPECT_EQ(not_stale.skip_reason, "not_stale");
  EXPECT_THAT(not_stale.detail, HasSubstr("tier3 is stale after 30 days"));
  Exec(Cat("UPDATE mdm_profile SET profiled_at = now() - interval '30 days 1 minute' WHERE entity_id = '", tier3, "'"));
  EXPECT_TRUE(Handle(Due(tier3, v1::PROFILE_REASON_SCHEDULE, v1::PRIORITY_NORMAL)).queued);
  EXPECT_EQ(Profiles(tier3), 2);

  // data.refreshed (by canonical key): 10 of 100 rows is not more than 10%; 11 is.
  EXPECT_EQ(Handle(Refreshed("orders", 10)).skip_reason, "refresh_below_threshold");
  EXPECT_TRUE(Handle(Refreshed("orders", 11)).queued);
  EXPECT_EQ(Profiles(bound), 5);
  // ... and older than 24 hours profiles whatever the row count.
  Exec(Cat("UPDATE mdm_profile SET profiled_at = now() - interval '25 hours' WHERE entity_id = '", bound, "'"));
  EXPECT_TRUE(Handle(Refreshed("orders", 0)).queued);
  EXPECT_EQ(Profiles(bound), 6);

  // A redelivered event finds its record and does nothing.
  auto again = Handle(first);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(Profiles(bound), 6);
  // Another tenant's event with the same id is its own event, not a redelivery (and the
  // entity of this tenant is not its to profile).
  v1::Envelope foreign = first;
  foreign.set_tenant_id("tenant-other");
  auto theirs = Handle(foreign);
  EXPECT_FALSE(theirs.duplicate);
  EXPECT_EQ(theirs.skip_reason, "entity_not_found");

  EXPECT_EQ(Scalar("SELECT skip_reason FROM mdm_profile_trigger WHERE entity_id = $1::uuid", {unbound}), "no_binding");
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_trigger WHERE decision = 'skipped'"), "10");
  for (const char* reason :
       {"no_binding", "entity_not_found", "tier_not_eligible", "refresh_below_threshold", "not_stale"})
    EXPECT_EQ(Counter("sluice_profiler_skips_total", "reason", reason),
              reason == std::string("entity_not_found") ? 3 : 1)
        << reason;
  EXPECT_EQ(Counter("sluice_profiler_skips_total", "reason", "cooldown"), 3);
  EXPECT_EQ(Counter("sluice_profiler_events_total", "outcome", "duplicate"), 1);
  // Job history is kept: eight finished jobs, none active.
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_job WHERE status = 'succeeded'"), "8");
  auto completed = Outbox("metadata.profile.completed");
  ASSERT_EQ(completed.size(), 8u);
  EXPECT_EQ(completed[0].correlation_id(), first.correlation_id());
  EXPECT_EQ(completed[0].causation_id(), first.id());
  EXPECT_EQ(completed[0].source(), "agent.profiler");
  // The job keeps the trigger's trace; its outcome is a span of that trace; a trigger
  // without a trace gives an outcome without one.
  EXPECT_EQ(Scalar("SELECT traceparent FROM mdm_profile_job WHERE trigger_event_id = $1", {first.id()}),
            first.traceparent());
  EXPECT_EQ(completed[0].traceparent().substr(0, 36), first.traceparent().substr(0, 36));
  EXPECT_NE(completed[0].traceparent(), first.traceparent());
  EXPECT_TRUE(contracts::IsValidTraceparent(completed[0].traceparent()));
  EXPECT_EQ(completed[1].traceparent(), "");
}

TEST_F(ProfilerTest, FiftyConcurrentDueEventsForOneEntityRunOneProfile) {
  Exec("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g");
  const std::string id = Entity("big", "tier1", "big", R"([{"column":"v","regex":"^[0-9a-f]{32}$"}])");
  std::vector<v1::Envelope> events;
  for (int i = 0; i < 50; ++i) events.push_back(Due(id));
  // Five workers, each with its own connections, ten events each, all at once.
  for (int w = 0; w < 5; ++w) {
    auto pc = Config();
    pc.worker_id = Cat("w", w);
    NewProfiler(pc);
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int w = 0; w < 5; ++w)
    threads.emplace_back([&, w] {
      std::vector<kafka::Record> batch;
      for (int i = w; i < 50; i += 5) batch.push_back({.envelope = events[i]});
      if (!profilers_[w]->HandleBatch(batch).ok()) failures++;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Profiles(id), 1);
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_job"), "1");
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_trigger WHERE decision = 'queued'"), "1");
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_trigger WHERE skip_reason IN ('job_in_flight', 'cooldown')"),
            "49");
  EXPECT_EQ(Outbox("metadata.profile.completed").size(), 1u);
}

TEST_F(ProfilerTest, ScoresMatchHandComputedValues) {
  // 20 rows. Nulls: email 2, code 4, amount 0, id 0 -> 6 of 80 cells.
  // email (unique, regex): 18 non-null, 3 of them repeat an earlier value -> 15 distinct;
  //   2 fail the regex. code (allowed EUR/USD, max_length 3): 16 non-null, 3 not allowed
  //   ("GBP", "EURO", "usd"), 1 too long ("EURO", already counted) -> 3 invalid.
  // amount (range 0..100): 20 non-null, 2 out of range (-1, 101).
  Exec(R"(CREATE TABLE seeded (id int PRIMARY KEY, email text, code text, amount numeric);
    INSERT INTO seeded SELECT g,
      CASE WHEN g IN (1, 2) THEN NULL WHEN g IN (3, 4, 5) THEN 'dup' || g || '@x.io' ELSE 'u' || g || '@x.io' END,
      CASE WHEN g <= 4 THEN NULL WHEN g = 5 THEN 'GBP' WHEN g = 6 THEN 'EURO' WHEN g = 7 THEN 'usd' WHEN g % 2 = 0 THEN 'EUR' ELSE 'USD' END,
      CASE WHEN g = 8 THEN -1 WHEN g = 9 THEN 101 ELSE g END
    FROM generate_series(1, 20) g;
    UPDATE seeded SET email = 'dup3@x.io' WHERE id IN (10, 11);  -- two more copies of row 3
    UPDATE seeded SET email = 'dup4@x.io' WHERE id = 12;         -- one more copy of row 4
    UPDATE seeded SET email = 'not-an-email' WHERE id IN (13, 14);
    UPDATE seeded SET email = 'u15@x.io' WHERE id = 15;)");
  // email non-null 18; values: dup3 x3, dup4 x2, dup5, not-an-email x2, u6..u9, u15 x1, u16..u20
  // distinct = dup3, dup4, dup5, not-an-email, u6, u7, u8, u9, u15, u16, u17, u18, u19, u20 = 14
  // duplicates = 18 - 14 = 4; regex failures = 2 (not-an-email x2).
  const std::string rules = R"([{"column":"email","unique":true,"regex":"^[^@]+@[^@]+\\.[a-z]+$"},
      {"column":"code","allowed_values":["EUR","USD"],"max_length":3},
      {"column":"amount","min":0,"max":100},{"column":"id","unique":true}])";
  const std::string id = Entity("seeded", "tier1", "seeded", rules);
  ASSERT_TRUE(Handle(Due(id)).queued);
  auto r = conn_->Exec(
      "SELECT row_count, completeness, uniqueness, validity, quality_score, quality_grade, method,"
      " details->'columns'->1->>'duplicates', details->'columns'->2->'violations'->>'max_length',"
      " details->'columns'->3->>'min', details->'columns'->3->>'max', details->'columns'->0->>'uniqueness_method'"
      " FROM mdm_profile WHERE entity_id = $1::uuid",
      {id});
  ASSERT_TRUE(r.ok() && r->rows() == 1) << r.status();
  const double completeness = 100.0 * (80 - 6) / 80;        // 92.5
  const double uniqueness = 100.0 * (14 + 20) / (18 + 20);  // email + id (unique index)
  const double validity = 100.0 * ((18 - 2) + (16 - 3) + (20 - 2)) / (18 + 16 + 20);
  const double score = 0.4 * completeness + 0.3 * uniqueness + 0.3 * validity;
  EXPECT_EQ(r->Get(0, 0), "20");
  EXPECT_NEAR(std::stod(std::string(r->Get(0, 1))), completeness, 1e-9);
  EXPECT_NEAR(std::stod(std::string(r->Get(0, 2))), uniqueness, 1e-9);
  EXPECT_NEAR(std::stod(std::string(r->Get(0, 3))), validity, 1e-9);
  EXPECT_NEAR(std::stod(std::string(r->Get(0, 4))), score, 1e-9);
  EXPECT_EQ(r->Get(0, 5), "B");  // 0.4*92.5 + 0.3*89.47 + 0.3*87.04 = 89.95
  EXPECT_EQ(r->Get(0, 6), "single_scan_v1+distinct");
  EXPECT_EQ(r->Get(0, 7), "4");
  EXPECT_EQ(r->Get(0, 8), "1");
  EXPECT_EQ(r->Get(0, 9), "-1");
  EXPECT_EQ(r->Get(0, 10), "101");
  EXPECT_EQ(r->Get(0, 11), "unique_index");
  auto done = Outbox("metadata.profile.completed");
  ASSERT_EQ(done.size(), 1u);
  EXPECT_NEAR(done[0].profile_completed().quality_score(), score, 1e-9);
  EXPECT_EQ(done[0].profile_completed().quality_grade(), v1::QUALITY_GRADE_B);
  EXPECT_EQ(done[0].profile_completed().row_count(), 20);
}

TEST_F(ProfilerTest, MissingTableAndInjectedIdentifiersFailAndExecuteNothing) {
  Exec("CREATE TABLE victim (id int); INSERT INTO victim VALUES (1)");
  const std::string missing = Entity("missing", "tier1", "no_such_table");
  const std::string injected = Entity("injected", "tier1", "victim\"; DROP TABLE victim; --");
  const std::string bad_column =
      Entity("bad_column", "tier1", "victim", R"([{"column":"id; DROP TABLE victim","unique":true}])");
  // While the table is locked, any statement touching it would wait and time out: the
  // errors below (not STATEMENT_TIMEOUT) show that nothing ran against it.
  auto locker = Connect();
  ASSERT_TRUE(locker.ok());
  ASSERT_TRUE(locker->ExecScript("BEGIN; LOCK TABLE victim IN ACCESS EXCLUSIVE MODE").ok());
  auto pc = Config();
  pc.profile.statement_timeout = absl::Seconds(1);
  auto& p = NewProfiler(pc);
  for (const auto& id : {missing, injected, bad_column}) ASSERT_TRUE(Handle(Due(id), &p).queued);
  ASSERT_TRUE(locker->ExecScript("COMMIT").ok());

  EXPECT_EQ(Scalar("SELECT count(*) FROM victim"), "1");
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile"), "0");
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_job WHERE status = 'failed' AND attempts = 1"), "3");
  auto failed = Outbox("metadata.profile.failed");
  ASSERT_EQ(failed.size(), 3u);
  EXPECT_EQ(failed[0].profile_failed().error_code(), "TABLE_NOT_FOUND");
  EXPECT_EQ(failed[1].profile_failed().error_code(), "TABLE_NOT_FOUND");
  EXPECT_EQ(failed[2].profile_failed().error_code(), "COLUMN_NOT_FOUND");
  for (const auto& f : failed) {
    EXPECT_FALSE(f.profile_failed().retryable());
    EXPECT_EQ(f.profile_failed().attempt(), 1);
    EXPECT_FALSE(f.profile_failed().job_id().empty());
  }
  EXPECT_THAT(failed[0].profile_failed().error_message(), HasSubstr("no_such_table"));
}

TEST_F(ProfilerTest, RetryableFailureIsRetriedWithBackoffAndKeepsItsError) {
  Exec("CREATE TABLE slow (id int); INSERT INTO slow VALUES (1)");
  const std::string id = Entity("slow", "tier1", "slow");
  auto pc = Config();
  pc.profile.statement_timeout = absl::Milliseconds(300);
  auto& p = NewProfiler(pc);
  auto locker = Connect();
  ASSERT_TRUE(locker.ok());
  ASSERT_TRUE(locker->ExecScript("BEGIN; LOCK TABLE slow IN ACCESS EXCLUSIVE MODE").ok());
  auto out = p.HandleEvent(Due(id));
  ASSERT_TRUE(out.ok() && out->queued);
  auto ran = p.RunReadyJob(out->job_id);
  ASSERT_TRUE(ran.ok() && *ran) << ran.status();
  EXPECT_EQ((*ran)->status, "retry");
  EXPECT_EQ(Scalar("SELECT status || ' ' || attempts || ' ' || last_error_code FROM mdm_profile_job"),
            "pending 1 STATEMENT_TIMEOUT");
  auto failed = Outbox("metadata.profile.failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_TRUE(failed[0].profile_failed().retryable());
  ASSERT_TRUE(locker->ExecScript("COMMIT").ok());
  absl::SleepFor(absl::Milliseconds(200));  // the back-off
  ran = p.RunReadyJob();
  ASSERT_TRUE(ran.ok() && *ran);
  EXPECT_EQ((*ran)->status, "succeeded");
  EXPECT_EQ(Scalar("SELECT status || ' ' || attempts || ' ' || last_error_code FROM mdm_profile_job"),
            "succeeded 2 STATEMENT_TIMEOUT");
  EXPECT_EQ(Profiles(id), 1);
}

TEST_F(ProfilerTest, DegradingTheTableEmitsDataQualityDegradedWithBothScores) {
  Exec(
      "CREATE TABLE customers (id int PRIMARY KEY, email text, country text);"
      "INSERT INTO customers SELECT g, 'c' || g || '@x.io', 'DE' FROM generate_series(1, 1000) g");
  const std::string id =
      Entity("customers", "tier1", "customers",
             R"([{"column":"email","regex":"@"},{"column":"country","allowed_values":["DE","FR"]}])");
  ASSERT_TRUE(Handle(Due(id)).queued);
  ASSERT_TRUE(Handle(Refreshed("customers", 5)).skip_reason == "refresh_below_threshold");
  Exec("UPDATE customers SET email = NULL, country = 'XX' WHERE id <= 600");
  auto refresh = Refreshed("customers", 600);
  ASSERT_TRUE(Handle(refresh).queued);
  auto deg = Outbox("data.quality.degraded");
  ASSERT_EQ(deg.size(), 1u);
  const auto& d = deg[0].data_quality_degraded();
  EXPECT_DOUBLE_EQ(d.previous_score(), 100);
  // completeness 1 - 600/3000 = 80; validity: email 400/400, country 400/1000 -> 800/1400
  const double now = 0.4 * 80 + 0.3 * 100 + 0.3 * (100.0 * 800 / 1400);
  EXPECT_NEAR(d.current_score(), now, 1e-9);
  EXPECT_NEAR(d.drop_percent(), 100 - now, 1e-9);
  EXPECT_EQ(d.previous_grade(), v1::QUALITY_GRADE_A);
  EXPECT_EQ(d.current_grade(), profiler::GradeFor(now));
  auto completed = Outbox("metadata.profile.completed");
  ASSERT_EQ(completed.size(), 2u);
  EXPECT_EQ(d.profile_id(), completed[1].profile_completed().profile_id());
  EXPECT_EQ(d.previous_profile_id(), completed[0].profile_completed().profile_id());
  EXPECT_EQ(deg[0].causation_id(), completed[1].id());
  EXPECT_EQ(deg[0].correlation_id(), refresh.id());  // the refresh had none: the chain starts at it
  EXPECT_EQ(completed[1].profile_completed().triggered_by().actor_id(), "etl-job-7");
  // A small improvement or a small drop emits nothing more.
  Exec("UPDATE customers SET email = 'back@x.io' WHERE id <= 10");
  ASSERT_TRUE(Handle(Due(id, v1::PROFILE_REASON_MANUAL)).queued);
  EXPECT_EQ(Outbox("data.quality.degraded").size(), 1u);

  // The quality metrics follow: the latest score, three completed runs, one degradation,
  // and full tier1 compliance (the one tier1 entry was profiled just now).
  double score = -1, compliance = -1;
  ASSERT_TRUE(profilers_[0]->UpdateComplianceMetrics().ok());
  for (const auto& f : registry_.Collect()) {
    for (const auto& m : f.metric) {
      std::map<std::string, std::string> labels;
      for (const auto& l : m.label) labels[l.name] = l.value;
      if (f.name == "metadata_quality_score" && labels["canonical_key"] == "customers" && labels["tier"] == "tier1" &&
          labels["tenant_id"] == kTenant)
        score = m.gauge.value;
      if (f.name == "metadata_tier1_compliance_ratio" && labels["tenant_id"] == kTenant) compliance = m.gauge.value;
    }
  }
  auto all = Outbox("metadata.profile.completed");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_NEAR(score, all[2].profile_completed().quality_score(), 1e-9);
  EXPECT_EQ(Counter("metadata_profile_runs_total", "status", "completed"), 3);
  EXPECT_EQ(Counter("metadata_quality_degraded_total", "tier", "tier1"), 1);
  EXPECT_EQ(Counter("metadata_quality_degraded_total", "canonical_key", "customers"), 1);
  EXPECT_EQ(compliance, 1.0);
  // An entry never profiled halves it.
  Entity("orders", "tier1", "orders", "[]");
  ASSERT_TRUE(profilers_[0]->UpdateComplianceMetrics().ok());
  for (const auto& f : registry_.Collect()) {
    if (f.name != "metadata_tier1_compliance_ratio") continue;
    for (const auto& m : f.metric) EXPECT_EQ(m.gauge.value, 0.5);
  }
}

pid_t StartProfiler(const std::vector<std::string>& args, const std::string& log) {
  return testing::Spawn(SLUICE_PROFILER, args, log);
}

TEST_F(ProfilerTest, SigkilledWorkerMidProfileLosesItsLeaseAndAnotherFinishesOnce) {
  Exec("CREATE TABLE locked AS SELECT g AS id FROM generate_series(1, 1000) g");
  const std::string id = Entity("locked", "tier1", "locked");
  // The table is locked, so worker A's scan waits: A is mid-profile, holding the lease.
  auto locker = Connect();
  ASSERT_TRUE(locker.ok());
  ASSERT_TRUE(locker->ExecScript("BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE").ok());

  auto producer = kafka::Producer::Create({.bootstrap_servers = bootstrap_}, *catalog_);
  ASSERT_TRUE(producer.ok());
  auto due = Due(id);
  ASSERT_TRUE((*producer)->SendSync(due).ok());

  const std::vector<std::string> args{"--pg-schema",      schema_,
                                      "--topic-prefix",   prefix_,
                                      "--group",          Group("profiler"),
                                      "--lease-s",        "2",
                                      "--heartbeat-s",    "0.5",
                                      "--metrics-listen", "",
                                      "--log-level",      "info",
                                      "--allow-binding",  Cat(kTenant, "=", src_, ".*")};
  auto with_id = [&](const std::string& w) {
    auto a = args;
    a.insert(a.end(), {"--worker-id", w});
    return a;
  };
  const std::string log_dir = ::testing::TempDir();
  pid_t a = StartProfiler(with_id("worker-a"), log_dir + "/profiler-a.log");
  std::string state;
  for (int i = 0; i < 300 && state != "running worker-a"; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    state = Scalar("SELECT status || ' ' || coalesce(worker_id, '') FROM mdm_profile_job");
  }
  ASSERT_EQ(state, "running worker-a");
  absl::SleepFor(absl::Seconds(1));  // a heartbeat or two renews the lease meanwhile
  ASSERT_EQ(kill(a, SIGKILL), 0);
  waitpid(a, nullptr, 0);
  ASSERT_TRUE(locker->ExecScript("COMMIT").ok());

  pid_t b = StartProfiler(with_id("worker-b"), log_dir + "/profiler-b.log");
  for (int i = 0; i < 300 && state.rfind("succeeded", 0) != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    state = Scalar("SELECT status || ' ' || coalesce(worker_id, '') || ' ' || attempts FROM mdm_profile_job");
  }
  EXPECT_EQ(state, "succeeded worker-b 2");
  kill(b, SIGTERM);
  int status = 0;
  waitpid(b, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "graceful stop on SIGTERM";
  EXPECT_EQ(Profiles(id), 1);
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_job"), "1");
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_trigger"), "1");

  // sluice-relay's engine publishes the outcome; it reaches Kafka with the trigger's ids.
  auto relay = relay::Relay::Create({.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_}, **producer);
  ASSERT_TRUE(relay.ok());
  ASSERT_EQ(*(*relay)->RunOnce(), 1);
  auto consumer = kafka::Consumer::Create({.bootstrap_servers = bootstrap_,
                                           .group_id = Group("reader"),
                                           .topics = {catalog_->Find("metadata.profile.completed")->topic},
                                           .types = {"metadata.profile.completed"}});
  ASSERT_TRUE(consumer.ok());
  std::vector<kafka::Record> got;
  for (int i = 0; i < 100 && got.empty(); ++i)
    (void)(*consumer)->PollOnce([&](const std::vector<kafka::Record>& batch) {
      got.insert(got.end(), batch.begin(), batch.end());
      return absl::OkStatus();
    });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].envelope.causation_id(), due.id());
  EXPECT_EQ(got[0].envelope.correlation_id(), due.correlation_id());
  EXPECT_EQ(got[0].envelope.profile_completed().row_count(), 1000);
}

TEST_F(ProfilerTest, SchedulerEmitsDueEntitiesOncePerWindowWithTierPriorities) {
  Exec("CREATE TABLE t (id int)");
  const std::string t1_new = Entity("t1_never", "tier1", "t");
  const std::string t1_old = Entity("t1_old", "tier1", "t");
  const std::string t2_fresh = Entity("t2_fresh", "tier2", "t");
  const std::string t3_stale = Entity("t3_stale", "tier3", "t");
  Entity("t4_never", "tier4", "t");
  Entity("t1_unbound", "tier1", std::nullopt);
  Exec(
      "UPDATE mdm_global_metadata SET created_at = now() - interval '12 days' WHERE canonical_key = 't1_old';"
      "UPDATE mdm_global_metadata SET created_at = now() - interval '2 hours' WHERE canonical_key = 't1_never'");
  // Past profiles: t2 profiled 1 day ago (cadence 14 days), t3 31 days ago (cadence 30).
  auto profiled = [&](const std::string& entity, const std::string& ago) {
    Exec(
        Cat("INSERT INTO mdm_profile_job (id, tenant_id, entity_type, entity_id, canonical_key, tier, reason, priority,"
            " status, trigger_event_id, trigger_type, correlation_id, actor_id, actor_type, max_attempts)"
            " VALUES ('",
            entity, "', '", kTenant, "', 'metadata', '", entity,
            "', 'k', 'tier2', 'X', 'X', 'succeeded',"
            " 'e', 'x', 'c', 'a', 'x', 1);"
            "INSERT INTO mdm_profile (tenant_id, entity_type, entity_id, canonical_key, job_id, binding_schema,"
            " binding_table, row_count, completeness, uniqueness, validity, quality_score, quality_grade, duration_ms,"
            " method, details, profiled_at) VALUES ('",
            kTenant, "', 'metadata', '", entity, "', 'k', '", entity,
            "', 's', 't', 0, 100, 100, 100, 100, 'A', 1, 'm', '{}', now() - interval '", ago, "')"));
  };
  profiled(t2_fresh, "1 day");
  profiled(t3_stale, "31 days");
  auto entities_of = [&](const std::vector<v1::Envelope>& events) {
    std::map<std::string, v1::Priority> out;
    for (const auto& e : events) {
      out[e.profile_due().entity_id()] = e.profile_due().priority();
      EXPECT_EQ(e.source(), "kernel.scheduler");
      EXPECT_EQ(e.profile_due().reason(), v1::PROFILE_REASON_SCHEDULE);
      EXPECT_TRUE(contracts::IsValidTraceparent(e.traceparent())) << e.traceparent();  // a trace of its own
    }
    return out;
  };

  scheduler::SchedulerConfig sc{.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_};
  const absl::Time now = absl::Now();
  // An off-peak window that closes 30 s after `now`: at `now` every entity's offset into
  // it (whole minutes below its 4 hours) has passed; 4 hours earlier it was still closed.
  const absl::Duration time_of_day = now - scheduler::WindowStart(now, absl::Hours(24));
  sc.window = {.start = (time_of_day + absl::Hours(20) + absl::Seconds(30)) % absl::Hours(24),
               .length = absl::Hours(4)};
  auto s = scheduler::Scheduler::Create(sc, *catalog_);
  ASSERT_TRUE(s.ok()) << s.status();

  // Before the window: tier1 (HIGH, CRITICAL) bypasses it; tier3 (NORMAL) waits for its slot.
  const absl::Time before = now - absl::Hours(4);
  auto dry = s->Run(before, /*dry_run=*/true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->due.size(), 2u);  // never profiled counts as due at once
  ASSERT_EQ(dry->waiting.size(), 1u);
  EXPECT_EQ(dry->waiting[0].event.profile_due().entity_id(), t3_stale);
  EXPECT_GT(dry->waiting[0].emit_at, before);
  EXPECT_LE(dry->waiting[0].emit_at, now);
  EXPECT_EQ(Scalar("SELECT count(*) FROM event_outbox"), "0");
  auto early = s->Run(before, false);
  ASSERT_TRUE(early.ok()) << early.status();
  EXPECT_EQ(early->emitted, 2);
  EXPECT_EQ(entities_of(Outbox("metadata.profile.due")),
            (std::map<std::string, v1::Priority>{{t1_new, v1::PRIORITY_HIGH}, {t1_old, v1::PRIORITY_CRITICAL}}));

  // In the window the tier3 entity's turn has come; the tier1 ones, still unprofiled, are
  // due again in this window (new ids).
  auto first = s->Run(now, false);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->emitted, 3);
  EXPECT_TRUE(first->waiting.empty());
  auto due = Outbox("metadata.profile.due");
  ASSERT_EQ(due.size(), 5u);
  EXPECT_EQ(entities_of({due.begin() + 2, due.end()}),
            (std::map<std::string, v1::Priority>{
                {t1_new, v1::PRIORITY_HIGH}, {t1_old, v1::PRIORITY_CRITICAL}, {t3_stale, v1::PRIORITY_NORMAL}}));
  // A second run in the same window, with the profiles still not done, emits nothing.
  auto second = s->Run(now, false);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->due.size(), 3u);
  EXPECT_EQ(second->emitted, 0);
  EXPECT_EQ(second->already_emitted, 3);
  EXPECT_EQ(Outbox("metadata.profile.due").size(), 5u);

  // The tier3 entity's job fails (its table is gone). It stays due, so the next window
  // emits it again rather than the next 30-day cadence period; so are the tier1 ones.
  Exec("DROP TABLE t");
  const v1::Envelope& t3_due = due[2].profile_due().entity_id() == t3_stale   ? due[2]
                               : due[3].profile_due().entity_id() == t3_stale ? due[3]
                                                                              : due[4];
  EXPECT_TRUE(Handle(t3_due).queued);
  EXPECT_EQ(Scalar("SELECT status || ' ' || last_error_code FROM mdm_profile_job WHERE entity_id = $1::uuid"
                   " ORDER BY created_at DESC LIMIT 1",
                   {t3_stale}),
            "failed TABLE_NOT_FOUND");
  auto next_day = s->Run(now + absl::Hours(24), false);
  ASSERT_TRUE(next_day.ok()) << next_day.status();
  EXPECT_EQ(next_day->emitted, 3);
  EXPECT_EQ(Scalar("SELECT count(DISTINCT event_id) FROM mdm_profile_schedule WHERE entity_id = $1::uuid", {t3_stale}),
            "2");

  // The profiler takes the scheduler's event: t1_old gets profiled.
  Exec("CREATE TABLE t (id int)");
  due = Outbox("metadata.profile.due");
  const v1::Envelope& t1_due = due[0].profile_due().entity_id() == t1_old ? due[0] : due[1];
  EXPECT_TRUE(Handle(t1_due).queued);
  EXPECT_EQ(Profiles(t1_old), 1);
}

TEST_F(ProfilerTest, SchedulerAppliesATenantsOwnWindow) {
  Exec("CREATE TABLE t (id int)");
  const std::string stale = Entity("t3_stale", "tier3", "t");
  Exec(
      Cat("INSERT INTO mdm_profile_job (id, tenant_id, entity_type, entity_id, canonical_key, tier, reason, priority,"
          " status, trigger_event_id, trigger_type, correlation_id, actor_id, actor_type, max_attempts) VALUES ('",
          stale, "', '", kTenant, "', 'metadata', '", stale,
          "', 'k', 'tier3', 'X', 'X', 'succeeded', 'e', 'x', 'c', 'a', 'x', 1);"
          "INSERT INTO mdm_profile (tenant_id, entity_type, entity_id, canonical_key, job_id, binding_schema,"
          " binding_table, row_count, completeness, uniqueness, validity, quality_score, quality_grade, duration_ms,"
          " method, details, profiled_at) VALUES ('",
          kTenant, "', 'metadata', '", stale, "', 'k', '", stale,
          "', 's', 't', 0, 100, 100, 100, 100, 'A', 1, 'm', '{}', now() - interval '31 days')"));
  const absl::Time now = absl::Now();
  const absl::Duration time_of_day = now - scheduler::WindowStart(now, absl::Hours(24));
  // The default window opens 12 hours from now; the tenant's own closes 30 s after now, so
  // every offset into it has passed.
  scheduler::SchedulerConfig sc{.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_};
  sc.window = {.start = (time_of_day + absl::Hours(12)) % absl::Hours(24), .length = absl::Hours(4)};
  auto by_default = scheduler::Scheduler::Create(sc, *catalog_);
  ASSERT_TRUE(by_default.ok()) << by_default.status();
  auto waiting = by_default->Run(now, /*dry_run=*/true);
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_TRUE(waiting->due.empty());
  ASSERT_EQ(waiting->waiting.size(), 1u);
  EXPECT_GT(waiting->waiting[0].emit_at, now + absl::Hours(11));

  sc.tenant_windows[kTenant] = {.start = (time_of_day + absl::Hours(20) + absl::Seconds(30)) % absl::Hours(24),
                                .length = absl::Hours(4)};
  sc.tenant_windows["another-tenant"] = sc.window;
  auto own = scheduler::Scheduler::Create(sc, *catalog_);
  ASSERT_TRUE(own.ok()) << own.status();
  auto due = own->Run(now, /*dry_run=*/true);
  ASSERT_TRUE(due.ok()) << due.status();
  EXPECT_TRUE(due->waiting.empty());
  ASSERT_EQ(due->due.size(), 1u);
  EXPECT_EQ(due->due[0].event.profile_due().entity_id(), stale);

  // A window no longer than the run period could be skipped between two runs: refused.
  sc.tenant_windows[kTenant].length = absl::Minutes(15);
  EXPECT_EQ(scheduler::Scheduler::Create(sc, *catalog_).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ProfilerTest, BindingsOutsideTheAllowListAreRefusedBeforeAnyQuery) {
  // Another tenant's data, in a schema acme's entries may not bind; seven rows hold the
  // secret a column regex would count.
  const std::string other = Cat(schema_, "_other");
  Exec(Cat("CREATE SCHEMA ", other, "; CREATE TABLE ", other, ".secrets (id int, secret text);", "INSERT INTO ", other,
           ".secrets SELECT g, CASE WHEN g <= 7 THEN 'hunter2' ELSE 'x' END FROM generate_series(1, 100) g"));
  Exec("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)");
  const std::string approvals = BoundTo("steal_approvals", "tier1", schema_, "mdm_approval");
  const std::string log = BoundTo("steal_log", "tier1", schema_, "event_log");
  const std::string foreign =
      BoundTo("steal_secrets", "tier1", other, "secrets", R"([{"column":"secret","regex":"^hunter2$"}])");
  const std::string roles = BoundTo("steal_roles", "tier1", "pg_catalog", "pg_authid");
  const std::string allowed = Entity("orders", "tier1", "orders");

  auto pc = Config();
  pc.profile.statement_timeout = absl::Seconds(1);
  auto& p = NewProfiler(pc);
  // While these tables are locked, any statement touching them would wait and time out:
  // the outcomes below (not STATEMENT_TIMEOUT, no job at all) show that nothing ran.
  auto locker = Connect();
  ASSERT_TRUE(locker.ok());
  ASSERT_TRUE(locker
                  ->ExecScript(Cat("BEGIN; LOCK TABLE ", other, ".secrets, ", schema_, ".mdm_approval, ", schema_,
                                   ".event_log IN ACCESS EXCLUSIVE MODE"))
                  .ok());
  // Every trigger type, tier1 and MANUAL (no cooldown or tier rule would skip them).
  EXPECT_EQ(Handle(Approved(approvals, v1::TIER_1), &p).skip_reason, "binding_not_allowed");
  EXPECT_EQ(Handle(Due(log, v1::PROFILE_REASON_MANUAL), &p).skip_reason, "binding_not_allowed");
  EXPECT_EQ(Handle(Due(foreign, v1::PROFILE_REASON_MANUAL), &p).skip_reason, "binding_not_allowed");
  EXPECT_EQ(Handle(Refreshed("steal_secrets", 1000), &p).skip_reason, "binding_not_allowed");
  EXPECT_EQ(Handle(Due(roles, v1::PROFILE_REASON_MANUAL), &p).skip_reason, "binding_not_allowed");
  // A binding inside the allow-list still profiles.
  EXPECT_TRUE(Handle(Approved(allowed, v1::TIER_1), &p).queued);
  ASSERT_TRUE(locker->ExecScript("COMMIT").ok());

  EXPECT_EQ(Profiles(allowed), 1);
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile"), "1");
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_job"), "1");  // none queued for the refused ones
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_trigger WHERE skip_reason = 'binding_not_allowed'"), "5");
  EXPECT_EQ(Counter("sluice_profiler_skips_total", "reason", "binding_not_allowed"), 5);
  EXPECT_EQ(Scalar("SELECT detail FROM mdm_profile_trigger WHERE entity_id = $1::uuid", {foreign}),
            Cat("binding: \"", other, "\".\"secrets\" is not in the profiler's allow-list for tenant ", kTenant));
  EXPECT_THAT(Scalar("SELECT detail FROM mdm_profile_trigger WHERE entity_id = $1::uuid", {approvals}),
              HasSubstr("never profiled"));
  // Nothing reaches the tenant about those tables: one completed event, for the allowed one.
  auto completed = Outbox("metadata.profile.completed");
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0].profile_completed().entity_id(), allowed);
  EXPECT_TRUE(Outbox("metadata.profile.failed").empty());

  // A configuration asking for the governance schema is refused at start.
  auto bad = Config();
  bad.allow_bindings.push_back(Cat("*=", schema_, ".mdm_approval"));
  auto refused = profiler::Profiler::Create(bad, registry_, *catalog_);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr(schema_));
}

TEST_F(ProfilerTest, AJobWhoseBindingLeftTheAllowListFailsBeforeTheScan) {
  Exec("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)");
  const std::string id = Entity("orders", "tier1", "orders");
  auto pc = Config();
  pc.profile.statement_timeout = absl::Seconds(1);
  auto& p = NewProfiler(pc);
  auto out = p.HandleEvent(Due(id));
  ASSERT_TRUE(out.ok() && out->queued) << out.status();
  // The binding changes after the job was queued (or the allow-list did between restarts).
  Exec(Cat("UPDATE mdm_global_metadata SET binding_schema = '", schema_, "', binding_table = 'mdm_approval'"));
  auto locker = Connect();
  ASSERT_TRUE(locker.ok());
  ASSERT_TRUE(locker->ExecScript(Cat("BEGIN; LOCK TABLE ", schema_, ".mdm_approval IN ACCESS EXCLUSIVE MODE")).ok());
  auto ran = p.RunReadyJob(out->job_id);
  ASSERT_TRUE(locker->ExecScript("COMMIT").ok());
  ASSERT_TRUE(ran.ok() && *ran) << ran.status();
  EXPECT_EQ((*ran)->status, "failed");  // for good: retrying cannot help
  EXPECT_EQ(Scalar("SELECT status || ' ' || attempts || ' ' || last_error_code FROM mdm_profile_job"),
            "failed 1 BINDING_NOT_ALLOWED");
  EXPECT_EQ(Profiles(id), 0);
  EXPECT_TRUE(Outbox("metadata.profile.completed").empty());
  auto failed = Outbox("metadata.profile.failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].profile_failed().error_code(), "BINDING_NOT_ALLOWED");
  EXPECT_FALSE(failed[0].profile_failed().retryable());
  EXPECT_THAT(failed[0].profile_failed().error_message(), HasSubstr("never profiled"));
}

TEST_F(ProfilerTest, EventsFromSourcesTheCatalogDoesNotListAreSkippedNotActedOn) {
  Exec("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)");
  const std::string id = Entity("orders", "tier1", "orders");
  auto& p = Default();
  // metadata.approved only from the approval workflow; profile.due not from an ETL job;
  // data.refreshed not from the studio; and a type whose source may emit it carrying
  // another type's payload.
  auto forged = Approved(id, v1::TIER_1);
  forged.set_source("etl.pipeline");
  auto due = Due(id, v1::PROFILE_REASON_MANUAL);
  due.set_source("etl.pipeline");
  auto refresh = Refreshed("orders", 1000);
  refresh.set_source("metadata-studio.api");
  auto disguised = Approved(id, v1::TIER_1);
  disguised.set_type("data.refreshed");
  disguised.set_source("etl.pipeline");
  std::vector<kafka::Record> batch;
  for (const auto* e : {&forged, &due, &refresh, &disguised}) {
    auto out = p.HandleEvent(*e);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_FALSE(out->queued) << e->type();
    EXPECT_FALSE(out->duplicate) << e->type();
    EXPECT_EQ(out->skip_reason, "source_not_allowed") << e->type();
    batch.push_back({.envelope = *e});
  }
  EXPECT_THAT(p.HandleEvent(forged)->detail, HasSubstr("\"etl.pipeline\" is not a producer of metadata.approved"));
  // As the consumer's handler: OK, so the batch is committed (a skip is not retryable).
  EXPECT_TRUE(p.HandleBatch(batch).ok());
  EXPECT_EQ(Counter("sluice_profiler_skips_total", "reason", "source_not_allowed"), 9);
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_job"), "0");
  // Not even recorded: a forged event cannot claim the id of a genuine one.
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_trigger"), "0");
  auto genuine = forged;
  genuine.set_source("metadata-studio.approval");
  EXPECT_TRUE(Handle(genuine).queued);
  EXPECT_EQ(Profiles(id), 1);

  // Written straight to the topic, around the approval workflow: read, skipped, committed.
  auto producer = kafka::Producer::Create({.bootstrap_servers = bootstrap_}, *catalog_);
  ASSERT_TRUE(producer.ok());
  auto on_topic = Approved(id, v1::TIER_1);
  on_topic.set_source("etl.pipeline");
  ASSERT_TRUE((*producer)->SendSync(on_topic).ok());
  auto consumer = kafka::Consumer::Create({.bootstrap_servers = bootstrap_,
                                           .group_id = Group("profiler"),
                                           .topics = {catalog_->Find("metadata.approved")->topic},
                                           .types = {"metadata.approved"}});
  ASSERT_TRUE(consumer.ok());
  size_t handled = 0;
  for (int i = 0; i < 100 && handled == 0; ++i) {
    auto n = (*consumer)->PollOnce([&](const std::vector<kafka::Record>& b) { return p.HandleBatch(b); });
    ASSERT_TRUE(n.ok()) << n.status();
    handled += *n;
  }
  ASSERT_EQ(handled, 1u);
  EXPECT_EQ((*consumer)->stats().delivered, 1u);  // handled and its offset committed
  EXPECT_EQ((*consumer)->stats().commit_failures, 0u);
  EXPECT_EQ(Counter("sluice_profiler_skips_total", "reason", "source_not_allowed"), 10);
  EXPECT_EQ(Scalar("SELECT count(*) FROM mdm_profile_job"), "1");  // the genuine one's only
  EXPECT_EQ(Profiles(id), 1);
}

}  // namespace
}  // namespace sluice
