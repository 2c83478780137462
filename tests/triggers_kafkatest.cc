// TriggerService over real gRPC against PostgreSQL: create, read, update, pause, resume
// and delete a tenant's triggers; who may change them; tenant isolation; every bad
// field named; the webhook secret never returned.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/strings.h"
#include "sluice/v1/trigger_service.grpc.pb.h"
#include "tests/events_fixture.h"

namespace sluice {
namespace {

using common::Cat;
using grpc::StatusCode;
using ::testing::HasSubstr;
using ::testing::Not;

class TriggersTest : public testing::EventsTest {
 protected:
  void SetUp() override {
    config_overrides_ = [base = config_overrides_](gateway::GatewayConfig& c) {
      base(c);
      c.trigger_allow_http_loopback = true;
    };
    EventsTest::SetUp();
    if (HasFatalFailure()) return;
    triggers_ = v1::TriggerService::NewStub(channel_);
  }

  static v1::CreateTriggerRequest Failures(const std::string& name = "profile failures") {
    v1::CreateTriggerRequest req;
    req.set_name(name);
    req.set_description("tell the on-call channel");
    req.mutable_predicate()->add_types("metadata.profile.failed");
    req.mutable_predicate()->set_json_path("$.attempt ? (@ >= 2)");
    req.mutable_webhook()->set_url("http://127.0.0.1:9/hook");
    req.mutable_webhook()->set_secret(kSecret);
    return req;
  }

  grpc::Status Create(const char* token, const v1::CreateTriggerRequest& req, v1::Trigger* out = nullptr) {
    v1::CreateTriggerResponse resp;
    auto s = triggers_->CreateTrigger(Ctx(token).get(), req, &resp);
    if (out) *out = resp.trigger();
    return s;
  }

