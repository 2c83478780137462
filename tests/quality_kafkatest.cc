// QualityService over real gRPC and PostgreSQL: profiles written by the profiler's engine
// (in-process, on this test's own schema) read back per entity, per tenant and worst
// first, with tenant isolation and field-named errors.
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <random>
#include <set>

#include "common/pg.h"
#include "consumers/profiler/profiler.h"
#include "contracts/envelope.h"
#include "contracts/json.h"
#include "gateway/quality_service.h"
#include "sluice/v1/quality_service.grpc.pb.h"
#include "tests/gateway_fixture.h"
#include "tests/http_client.h"
#include "tests/pg_schema.h"
#include "tests/subprocess.h"

namespace sluice {
namespace {

using common::Cat;
using google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ViolationField;

constexpr char kTenant[] = "tenant-acme";

class Quality : public testing::GatewayTest {
 protected:
  Quality() {
    config_overrides_ = [this](gateway::GatewayConfig& c) {
      c.pg_dsn = common::DefaultPgDsn();
      c.pg_schema = schema_;
      c.http_listen = "127.0.0.1:0";  // the /v1/quality routes
    };
  }
  void SetUp() override {
    // The governance schema first: the gateway starts on it.
    auto c = testing::MigratedSchema("it_qual_", schema_);
    ASSERT_TRUE(c.ok()) << c.status();
    conn_.emplace(*std::move(c));
    src_ = Cat(schema_, "_src");
    ASSERT_TRUE(conn_->ExecScript(Cat("CREATE SCHEMA ", src_)).ok());
    GatewayTest::SetUp();
    if (HasFatalFailure()) return;
    stub_ = v1::QualityService::NewStub(channel_);
    profiler::ProfilerConfig pc;
    pc.pg_dsn = common::DefaultPgDsn();
    pc.pg_schema = schema_;
    pc.allow_bindings = {Cat(kTenant, "=", src_, ".*"), Cat("tenant-b=", src_, ".*")};
    auto p = profiler::Profiler::Create(pc, registry_, *catalog_);
    ASSERT_TRUE(p.ok()) << p.status();
    profiler_ = *std::move(p);
  }
  void TearDown() override {
    profiler_.reset();
    stub_.reset();
    GatewayTest::TearDown();
    if (conn_) {
      EXPECT_TRUE(testing::DropSchema(*conn_, schema_).ok());
      EXPECT_TRUE(testing::DropSchema(*conn_, src_).ok());
    }
  }

  void Exec(const std::string& sql) { ASSERT_TRUE(conn_->ExecScript(sql).ok()) << sql; }
  std::string Scalar(const std::string& sql, const std::vector<std::optional<std::string>>& params = {}) {
    auto r = conn_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status();
    return r.ok() && r->rows() > 0 ? std::string(r->Get(0, 0)) : "<none>";
  }
  // A metadata entry of `tenant` bound to src_.`table` with a rule that `bad` of 10 rows
  // break; returns its id.
  std::string Entry(const std::string& tenant, const std::string& key, const std::string& tier,
                    const std::string& table, int bad) {
    Exec(Cat("CREATE TABLE IF NOT EXISTS ", src_, ".", table, " (id int, code text); TRUNCATE ", src_, ".", table,
             "; INSERT INTO ", src_, ".", table, " SELECT g, CASE WHEN g <= ", bad,
             " THEN 'bad' ELSE 'EUR' END FROM generate_series(1, 10) g"));
    return Scalar(
        "INSERT INTO mdm_global_metadata (tenant_id, canonical_key, label, tier, binding_schema, binding_table,"
        " column_rules) VALUES ($1, $2, $2, $3, $4, $5, '[{\"column\": \"code\", \"allowed_values\": [\"EUR\"]}]')"
        " RETURNING id::text",
        {tenant, key, tier, src_, table});
  }
  // Profiles the entity now (a MANUAL due event through the profiler); returns the job id.
  std::string Profile(const std::string& tenant, const std::string& entity_id) {
    v1::Envelope e;
    e.set_id(contracts::NewUuidV7());
    e.set_tenant_id(tenant);
    e.set_source("metadata-studio.api");
    auto* p = e.mutable_profile_due();
    p->set_entity_type(v1::ENTITY_TYPE_METADATA);
    p->set_entity_id(entity_id);
    p->set_canonical_key("k");
    p->set_tier(v1::TIER_1);
    p->set_priority(v1::PRIORITY_HIGH);
    p->set_reason(v1::PROFILE_REASON_MANUAL);
    contracts::FillDefaults(e, *catalog_);
    auto out = profiler_->HandleEvent(e);
    EXPECT_TRUE(out.ok() && out->queued) << (out.ok() ? out->skip_reason : out.status().ToString());
    if (!out.ok() || !out->queued) return "";
    EXPECT_TRUE(profiler_->RunReadyJob(out->job_id).ok());
    return out->job_id;
  }
  v1::EntityRef ById(const std::string& id) {
    v1::EntityRef r;
    r.set_entity_id(id);
    return r;
  }
  v1::EntityRef ByKey(const std::string& key) {
    v1::EntityRef r;
    r.set_canonical_key(key);
    return r;
  }
  grpc::Status Latest(const char* token, const std::string& tenant, const v1::EntityRef& ref, v1::QualityProfile* out) {
    v1::GetLatestProfileRequest req;
    req.set_tenant_id(tenant);
    *req.mutable_entity() = ref;
    v1::GetLatestProfileResponse resp;
    auto s = stub_->GetLatestProfile(Ctx(token).get(), req, &resp);
    if (out) *out = resp.profile();
    return s;
  }
  grpc::Status Worst(const char* token, const std::string& tenant, v1::Tier tier, int limit,
                     std::vector<std::string>* keys) {
    v1::ListWorstEntitiesRequest req;
    req.set_tenant_id(tenant);
    req.set_tier(tier);
    req.set_limit(limit);
    v1::ListWorstEntitiesResponse resp;
    auto s = stub_->ListWorstEntities(Ctx(token).get(), req, &resp);
    if (keys) {
      keys->clear();
      for (const auto& p : resp.profiles()) keys->push_back(p.canonical_key());
    }
    return s;
  }
  grpc::Status Job(const char* token, const std::string& tenant, const std::string& id, v1::ProfileJob* out) {
    v1::GetProfileJobRequest req;
    req.set_tenant_id(tenant);
    req.set_job_id(id);
    v1::GetProfileJobResponse resp;
    auto s = stub_->GetProfileJob(Ctx(token).get(), req, &resp);
    if (out) *out = resp.job();
    return s;
  }