  static constexpr char kSecret[] = "s3cr3t-0123456789abcdef-0123456789";
  std::unique_ptr<v1::TriggerService::Stub> triggers_;
};

TEST_F(TriggersTest, ATenantsTriggersAreCreatedReadChangedPausedAndDeleted) {
  v1::Trigger t;
  auto s = Create(testing::kTokenA, Failures(), &t);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(t.tenant_id(), testing::kAcme);
  EXPECT_EQ(t.state(), v1::TRIGGER_STATE_ACTIVE);
  EXPECT_EQ(t.created_by(), "a");
  EXPECT_EQ(t.version(), 1);
  EXPECT_EQ(t.webhook().timeout_ms(), 5000);
  EXPECT_TRUE(t.has_secret());
  EXPECT_EQ(t.webhook().secret(), "") << "the secret is never returned";
  EXPECT_EQ(t.predicate().types(0), "metadata.profile.failed");

  // Anyone of the tenant reads it; the secret stays out of every answer.
  v1::GetTriggerRequest get;
  get.set_id(t.id());
  v1::GetTriggerResponse got;
  ASSERT_TRUE(triggers_->GetTrigger(Ctx(testing::kTokenSteward).get(), get, &got).ok());
  EXPECT_EQ(got.trigger().name(), "profile failures");
  EXPECT_THAT(got.DebugString(), Not(HasSubstr(kSecret)));
  v1::ListTriggersResponse list;
  ASSERT_TRUE(triggers_->ListTriggers(Ctx(testing::kTokenEtl).get(), {}, &list).ok());
  ASSERT_EQ(list.triggers_size(), 1);
  EXPECT_THAT(list.DebugString(), Not(HasSubstr(kSecret)));
  // Nor is it in the database's answer to anything but the gateway's own statement.
  EXPECT_EQ(conn_->Exec("SELECT webhook_secret FROM event_trigger")->Get(0, 0), kSecret);

  // Update: the secret kept when none is given; an update against an old version refused.
  v1::UpdateTriggerRequest update;
  update.set_id(t.id());
  update.set_name("profile failures (tier1)");
  *update.mutable_predicate() = t.predicate();
  update.mutable_predicate()->add_sources("agent.profiler");
  update.mutable_webhook()->set_url("https://hooks.example.com/sluice");
  update.mutable_webhook()->set_timeout_ms(2000);
  update.set_expected_version(1);
  v1::UpdateTriggerResponse updated;
  s = triggers_->UpdateTrigger(Ctx(testing::kTokenA).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.trigger().version(), 2);
  EXPECT_EQ(updated.trigger().webhook().timeout_ms(), 2000);
  EXPECT_TRUE(updated.trigger().has_secret());
  EXPECT_EQ(conn_->Exec("SELECT webhook_secret FROM event_trigger")->Get(0, 0), kSecret);
  EXPECT_EQ(triggers_->UpdateTrigger(Ctx(testing::kTokenA).get(), update, &updated).error_code(),
            StatusCode::FAILED_PRECONDITION);

  // Pause and resume.
  v1::PauseTriggerRequest pause;
  pause.set_id(t.id());
  v1::PauseTriggerResponse paused;
  ASSERT_TRUE(triggers_->PauseTrigger(Ctx(testing::kTokenA).get(), pause, &paused).ok());
  EXPECT_EQ(paused.trigger().state(), v1::TRIGGER_STATE_PAUSED);
  v1::ResumeTriggerRequest resume;
  resume.set_id(t.id());
  v1::ResumeTriggerResponse resumed;
  ASSERT_TRUE(triggers_->ResumeTrigger(Ctx(testing::kTokenA).get(), resume, &resumed).ok());
  EXPECT_EQ(resumed.trigger().state(), v1::TRIGGER_STATE_ACTIVE);
  EXPECT_EQ(resumed.trigger().version(), 4);

  // A name is unique in the tenant; delete, then it is gone.
  EXPECT_EQ(Create(testing::kTokenA, Failures("profile failures (tier1)")).error_code(), StatusCode::ALREADY_EXISTS);
  v1::DeleteTriggerRequest del;
  del.set_id(t.id());
  v1::DeleteTriggerResponse deleted;
  ASSERT_TRUE(triggers_->DeleteTrigger(Ctx(testing::kTokenA).get(), del, &deleted).ok());
  EXPECT_EQ(triggers_->GetTrigger(Ctx(testing::kTokenA).get(), get, &got).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(triggers_->DeleteTrigger(Ctx(testing::kTokenA).get(), del, &deleted).error_code(), StatusCode::NOT_FOUND);
}

TEST_F(TriggersTest, OnlyTheTenantSeesItsTriggersAndOnlyTriggerAdminsChangeThem) {
  v1::Trigger t;
  ASSERT_TRUE(Create(testing::kTokenA, Failures(), &t).ok());
  // Another tenant: not found by id, refused by tenant, and its list is empty.
  v1::GetTriggerRequest get;
  get.set_id(t.id());
  v1::GetTriggerResponse got;
  EXPECT_EQ(triggers_->GetTrigger(Ctx(testing::kTokenB).get(), get, &got).error_code(), StatusCode::NOT_FOUND);
  get.set_tenant_id(testing::kAcme);
  EXPECT_EQ(triggers_->GetTrigger(Ctx(testing::kTokenB).get(), get, &got).error_code(), StatusCode::PERMISSION_DENIED);
  v1::ListTriggersResponse list;
  ASSERT_TRUE(triggers_->ListTriggers(Ctx(testing::kTokenB).get(), {}, &list).ok());
  EXPECT_EQ(list.triggers_size(), 0);
  v1::DeleteTriggerRequest del;
  del.set_tenant_id(testing::kAcme);
  del.set_id(t.id());
  v1::DeleteTriggerResponse deleted;
  EXPECT_EQ(triggers_->DeleteTrigger(Ctx(testing::kTokenB).get(), del, &deleted).error_code(),
            StatusCode::PERMISSION_DENIED);
  // Creating for another tenant is refused, with or without the role.
  v1::CreateTriggerRequest theirs = Failures("mine");
  theirs.set_tenant_id(testing::kAcme);
  EXPECT_EQ(Create(testing::kTokenB, theirs).error_code(), StatusCode::PERMISSION_DENIED);
  // The tenant's readers without the role read, and may not change.
  EXPECT_EQ(Create(testing::kTokenSteward, Failures("steward's")).error_code(), StatusCode::PERMISSION_DENIED);
  v1::PauseTriggerRequest pause;
  pause.set_id(t.id());
  v1::PauseTriggerResponse paused;
  EXPECT_EQ(triggers_->PauseTrigger(Ctx(testing::kTokenSteward).get(), pause, &paused).error_code(),
            StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(triggers_->DeleteTrigger(Ctx(testing::kTokenSteward).get(), del, &deleted).error_code(),
            StatusCode::PERMISSION_DENIED);
  // An operator of every tenant names the tenant and may change it.
  EXPECT_EQ(Create(testing::kTokenOps, Failures("ops")).error_code(), StatusCode::INVALID_ARGUMENT);
  v1::CreateTriggerRequest ops = Failures("ops");
  ops.set_tenant_id(testing::kAcme);
  EXPECT_TRUE(Create(testing::kTokenOps, ops).ok());
  EXPECT_EQ(triggers_->DeleteTrigger(Ctx(testing::kTokenOps).get(), del, &deleted).error_code(), StatusCode::OK);
  // No token.
  EXPECT_EQ(Create(nullptr, Failures("x")).error_code(), StatusCode::UNAUTHENTICATED);
}

TEST_F(TriggersTest, BadTriggersAreRefusedNamingEveryFieldAndNothingIsStored) {
  v1::CreateTriggerRequest bad = Failures("");
  bad.mutable_predicate()->add_types("data.exploded");
  bad.mutable_webhook()->set_url("http://hooks.example.com/");  // http to a non-loopback host
  bad.mutable_webhook()->set_secret("too-short");
  v1::CreateTriggerResponse resp;
  auto s = triggers_->CreateTrigger(Ctx(testing::kTokenA).get(), bad, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  for (const char* field : {"name", "predicate.types[1]", "webhook.url", "webhook.secret"})
    EXPECT_THAT(s.error_message(), HasSubstr(Cat(field, ": "))) << s.error_message();
  EXPECT_THAT(s.error_message(), Not(HasSubstr("too-short")));
  // A JSONPath PostgreSQL cannot parse: named, without PostgreSQL's words.
  v1::CreateTriggerRequest path = Failures("bad path");
  path.mutable_predicate()->set_json_path("$.[");
  s = triggers_->CreateTrigger(Ctx(testing::kTokenA).get(), path, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("predicate.json_path"));
  EXPECT_THAT(s.error_message(), Not(HasSubstr("syntax error")));
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM event_trigger")->Get(0, 0), "0");
  // At most 100 per tenant.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(Create(testing::kTokenA, Failures(Cat("t", i))).ok()) << i;
  EXPECT_EQ(Create(testing::kTokenA, Failures("one more")).error_code(), StatusCode::RESOURCE_EXHAUSTED);
}

}  // namespace
}  // namespace sluice