  std::string schema_, src_;
  std::optional<common::PgConnection> conn_;
  std::unique_ptr<v1::QualityService::Stub> stub_;
  std::unique_ptr<profiler::Profiler> profiler_;
};

TEST_F(Quality, LatestProfileByIdOrKeyIsWhatTheProfilerStored) {
  const std::string orders = Entry(kTenant, "orders", "tier1", "orders", 3);  // 3 of 10 codes invalid
  v1::QualityProfile p;
  EXPECT_EQ(Latest(testing::kTokenA, kTenant, ByKey("orders"), &p).error_code(), grpc::StatusCode::NOT_FOUND);
  const std::string job = Profile(kTenant, orders);
  ASSERT_TRUE(Latest(testing::kTokenA, kTenant, ByKey("orders"), &p).ok());
  EXPECT_EQ(p.entity_id(), orders);
  EXPECT_EQ(p.tenant_id(), kTenant);
  EXPECT_EQ(p.entity_type(), v1::ENTITY_TYPE_METADATA);
  EXPECT_EQ(p.tier(), v1::TIER_1);
  EXPECT_EQ(p.job_id(), job);
  EXPECT_EQ(p.row_count(), 10);
  EXPECT_EQ(p.binding_schema(), src_);
  EXPECT_EQ(p.binding_table(), "orders");
  EXPECT_DOUBLE_EQ(p.validity(), 70.0);
  EXPECT_EQ(p.id(), Scalar("SELECT id::text FROM mdm_profile WHERE job_id = $1::uuid", {job}));
  EXPECT_DOUBLE_EQ(p.quality_score(),
                   std::stod(Scalar("SELECT quality_score FROM mdm_profile WHERE job_id = $1::uuid", {job})));
  EXPECT_EQ("QUALITY_GRADE_" + Scalar("SELECT quality_grade FROM mdm_profile WHERE job_id = $1::uuid", {job}),
            v1::QualityGrade_Name(p.quality_grade()));
  EXPECT_TRUE(p.details().fields().contains("columns"));
  // By id, the same; a newer profile replaces it.
  v1::QualityProfile by_id;
  ASSERT_TRUE(Latest(testing::kTokenA, kTenant, ById(orders), &by_id).ok());
  EXPECT_EQ(by_id.id(), p.id());
  Exec(Cat("UPDATE ", src_, ".orders SET code = 'EUR'"));
  Profile(kTenant, orders);
  ASSERT_TRUE(Latest(testing::kTokenA, kTenant, ById(orders), &by_id).ok());
  EXPECT_NE(by_id.id(), p.id());
  EXPECT_DOUBLE_EQ(by_id.validity(), 100.0);
}

TEST_F(Quality, HistoryPagesNewestFirstWithoutGapsOrRepeatsAndHonoursTheRange) {
  const std::string orders = Entry(kTenant, "orders", "tier1", "orders", 1);
  const std::string refunds = Entry(kTenant, "refunds", "tier2", "refunds", 1);
  std::set<std::string> orders_jobs;
  for (int i = 0; i < 5; ++i) orders_jobs.insert(Profile(kTenant, orders));
  Profile(kTenant, refunds);

  auto list = [&](const v1::ListProfilesRequest& base) {
    std::vector<v1::QualityProfile> all;
    v1::ListProfilesRequest req = base;
    for (int page = 0; page < 20; ++page) {
      v1::ListProfilesResponse resp;
      auto s = stub_->ListProfiles(Ctx(testing::kTokenA).get(), req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      all.insert(all.end(), resp.profiles().begin(), resp.profiles().end());
      if (!resp.has_more()) break;
      EXPECT_FALSE(resp.next_cursor().empty());
      req.set_cursor(resp.next_cursor());
    }
    return all;
  };
  v1::ListProfilesRequest req;
  req.set_tenant_id(kTenant);
  req.set_limit(2);
  *req.mutable_entity() = ByKey("orders");
  auto history = list(req);
  ASSERT_EQ(history.size(), 5u);
  std::set<std::string> jobs;
  for (size_t i = 0; i < history.size(); ++i) {
    jobs.insert(history[i].job_id());
    if (i > 0) {
      EXPECT_LE(history[i].profiled_at(), history[i - 1].profiled_at());
    }
  }
  EXPECT_EQ(jobs, orders_jobs);
  // The whole tenant: both entities, refunds' profile (the newest) first.
  req.clear_entity();
  auto tenant_wide = list(req);
  ASSERT_EQ(tenant_wide.size(), 6u);
  EXPECT_EQ(tenant_wide.front().canonical_key(), "refunds");
  // A range after the newest profile holds none; one from the oldest to now holds all six;
  // one from the oldest to the oldest holds the oldest.
  const int64_t newest = TimeUtil::TimestampToMicroseconds(tenant_wide.front().profiled_at());
  *req.mutable_from_time() = TimeUtil::MicrosecondsToTimestamp(newest + 1);
  EXPECT_TRUE(list(req).empty());
  *req.mutable_from_time() = tenant_wide.back().profiled_at();
  *req.mutable_to_time() = TimeUtil::MicrosecondsToTimestamp(newest);
  EXPECT_EQ(list(req).size(), 6u);
  *req.mutable_to_time() = tenant_wide.back().profiled_at();
  auto oldest = list(req);
  ASSERT_EQ(oldest.size(), 1u);
  EXPECT_EQ(oldest[0].id(), tenant_wide.back().id());
}

TEST_F(Quality, WorstEntitiesComeLowestScoreFirstPerTier) {
  const std::string a = Entry(kTenant, "a_fine", "tier1", "a", 0);
  const std::string b = Entry(kTenant, "b_poor", "tier1", "b", 6);
  const std::string c = Entry(kTenant, "c_middling", "tier2", "c", 3);
  Entry(kTenant, "d_never_profiled", "tier1", "d", 9);
  for (const auto& id : {a, b, c}) Profile(kTenant, id);
  // b was bad once and is worse now: only its latest profile counts.
  std::vector<std::string> keys;
  ASSERT_TRUE(Worst(testing::kTokenA, kTenant, v1::TIER_UNSPECIFIED, 0, &keys).ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"b_poor", "c_middling", "a_fine"}));
  Exec(Cat("UPDATE ", src_, ".b SET code = 'EUR'"));
  Profile(kTenant, b);
  ASSERT_TRUE(Worst(testing::kTokenA, kTenant, v1::TIER_UNSPECIFIED, 0, &keys).ok());
  EXPECT_EQ(keys.front(), "c_middling");
  EXPECT_EQ(keys.size(), 3u);
  ASSERT_TRUE(Worst(testing::kTokenA, kTenant, v1::TIER_2, 0, &keys).ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"c_middling"}));
  ASSERT_TRUE(Worst(testing::kTokenA, kTenant, v1::TIER_1, 1, &keys).ok());
  EXPECT_EQ(keys.size(), 1u);
  // A deprecated entry is no longer listed.
  Exec(Cat("UPDATE mdm_global_metadata SET status = 'deprecated' WHERE id = '", c, "'"));
  ASSERT_TRUE(Worst(testing::kTokenA, kTenant, v1::TIER_2, 0, &keys).ok());
  EXPECT_TRUE(keys.empty());
}

TEST_F(Quality, JobsReportTheirOutcomeWithoutPostgresText) {
  const std::string ok = Entry(kTenant, "orders", "tier1", "orders", 0);
  const std::string gone = Entry(kTenant, "gone", "tier1", "gone", 0);
  const std::string done = Profile(kTenant, ok);
  v1::ProfileJob j;
  ASSERT_TRUE(Job(testing::kTokenA, kTenant, done, &j).ok());
  EXPECT_EQ(j.status(), "succeeded");
  EXPECT_EQ(j.entity_id(), ok);
  EXPECT_EQ(j.reason(), v1::PROFILE_REASON_MANUAL);
  EXPECT_EQ(j.priority(), v1::PRIORITY_HIGH);
  EXPECT_EQ(j.attempts(), 1);
  EXPECT_EQ(j.profile_id(), Scalar("SELECT id::text FROM mdm_profile WHERE job_id = $1::uuid", {done}));
  EXPECT_TRUE(j.has_finished_at());
  EXPECT_FALSE(j.has_next_attempt_at());
  EXPECT_TRUE(j.last_error_code().empty());

  // A rule that PostgreSQL refuses (an invalid regex): the stored error is PostgreSQL's
  // text; the API returns the code and Sluice's description of it.
  Exec(Cat("UPDATE mdm_global_metadata SET column_rules = '[{\"column\": \"code\", \"regex\": \"(\"}]' WHERE id = '",
           gone, "'"));
  const std::string failed = Profile(kTenant, gone);
  ASSERT_THAT(Scalar("SELECT last_error FROM mdm_profile_job WHERE id = $1::uuid", {failed}),
              HasSubstr("regular expression"));
  ASSERT_TRUE(Job(testing::kTokenA, kTenant, failed, &j).ok());
  EXPECT_EQ(j.status(), "failed");
  EXPECT_EQ(j.last_error_code(), "INVALID_RULE");
  EXPECT_EQ(j.last_error(), gateway::QualityServiceImpl::DescribeErrorCode("INVALID_RULE"));
  EXPECT_THAT(j.last_error(), Not(HasSubstr("regular expression")));
  EXPECT_TRUE(j.profile_id().empty());
}

TEST_F(Quality, AnotherTenantSeesNothingAndBadRequestsNameTheField) {
  const std::string orders = Entry(kTenant, "orders", "tier1", "orders", 2);
  const std::string job = Profile(kTenant, orders);
  Entry("tenant-b", "b_orders", "tier1", "b_orders", 0);
  // tenant-b's token may not ask about tenant-acme at all ...
  auto s = Latest(testing::kTokenB, kTenant, ByKey("orders"), nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ViolationField(s), "");
  EXPECT_THAT(s.error_message(), HasSubstr("tenant_id"));
  EXPECT_EQ(Worst(testing::kTokenB, kTenant, v1::TIER_UNSPECIFIED, 0, nullptr).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Job(testing::kTokenB, kTenant, job, nullptr).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // ... and under its own tenant, tenant-acme's ids are not found.
  EXPECT_EQ(Latest(testing::kTokenB, "tenant-b", ById(orders), nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Job(testing::kTokenB, "tenant-b", job, nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  std::vector<std::string> keys;
  ASSERT_TRUE(Worst(testing::kTokenB, "tenant-b", v1::TIER_UNSPECIFIED, 0, &keys).ok());
  EXPECT_TRUE(keys.empty());  // tenant-b's entry was never profiled
  v1::ListProfilesRequest lr;
  lr.set_tenant_id("tenant-b");
  v1::ListProfilesResponse lresp;
  ASSERT_TRUE(stub_->ListProfiles(Ctx(testing::kTokenB).get(), lr, &lresp).ok());
  EXPECT_EQ(lresp.profiles_size(), 0);
  // The operator's "*" token reads any tenant.
  EXPECT_TRUE(Latest(testing::kTokenOps, kTenant, ById(orders), nullptr).ok());
  EXPECT_EQ(Latest(nullptr, kTenant, ById(orders), nullptr).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  struct Case {
    std::string field;
    grpc::Status status;
  };
  v1::EntityRef both = ById(orders);
  both.set_canonical_key("orders");
  lr.set_tenant_id(kTenant);
  auto list = [&](auto tweak) {
    v1::ListProfilesRequest r = lr;
    tweak(r);
    v1::ListProfilesResponse resp;
    return stub_->ListProfiles(Ctx(testing::kTokenA).get(), r, &resp);
  };
  const Case cases[] = {
      {"tenant_id", Latest(testing::kTokenA, "", ById(orders), nullptr)},
      {"tenant_id", Latest(testing::kTokenA, std::string(65, 't'), ById(orders), nullptr)},
      {"entity", Latest(testing::kTokenA, kTenant, both, nullptr)},
      {"entity", Latest(testing::kTokenA, kTenant, v1::EntityRef(), nullptr)},
      {"entity.entity_id", Latest(testing::kTokenA, kTenant, ById("1; DROP TABLE mdm_profile"), nullptr)},
      {"entity.canonical_key", Latest(testing::kTokenA, kTenant, ByKey(std::string(257, 'k')), nullptr)},
      {"limit", list([](auto& r) { r.set_limit(201); })},
      {"limit", list([](auto& r) { r.set_limit(-1); })},
      {"cursor", list([](auto& r) { r.set_cursor("12.not-a-uuid"); })},
      {"cursor", list([](auto& r) { r.set_cursor("garbage"); })},
      {"cursor", list([](auto& r) { r.set_cursor("99999999999999999999.0190a0c2-0000-7000-8000-000000000001"); })},
      {"cursor", list([](auto& r) { r.set_cursor("-5.0190a0c2-0000-7000-8000-000000000001"); })},
      {"to_time", list([](auto& r) {
         *r.mutable_from_time() = TimeUtil::SecondsToTimestamp(2000);
         *r.mutable_to_time() = TimeUtil::SecondsToTimestamp(1000);
       })},
      {"from_time", list([](auto& r) { r.mutable_from_time()->set_seconds(-5); })},
      {"limit", Worst(testing::kTokenA, kTenant, v1::TIER_UNSPECIFIED, 101, nullptr)},
      {"tier", Worst(testing::kTokenA, kTenant, static_cast<v1::Tier>(42), 0, nullptr)},
      {"job_id", Job(testing::kTokenA, kTenant, "x' OR '1'='1", nullptr)},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field << ": " << c.status.error_message();
    EXPECT_EQ(ViolationField(c.status), c.field) << c.status.error_message();
  }
  // A gateway without PostgreSQL says so.
  auto bare = StartGateway(bootstrap_, nullptr);
  ASSERT_NE(bare, nullptr);
  auto bare_stub = v1::QualityService::NewStub(
      grpc::CreateChannel(Cat("127.0.0.1:", bare->port()), grpc::InsecureChannelCredentials()));
  v1::GetLatestProfileRequest lreq;
  lreq.set_tenant_id(kTenant);
  *lreq.mutable_entity() = ById(orders);
  v1::GetLatestProfileResponse lresp2;
  EXPECT_EQ(bare_stub->GetLatestProfile(Ctx(testing::kTokenA).get(), lreq, &lresp2).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(Quality, TheHttpRoutesAnswerWhatTheRpcsAnswer) {
  const std::string orders = Entry(kTenant, "orders", "tier1", "orders", 3);
  const std::string refunds = Entry(kTenant, "refunds", "tier2", "refunds", 6);
  const std::string job = Profile(kTenant, orders);
  Profile(kTenant, refunds);
  Profile(kTenant, orders);
  const std::string base = Cat("http://127.0.0.1:", gateway_->http_port());
  auto get = [&](const std::string& path, const char* token = testing::kTokenA) {
    return testing::Request(base + path, token);
  };
  auto same = [](const google::protobuf::Message& want, const testing::HttpReply& r, google::protobuf::Message& got) {
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_TRUE(contracts::FromJson(r.body, got).ok()) << r.body;
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(want, got)) << want.DebugString() << "\n---\n"
                                                                               << got.DebugString();
  };

  // Latest, by key and by id.
  v1::GetLatestProfileRequest latest;
  latest.set_tenant_id(kTenant);
  *latest.mutable_entity() = ByKey("orders");
  v1::GetLatestProfileResponse want_latest, got_latest;
  ASSERT_TRUE(stub_->GetLatestProfile(Ctx(testing::kTokenA).get(), latest, &want_latest).ok());
  same(want_latest, get(Cat("/v1/quality/latest?tenantId=", kTenant, "&canonicalKey=orders")), got_latest);
  same(want_latest, get(Cat("/v1/quality/latest?tenantId=", kTenant, "&entityId=", orders)), got_latest);
  // History, one page of two and its cursor.
  v1::ListProfilesRequest history;
  history.set_tenant_id(kTenant);
  history.set_limit(2);
  v1::ListProfilesResponse want_history, got_history;
  ASSERT_TRUE(stub_->ListProfiles(Ctx(testing::kTokenA).get(), history, &want_history).ok());
  ASSERT_TRUE(want_history.has_more());
  same(want_history, get(Cat("/v1/quality/profiles?tenantId=", kTenant, "&limit=2")), got_history);
  history.set_cursor(want_history.next_cursor());
  ASSERT_TRUE(stub_->ListProfiles(Ctx(testing::kTokenA).get(), history, &want_history).ok());
  same(want_history,
       get(Cat("/v1/quality/profiles?tenantId=", kTenant, "&limit=2&cursor=", testing::Escape(history.cursor()))),
       got_history);
  // Worst, in either spelling of the tier.
  v1::ListWorstEntitiesRequest worst;
  worst.set_tenant_id(kTenant);
  worst.set_tier(v1::TIER_2);
  v1::ListWorstEntitiesResponse want_worst, got_worst;
  ASSERT_TRUE(stub_->ListWorstEntities(Ctx(testing::kTokenA).get(), worst, &want_worst).ok());
  ASSERT_EQ(want_worst.profiles_size(), 1);
  same(want_worst, get(Cat("/v1/quality/worst?tenantId=", kTenant, "&tier=tier2")), got_worst);
  same(want_worst, get(Cat("/v1/quality/worst?tenantId=", kTenant, "&tier=TIER_2")), got_worst);
  // A job.
  v1::GetProfileJobRequest job_req;
  job_req.set_tenant_id(kTenant);
  job_req.set_job_id(job);
  v1::GetProfileJobResponse want_job, got_job;
  ASSERT_TRUE(stub_->GetProfileJob(Ctx(testing::kTokenA).get(), job_req, &want_job).ok());
  same(want_job, get(Cat("/v1/quality/jobs/", job, "?tenantId=", kTenant)), got_job);

  // Every route's answers, errors included, match the OpenAPI document.
  testing::OpenApiSamples samples;
  samples.Keep("getLatestProfile", get(Cat("/v1/quality/latest?tenantId=", kTenant, "&canonicalKey=orders")));
  samples.Keep("getLatestProfile",
               get(Cat("/v1/quality/latest?tenantId=", kTenant, "&canonicalKey=orders"), testing::kTokenB));
  samples.Keep("listProfiles", get(Cat("/v1/quality/profiles?tenantId=", kTenant, "&limit=2")));
  samples.Keep("listWorstEntities", get(Cat("/v1/quality/worst?tenantId=", kTenant)));
  samples.Keep("listWorstEntities", get(Cat("/v1/quality/worst?tenantId=", kTenant, "&tier=tier9")));
  samples.Keep("getProfileJob", get(Cat("/v1/quality/jobs/", job, "?tenantId=", kTenant)));
  auto [rc, out] = samples.Check();
  EXPECT_EQ(rc, 0) << out;
  for (const char* sample : {"getLatestProfile.200", "getLatestProfile.403", "listProfiles.200",
                             "listWorstEntities.200", "listWorstEntities.400", "getProfileJob.200"})
    EXPECT_THAT(out, ::testing::HasSubstr(Cat("ok: ", sample, ".json"))) << out;

  // The same refusals, named by field, as JSON.
  struct Case {
    std::string path;
    const char* token;
    long status;
    const char* field;
  };
  const Case cases[] = {
      {Cat("/v1/quality/latest?tenantId=", kTenant, "&canonicalKey=orders"), testing::kTokenB, 403, ""},
      {Cat("/v1/quality/latest?tenantId=", kTenant, "&canonicalKey=orders"), nullptr, 401, ""},
      {"/v1/quality/latest?canonicalKey=orders", testing::kTokenA, 400, "tenant_id"},
      {Cat("/v1/quality/worst?tenantId=", kTenant, "&tier=tier9"), testing::kTokenA, 400, "tier"},
      {Cat("/v1/quality/worst?tenantId=", kTenant, "&limit=many"), testing::kTokenA, 400, "limit"},
      {Cat("/v1/quality/worst?tenantId=", kTenant, "&limit=101"), testing::kTokenA, 400, "limit"},
      {Cat("/v1/quality/profiles?tenantId=", kTenant, "&fromTime=soon"), testing::kTokenA, 400, "from_time"},
      {Cat("/v1/quality/profiles?tenantId=", kTenant, "&cursor=forged"), testing::kTokenA, 400, "cursor"},
      {Cat("/v1/quality/jobs/not-a-job?tenantId=", kTenant), testing::kTokenA, 400, "job_id"},
      {Cat("/v1/quality/latest?tenantId=", kTenant, "&entity=orders"), testing::kTokenA, 400, "entity"},
  };
  for (const auto& c : cases) {
    const testing::HttpReply r = get(c.path, c.token);
    EXPECT_EQ(r.status, c.status) << c.path << ": " << r.body;
    EXPECT_EQ(testing::FirstViolationField(r), c.field) << c.path << ": " << r.body;
  }
}

TEST_F(Quality, SluicectlQualityPrintsWhatTheServiceReturnsInTheDatabasesSpelling) {
  const std::string fine = Entry(kTenant, "fine", "tier2", "fine", 0);
  const std::string poor = Entry(kTenant, "poor", "tier2", "poor", 8);
  Profile(kTenant, fine);
  const std::string job = Profile(kTenant, poor);
  const std::string gateway = Cat("127.0.0.1:", gateway_->port());
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "quality");
    args.insert(args.end(), {"--gateway", gateway, "--token", testing::kTokenA, "--tenant", kTenant});
    return testing::RunCaptured(SLUICECTL, args, Cat(::testing::TempDir(), "/quality-", schema_, ".out"));
  };
  // Worst first, the tier flag in either spelling, one line each with tier2 and the grade letter.
  for (const char* tier : {"tier2", "TIER_2"}) {
    auto [rc, out] = run({"worst", "--tier", tier});
    EXPECT_EQ(rc, 0) << out;
    EXPECT_LT(out.find(" poor "), out.find(" fine ")) << out;
    EXPECT_THAT(out, HasSubstr("tier2"));
    EXPECT_THAT(out, HasSubstr("grade A"));
  }
  auto [rc, out] = run({"latest", "--key", "poor", "--json"});
  EXPECT_EQ(rc, 0) << out;
  v1::QualityProfile p;
  ASSERT_TRUE(contracts::FromJson(out, p).ok()) << out;
  EXPECT_EQ(p.entity_id(), poor);
  EXPECT_EQ(p.tier(), v1::TIER_2);
  std::tie(rc, out) = run({"history", "--max", "1"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr(" poor "));
  EXPECT_THAT(out, Not(HasSubstr(" fine ")));
  std::tie(rc, out) = run({"job", job});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("\"status\": \"succeeded\""));
  // Errors: the gateway's message and a non-zero exit.
  std::tie(rc, out) = run({"worst", "--tier", "tier9"});
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("--tier"));
  std::tie(rc, out) = run({"latest", "--key", "nothing_by_that_key"});
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("nothing_by_that_key"));
}

}  // namespace
}  // namespace sluice
