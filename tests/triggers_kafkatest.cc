// TriggerService over real gRPC against PostgreSQL: create, read, update, pause, resume
// and delete a tenant's triggers; who may change them; tenant isolation; every bad
// field named; the webhook secret never returned. Then delivery: the real sluice-triggers
// binary against a webhook receiver on loopback (two triggers, two deliveries; retries
// recorded; auto-pause and resume; SIGKILL mid-delivery; tenant isolation).
#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/strings.h"
#include "consumers/triggers/delivery_store.h"
#include "consumers/triggers/webhook.h"
#include "contracts/cloudevents.h"
#include "contracts/json.h"
#include "contracts/publish_template.h"
#include "contracts/validate.h"
#include "sluice/v1/trigger_service.grpc.pb.h"
#include "tests/events_fixture.h"
#include "tests/subprocess.h"

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

// A webhook receiver on loopback: records every request, answers each path from a
// script of status codes (the last one repeats), optionally holding the first request.
class Receiver {
 public:
  struct Request {
    std::string path, body, idempotency_key, trigger_id, attempt, signature, content_type;
    absl::Time at;
  };

  Receiver() {
    server_.Post(R"(/hook/([a-z0-9-]+))", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string name = req.matches[1];
      int status = 200;
      absl::Duration hold;
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back({name, req.body, req.get_header_value("Idempotency-Key"),
                             req.get_header_value("Sluice-Trigger-Id"), req.get_header_value("Sluice-Delivery-Attempt"),
                             req.get_header_value("Sluice-Signature"), req.get_header_value("Content-Type"),
                             absl::Now()});
        auto& script = scripts_[name];
        if (!script.empty()) {
          status = script.front();
          if (script.size() > 1) script.erase(script.begin());
        }
        if (holds_[name] > absl::ZeroDuration()) hold = std::exchange(holds_[name], absl::ZeroDuration());
      }
      cv_.notify_all();
      if (hold > absl::ZeroDuration()) absl::SleepFor(hold);
      res.status = status;
      res.set_content("ok", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }

  std::string Url(const std::string& name) const { return common::Cat("http://127.0.0.1:", port_, "/hook/", name); }
  void Script(const std::string& name, std::vector<int> statuses) {
    std::lock_guard<std::mutex> l(mu_);
    scripts_[name] = std::move(statuses);
  }
  // The next request to `name` is answered only after `d`.
  void Hold(const std::string& name, absl::Duration d) {
    std::lock_guard<std::mutex> l(mu_);
    holds_[name] = d;
  }
  std::vector<Request> Got(const std::string& name = "") {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<Request> out;
    for (const auto& r : requests_)
      if (name.empty() || r.path == name) out.push_back(r);
    return out;
  }
  // Waits until `name` got `n` requests; false on timeout.
  bool WaitFor(const std::string& name, size_t n, absl::Duration timeout = absl::Seconds(30)) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, absl::ToChronoMilliseconds(timeout), [&] {
      return static_cast<size_t>(std::count_if(requests_.begin(), requests_.end(),
                                               [&](const Request& r) { return r.path == name; })) >= n;
    });
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request> requests_;
  std::map<std::string, std::vector<int>> scripts_;
  std::map<std::string, absl::Duration> holds_;
};

class DeliveryTest : public TriggersTest {
 protected:
  void TearDown() override {
    StopConsumer(SIGTERM);
    TriggersTest::TearDown();
  }

  // sluice-triggers over this test's topics and schema, with short timings.
  void StartConsumer(const std::vector<std::string>& extra = {}, int workers = 2) {
    std::vector<std::string> args = {"--bootstrap",
                                     bootstrap_,
                                     "--topic-prefix",
                                     prefix_,
                                     "--pg-dsn",
                                     common::DefaultPgDsn(),
                                     "--pg-schema",
                                     schema_,
                                     "--group",
                                     Group("triggers"),
                                     "--allow-http-loopback",
                                     "--metrics-listen",
                                     "",
                                     "--workers",
                                     common::Cat(workers),
                                     "--refresh-ms",
                                     "100",
                                     "--poll-ms",
                                     "50",
                                     "--retry-base-ms",
                                     "100",
                                     "--retry-max-ms",
                                     "300",
                                     "--lease-slack-ms",
                                     "1000",
                                     "--stats-interval-s",
                                     "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = testing::Spawn(
        SLUICE_TRIGGERS_BIN, args,
        common::Cat(::testing::TempDir(), "/triggers-", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                    "-", ++runs_, ".log"));
    ASSERT_GT(pid_, 0);
  }
  void StopConsumer(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    if (sig == SIGTERM) {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "clean stop";
    }
    pid_ = -1;
  }

  v1::Trigger MakeTrigger(const char* token, const std::string& name, const std::string& url,
                          const std::vector<std::string>& types = {}, const std::string& json_path = "",
                          int timeout_ms = 0) {
    v1::CreateTriggerRequest req;
    req.set_name(name);
    for (const auto& t : types) req.mutable_predicate()->add_types(t);
    req.mutable_predicate()->set_json_path(json_path);
    req.mutable_webhook()->set_url(url);
    req.mutable_webhook()->set_secret(common::Cat(kSecret, name));
    req.mutable_webhook()->set_timeout_ms(timeout_ms);
    v1::Trigger t;
    auto s = Create(token, req, &t);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return t;
  }

  std::vector<v1::DeliveryAttempt> History(const char* token, const std::string& trigger, int page_size = 0,
                                           std::string* cursor = nullptr, grpc::Status* status = nullptr) {
    v1::ListTriggerDeliveriesRequest req;
    req.set_trigger_id(trigger);
    req.set_page_size(page_size);
    if (cursor) req.set_cursor(*cursor);
    v1::ListTriggerDeliveriesResponse resp;
    auto s = triggers_->ListTriggerDeliveries(Ctx(token).get(), req, &resp);
    if (status) {
      *status = s;
    } else {
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    if (cursor) *cursor = resp.next_cursor();
    return {resp.attempts().begin(), resp.attempts().end()};
  }

  // Waits until `trigger`'s history holds an attempt with `outcome`.
  bool WaitForOutcome(const std::string& trigger, v1::DeliveryOutcome outcome,
                      absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      for (const auto& a : History(testing::kTokenA, trigger, 500))
        if (a.outcome() == outcome) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  v1::Trigger GetT(const std::string& id) {
    v1::GetTriggerRequest req;
    req.set_id(id);
    v1::GetTriggerResponse resp;
    auto s = triggers_->GetTrigger(Ctx(testing::kTokenA).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.trigger();
  }

  // The receiver can verify it: v1 is the HMAC of "<t>.<body>" under the trigger's secret.
  static void ExpectSigned(const Receiver::Request& r, const std::string& secret) {
    const auto comma = r.signature.find(",v1=");
    ASSERT_TRUE(r.signature.starts_with("t=") && comma != std::string::npos) << r.signature;
    const std::string t = r.signature.substr(2, comma - 2);
    EXPECT_EQ(r.signature.substr(comma + 4), triggers::HmacSha256Hex(secret, common::Cat(t, ".", r.body)));
    EXPECT_NE(r.signature.substr(comma + 4), triggers::HmacSha256Hex(kSecret, common::Cat(t, ".", r.body)))
        << "each trigger's own secret";
    int64_t ts = 0;
    ASSERT_TRUE(absl::SimpleAtoi(t, &ts));
    EXPECT_LE(std::abs(ts - absl::ToUnixSeconds(absl::Now())), 60);
  }

  Receiver receiver_;
  pid_t pid_ = -1;
  int runs_ = 0;
};

TEST_F(DeliveryTest, AnEventMatchingTwoTriggersIsDeliveredTwiceSignedAndNoOtherTenantsTriggerFires) {
  const auto one = MakeTrigger(testing::kTokenA, "one", receiver_.Url("one"), {"data.refreshed"});
  const auto two =
      MakeTrigger(testing::kTokenA, "two", receiver_.Url("two"), {}, "$.rowsAffected.double() ? (@ > 1000)");
  const auto small =
      MakeTrigger(testing::kTokenA, "small", receiver_.Url("small"), {}, "$.rowsAffected.double() ? (@ < 10)");
  const auto kpis = MakeTrigger(testing::kTokenA, "kpis", receiver_.Url("kpis"), {"kpi.changed"});
  // tenant-b's token holds no trigger_admin role: the operator creates tenant-b's trigger.
  v1::CreateTriggerRequest b_req;
  b_req.set_tenant_id(testing::kB);
  b_req.set_name("b-everything");
  b_req.mutable_webhook()->set_url(receiver_.Url("b"));
  b_req.mutable_webhook()->set_secret(kSecret);
  v1::Trigger b_trigger;
  ASSERT_TRUE(Create(testing::kTokenOps, b_req, &b_trigger).ok());
  StartConsumer();

  const v1::Envelope e = Make("data.refreshed", testing::kAcme);
  PublishAll({e});
  ASSERT_TRUE(receiver_.WaitFor("one", 1));
  ASSERT_TRUE(receiver_.WaitFor("two", 1));
  absl::SleepFor(absl::Seconds(2));  // anything extra would arrive by now
  const auto got = receiver_.Got();
  ASSERT_EQ(got.size(), 2u) << "exactly the two matching triggers, once each; not small, kpis or tenant-b's";
  for (const auto& r : got) {
    const v1::Trigger& t = r.path == "one" ? one : two;
    EXPECT_EQ(r.trigger_id, t.id());
    EXPECT_EQ(r.idempotency_key, e.id());
    EXPECT_EQ(r.attempt, "1");
    EXPECT_EQ(r.content_type, "application/cloudevents+json; charset=utf-8");
    ExpectSigned(r, common::Cat(kSecret, t.name()));
    google::protobuf::Struct doc;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &doc).ok()) << r.body;
    EXPECT_EQ(doc.fields().at("id").string_value(), e.id());
    EXPECT_EQ(doc.fields().at("type").string_value(), "data.refreshed");
    EXPECT_EQ(doc.fields().at("tenantid").string_value(), testing::kAcme);
    EXPECT_EQ(doc.fields().at("data").struct_value().fields().at("rowsAffected").string_value(), "25000");
  }
  // Each delivery recorded once; nothing for the others.
  ASSERT_TRUE(WaitForOutcome(one.id(), v1::DELIVERY_OUTCOME_DELIVERED));
  auto h = History(testing::kTokenA, one.id());
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].event_id(), e.id());
  EXPECT_EQ(h[0].status_code(), 200);
  EXPECT_EQ(h[0].attempt(), 1);
  EXPECT_EQ(h[0].error(), "");
  EXPECT_THAT(History(testing::kTokenA, small.id()), ::testing::IsEmpty());
  EXPECT_THAT(History(testing::kTokenA, kpis.id()), ::testing::IsEmpty());

  // tenant-b neither sees acme's history nor finds the trigger under its own tenant.
  grpc::Status s;
  History(testing::kTokenB, one.id(), 0, nullptr, &s);
  EXPECT_EQ(s.error_code(), StatusCode::NOT_FOUND);
  v1::ListTriggerDeliveriesRequest cross;
  cross.set_tenant_id(testing::kAcme);
  cross.set_trigger_id(one.id());
  v1::ListTriggerDeliveriesResponse resp;
  EXPECT_EQ(triggers_->ListTriggerDeliveries(Ctx(testing::kTokenB).get(), cross, &resp).error_code(),
            StatusCode::PERMISSION_DENIED);

  // A tenant-b event fires tenant-b's trigger only.
  PublishAll({Make("data.refreshed", testing::kB)});
  ASSERT_TRUE(receiver_.WaitFor("b", 1));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(receiver_.Got().size(), 3u);

  // Health: acme's four triggers, two deliveries in the last hour.
  v1::GetEventHealthResponse health;
  ASSERT_TRUE(query_->GetEventHealth(Ctx(testing::kTokenA).get(), {}, &health).ok());
  ASSERT_EQ(health.triggers_size(), 1) << "only the caller's tenant";
  EXPECT_EQ(health.triggers(0).tenant_id(), testing::kAcme);
  EXPECT_EQ(health.triggers(0).active(), 4);
  EXPECT_EQ(health.triggers(0).delivered_last_hour(), 2);
  EXPECT_EQ(health.triggers(0).pending(), 0);
}

TEST_F(DeliveryTest, AReceiverThatFailsThreeTimesThenSucceedsGetsFourAttemptsAllRecorded) {
  const auto t = MakeTrigger(testing::kTokenA, "flaky", receiver_.Url("flaky"));
  receiver_.Script("flaky", {503, 500, 429, 200});
  StartConsumer();
  const v1::Envelope e = Make("data.refreshed", testing::kAcme);
  PublishAll({e});
  ASSERT_TRUE(receiver_.WaitFor("flaky", 4));
  ASSERT_TRUE(WaitForOutcome(t.id(), v1::DELIVERY_OUTCOME_DELIVERED));
  absl::SleepFor(absl::Seconds(1));
  const auto got = receiver_.Got("flaky");
  ASSERT_EQ(got.size(), 4u) << "no attempt after the success";
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].idempotency_key, e.id()) << "the same key on every attempt";
    EXPECT_EQ(got[i].body, got[0].body) << "the same bytes on every attempt";
    EXPECT_EQ(got[i].attempt, common::Cat(i + 1));
  }
  EXPECT_GE(got[1].at - got[0].at, absl::Milliseconds(70)) << "a back-off between attempts";

  // The history, newest first, a page at a time.
  std::string cursor;
  auto first = History(testing::kTokenA, t.id(), 3, &cursor);
  ASSERT_EQ(first.size(), 3u);
  ASSERT_FALSE(cursor.empty());
  auto rest = History(testing::kTokenA, t.id(), 3, &cursor);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_TRUE(cursor.empty()) << "the last page";
  first.insert(first.end(), rest.begin(), rest.end());
  const int codes[] = {200, 429, 500, 503};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(first[i].attempt(), 4 - i);
    EXPECT_EQ(first[i].status_code(), codes[i]);
    EXPECT_EQ(first[i].outcome(), i == 0 ? v1::DELIVERY_OUTCOME_DELIVERED : v1::DELIVERY_OUTCOME_RETRY);
    EXPECT_EQ(first[i].error(), i == 0 ? "" : common::Cat("HTTP ", codes[i]));
  }
  grpc::Status s;
  std::string bad = "not-a-cursor!";
  History(testing::kTokenA, t.id(), 3, &bad, &s);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::ViolationField(s), "cursor");
}

TEST_F(DeliveryTest, AReceiverThatKeepsFailingPausesTheTriggerWhichResumesAfterTheCoolOff) {
  const auto t = MakeTrigger(testing::kTokenA, "down", receiver_.Url("down"));
  receiver_.Script("down", {500});
  StartConsumer({"--pause-after-failures", "3", "--failure-window-s", "60", "--cool-off-s", "4"});
  PublishAll({Make("data.refreshed", testing::kAcme)});
  ASSERT_TRUE(receiver_.WaitFor("down", 3));
  // Paused at the third failure: nothing more is attempted during the cool-off.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (GetT(t.id()).state() != v1::TRIGGER_STATE_AUTO_PAUSED && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(50));
  const v1::Trigger paused = GetT(t.id());
  ASSERT_EQ(paused.state(), v1::TRIGGER_STATE_AUTO_PAUSED);
  EXPECT_TRUE(paused.has_auto_resume_at());
  const size_t at_pause = receiver_.Got("down").size();
  EXPECT_EQ(at_pause, 3u);
  v1::GetEventHealthResponse health;
  ASSERT_TRUE(query_->GetEventHealth(Ctx(testing::kTokenA).get(), {}, &health).ok());
  ASSERT_EQ(health.triggers_size(), 1);
  EXPECT_EQ(health.triggers(0).auto_paused(), 1);
  EXPECT_EQ(health.triggers(0).pending(), 1) << "the delivery waits, it is not dropped";
  EXPECT_EQ(health.triggers(0).retrying(), 1);
  EXPECT_EQ(health.triggers(0).failed_last_hour(), 3);
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(receiver_.Got("down").size(), at_pause) << "no attempt while paused";

  // After the cool-off it tries again on its own; the receiver is back.
  receiver_.Script("down", {200});
  ASSERT_TRUE(receiver_.WaitFor("down", at_pause + 1, absl::Seconds(15)));
  ASSERT_TRUE(WaitForOutcome(t.id(), v1::DELIVERY_OUTCOME_DELIVERED));
  EXPECT_EQ(GetT(t.id()).state(), v1::TRIGGER_STATE_ACTIVE);
  EXPECT_GE(receiver_.Got("down").back().at - receiver_.Got("down")[at_pause - 1].at, absl::Seconds(3))
      << "not before the cool-off";
}

TEST_F(DeliveryTest, ResumingAnAutoPausedTriggerStartsAFreshCount) {
  const auto t = MakeTrigger(testing::kTokenA, "down", receiver_.Url("down"));
  receiver_.Script("down", {500});
  StartConsumer({"--pause-after-failures", "3", "--failure-window-s", "600", "--cool-off-s", "600"});
  PublishAll({Make("data.refreshed", testing::kAcme)});
  ASSERT_TRUE(receiver_.WaitFor("down", 3));
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (GetT(t.id()).state() != v1::TRIGGER_STATE_AUTO_PAUSED && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(50));
  ASSERT_EQ(GetT(t.id()).state(), v1::TRIGGER_STATE_AUTO_PAUSED);
  // Resumed by hand long before the cool-off: attempts start again at once, and the three
  // failures before the resume do not count again (two more do not pause it).
  v1::ResumeTriggerRequest resume;
  resume.set_id(t.id());
  v1::ResumeTriggerResponse resumed;
  ASSERT_TRUE(triggers_->ResumeTrigger(Ctx(testing::kTokenA).get(), resume, &resumed).ok());
  EXPECT_EQ(resumed.trigger().state(), v1::TRIGGER_STATE_ACTIVE);
  ASSERT_TRUE(receiver_.WaitFor("down", 5, absl::Seconds(10)));
  EXPECT_EQ(GetT(t.id()).state(), v1::TRIGGER_STATE_ACTIVE) << "two failures since the resume";
  ASSERT_TRUE(receiver_.WaitFor("down", 6, absl::Seconds(10)));
  deadline = absl::Now() + absl::Seconds(5);
  while (GetT(t.id()).state() != v1::TRIGGER_STATE_AUTO_PAUSED && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(GetT(t.id()).state(), v1::TRIGGER_STATE_AUTO_PAUSED) << "the third since the resume";
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(receiver_.Got("down").size(), 6u);
}

TEST_F(DeliveryTest, AConsumerKilledMidDeliveryLosesNoneAndResendsUnderTheSameKey) {
  const auto t = MakeTrigger(testing::kTokenA, "slow", receiver_.Url("slow"));
  // Held longer than the trigger's 5 s timeout: the kill always comes first.
  receiver_.Hold("slow", absl::Seconds(6));
  std::vector<v1::Envelope> events;
  for (int i = 0; i < 5; ++i) events.push_back(Make("data.refreshed", testing::kAcme));
  PublishAll(events);
  // A short session, so the restarted member gets the partitions of the killed one soon.
  const std::string kafka_config = common::Cat(::testing::TempDir(), "/triggers-", prefix_, "kafka.properties");
  std::ofstream(kafka_config) << "session.timeout.ms=6000\nheartbeat.interval.ms=1000\n";
  StartConsumer({"--kafka-config", kafka_config}, /*workers=*/1);
  ASSERT_TRUE(receiver_.WaitFor("slow", 1));
  const std::string first_key = receiver_.Got("slow")[0].idempotency_key;
  StopConsumer(SIGKILL);  // while the receiver holds the first request
  StartConsumer({"--kafka-config", kafka_config}, /*workers=*/1);
  // Five events, each delivered; the interrupted one again under its key.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  std::set<std::string> delivered;
  while (absl::Now() < deadline && delivered.size() < events.size()) {
    delivered.clear();
    for (const auto& a : History(testing::kTokenA, t.id(), 500))
      if (a.outcome() == v1::DELIVERY_OUTCOME_DELIVERED) delivered.insert(a.event_id());
    absl::SleepFor(absl::Milliseconds(200));
  }
  std::set<std::string> want;
  for (const auto& e : events) want.insert(e.id());
  EXPECT_EQ(delivered, want) << "no delivery lost";
  std::map<std::string, int> per_key;
  for (const auto& r : receiver_.Got("slow")) ++per_key[r.idempotency_key];
  EXPECT_GE(per_key[first_key], 2) << "the interrupted delivery was sent again with the same key";
  bool interrupted = false;
  for (const auto& a : History(testing::kTokenA, t.id(), 500))
    if (a.event_id() == first_key && a.outcome() == v1::DELIVERY_OUTCOME_INTERRUPTED) interrupted = a.attempt() == 1;
  EXPECT_TRUE(interrupted) << "the attempt the kill cut short is recorded as interrupted";
}

// Re-profile an entity whose quality dropped: its data.quality.degraded as a profile request.
constexpr char kReprofile[] = R"({"entityType": "{{payload.entityType}}", "entityId": "{{payload.entityId}}",
  "canonicalKey": "{{payload.canonicalKey}}", "tier": "{{payload.tier}}", "priority": "PRIORITY_HIGH",
  "reason": "PROFILE_REASON_QUALITY_DROP"})";

TEST_F(DeliveryTest, SluicectlTriggersCreatesListsShowsHistoryAndDeletes) {
  const std::string gateway = common::Cat("127.0.0.1:", gateway_->port());
  const std::string secret_file = common::Cat(::testing::TempDir(), "/secret-", prefix_);
  std::ofstream(secret_file) << kSecret << "\n";
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "triggers");
    args.insert(args.end(), {"--gateway", gateway, "--token", testing::kTokenA});
    return testing::RunCaptured(SLUICECTL, args, common::Cat(::testing::TempDir(), "/triggers-", prefix_, ".out"));
  };
  auto [rc, out] =
      run({"create", "--name", "cli", "--type", "data.refreshed", "--json-path", "$.rowsAffected.double() ? (@ > 1000)",
           "--url", receiver_.Url("cli"), "--secret-file", secret_file, "--json"});
  ASSERT_EQ(rc, 0) << out;
  v1::Trigger t;
  ASSERT_TRUE(contracts::FromJson(out, t).ok()) << out;
  EXPECT_EQ(t.name(), "cli");
  EXPECT_THAT(out, Not(HasSubstr(kSecret)));
  EXPECT_EQ(conn_->Exec("SELECT webhook_secret FROM event_trigger")->Get(0, 0), kSecret) << "read from the file";
  std::tie(rc, out) = run({"list"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr(t.id()));
  EXPECT_THAT(out, HasSubstr(" active "));
  EXPECT_THAT(out, HasSubstr(receiver_.Url("cli")));

  StartConsumer();
  const v1::Envelope e = Make("data.refreshed", testing::kAcme);
  PublishAll({e});
  ASSERT_TRUE(WaitForOutcome(t.id(), v1::DELIVERY_OUTCOME_DELIVERED));
  std::tie(rc, out) = run({"history", t.id()});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr(common::Cat("event ", e.id(), "  attempt 1  delivered")));
  EXPECT_THAT(out, HasSubstr("HTTP 200"));

  // Errors: the gateway's words and exit 1; no secret, no create.
  std::tie(rc, out) = run({"create", "--name", "nosecret", "--url", receiver_.Url("x")});
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("--secret-file"));
  std::tie(rc, out) = run({"history", "not-a-uuid"});
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("trigger_id"));
  std::tie(rc, out) = run({"pause", t.id()});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr(" paused "));
  std::tie(rc, out) = run({"resume", t.id()});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr(" active "));
  std::tie(rc, out) = run({"delete", t.id()});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = run({"list"});
  EXPECT_THAT(out, Not(HasSubstr(t.id())));
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM trigger_delivery_attempt")->Get(0, 0), "0") << "history went with it";
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM trigger_delivery")->Get(0, 0), "0") << "and its deliveries";

  // A publishing trigger, its template from a file.
  const std::string tmpl_file = common::Cat(::testing::TempDir(), "/template-", prefix_);
  std::ofstream(tmpl_file) << kReprofile;
  std::tie(rc, out) = run({"create", "--name", "derive", "--type", "data.quality.degraded", "--publish-type",
                           "metadata.profile.due", "--publish-template-file", tmpl_file});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("-> publish metadata.profile.due"));
  EXPECT_EQ(conn_->Exec("SELECT kind, publish_template FROM event_trigger WHERE name = 'derive'")->Get(0, 1),
            kReprofile);
  std::tie(rc, out) = run({"create", "--name", "both", "--publish-type", "metadata.profile.due", "--url",
                           receiver_.Url("x"), "--publish-template-file", tmpl_file});
  EXPECT_NE(rc, 0) << "one action: " << out;
  EXPECT_THAT(out, HasSubstr("excludes")) << out;
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM event_trigger WHERE name = 'both'")->Get(0, 0), "0");
  std::tie(rc, out) = run({"create", "--name", "neither"});
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("--url or --publish-type"));
}

TEST_F(DeliveryTest, AJsonPathThatFailsOnAnEventMatchesNothingAndStallsNoOtherTrigger) {
  // (The paths here are evaluated by PostgreSQL or in memory, side by side.)
  // PostgreSQL raises an error (not false) comparing a date with a timestamptz: before,
  // the one statement evaluating every path of a batch failed, and the batch was retried
  // for ever with nothing delivered to anyone.
  const auto poison = MakeTrigger(testing::kTokenA, "poison", receiver_.Url("poison"), {"data.refreshed"},
                                  R"($.entityUrn.datetime() ? (@ < "2024-01-02 00:00:00+00".datetime()))");
  MakeTrigger(testing::kTokenA, "fine", receiver_.Url("fine"), {"data.refreshed"}, "$.rowsAffected");
  // Evaluated in memory (common/jsonpath.h) and by PostgreSQL (like_regex), in one batch.
  MakeTrigger(testing::kTokenA, "in-memory", receiver_.Url("in-memory"), {"data.refreshed"},
              R"($.entityUrn ? (@ starts with "2024-") ? (@ != "2024-01-02"))");
  MakeTrigger(testing::kTokenA, "regex", receiver_.Url("regex"), {"data.refreshed"},
              R"($.entityUrn ? (@ like_regex "^2024-01-0[1-3]$"))");
  MakeTrigger(testing::kTokenA, "in-memory-no-match", receiver_.Url("no-match"), {"data.refreshed"},
              R"($.entityUrn ? (@ starts with "2025-"))");
  MakeTrigger(testing::kTokenA, "regex-no-match", receiver_.Url("no-match"), {"data.refreshed"},
              R"($.entityUrn ? (@ like_regex "^2025"))");
  v1::CreateTriggerRequest b_req;
  b_req.set_tenant_id(testing::kB);
  b_req.set_name("b");
  b_req.mutable_predicate()->set_json_path("$.rowsAffected");
  b_req.mutable_webhook()->set_url(receiver_.Url("b"));
  b_req.mutable_webhook()->set_secret(kSecret);
  ASSERT_TRUE(Create(testing::kTokenOps, b_req).ok());
  v1::Envelope bad = Make("data.refreshed", testing::kAcme);
  bad.mutable_data_refreshed()->set_entity_urn("2024-01-01");
  PublishAll({bad, Make("data.refreshed", testing::kB)});
  StartConsumer();
  EXPECT_TRUE(receiver_.WaitFor("fine", 1)) << "the same tenant's other trigger";
  EXPECT_TRUE(receiver_.WaitFor("b", 1)) << "another tenant's trigger";
  EXPECT_TRUE(receiver_.WaitFor("in-memory", 1));
  EXPECT_TRUE(receiver_.WaitFor("regex", 1));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_THAT(receiver_.Got("poison"), ::testing::IsEmpty());
  EXPECT_THAT(receiver_.Got("no-match"), ::testing::IsEmpty());
  EXPECT_EQ(receiver_.Got("in-memory").size(), 1u);
  EXPECT_EQ(receiver_.Got("regex").size(), 1u);
  EXPECT_THAT(History(testing::kTokenA, poison.id()), ::testing::IsEmpty());
}

// ---- publishing triggers ----

TEST_F(DeliveryTest, APublishingTriggerPublishesOneDerivedEventPerMatchAndNeverLoops) {
  auto publishing = [&](const std::string& name, const std::vector<std::string>& types, const std::string& path,
                        const std::string& tmpl, v1::Trigger* out) {
    v1::CreateTriggerRequest req;
    req.set_name(name);
    for (const auto& t : types) req.mutable_predicate()->add_types(t);
    req.mutable_predicate()->set_json_path(path);
    req.mutable_publish()->set_type("metadata.profile.due");
    req.mutable_publish()->set_payload_template(tmpl);
    return Create(testing::kTokenA, req, out);
  };
  v1::Trigger reprofile, incomplete, loop;
  ASSERT_TRUE(
      publishing("reprofile tier1", {"data.quality.degraded"}, R"($.tier ? (@ == "tier1"))", kReprofile, &reprofile)
          .ok());
  // The stored action comes back; a publishing trigger has no webhook.
  EXPECT_EQ(GetT(reprofile.id()).publish().type(), "metadata.profile.due");
  EXPECT_EQ(GetT(reprofile.id()).publish().payload_template(), kReprofile);
  EXPECT_FALSE(GetT(reprofile.id()).has_webhook());
  // A placeholder the degradation's payload has nothing for: every attempt fails.
  ASSERT_TRUE(publishing("incomplete", {"data.quality.degraded"}, "",
                         R"({"entityType": "metadata", "entityId": "{{payload.rowsAffected}}", "canonicalKey": "k",
                             "tier": "tier1", "priority": "high", "reason": "manual"})",
                         &incomplete)
                  .ok());
  // Would answer every profile request with another one.
  ASSERT_TRUE(publishing("loop", {"metadata.profile.due"}, "",
                         R"({"entityType": "metadata", "entityId": "{{payload.entityId}}", "canonicalKey": "k",
                             "tier": "tier1", "priority": "high", "reason": "manual"})",
                         &loop)
                  .ok());
  // A webhook trigger sees derived events like any other.
  const auto watcher = MakeTrigger(testing::kTokenA, "watcher", receiver_.Url("watcher"), {"metadata.profile.due"});

  v1::Envelope tier1 = Make("data.quality.degraded", testing::kAcme);
  tier1.mutable_data_quality_degraded()->set_tier(v1::TIER_1);
  v1::Envelope tier2 = Make("data.quality.degraded", testing::kAcme);
  tier2.mutable_data_quality_degraded()->set_tier(v1::TIER_2);
  v1::Envelope other_tenant = Make("data.quality.degraded", testing::kB);
  other_tenant.mutable_data_quality_degraded()->set_tier(v1::TIER_1);
  PublishAll({tier1, tier2, other_tenant});
  StartConsumer();
  ASSERT_TRUE(WaitForOutcome(reprofile.id(), v1::DELIVERY_OUTCOME_DELIVERED));
  ASSERT_TRUE(receiver_.WaitFor("watcher", 1)) << "the derived event reached a webhook trigger";
  // Both of tenant-acme's degradations match it.
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);
       History(testing::kTokenA, incomplete.id()).size() < 2 && absl::Now() < deadline;)
    absl::SleepFor(absl::Milliseconds(100));

  const std::string topic = catalog_->Find("metadata.profile.due")->topic;
  std::vector<v1::Envelope> derived;
  for (const auto& r : ReadAll(topic))
    if (r.envelope.type() == "metadata.profile.due") derived.push_back(r.envelope);
  ASSERT_EQ(derived.size(), 1u) << "one match of one trigger: tier2 does not match, tenant-b has no trigger";
  const v1::Envelope& d = derived[0];
  EXPECT_EQ(d.id(), contracts::DerivedEventId(reprofile.id(), tier1));
  EXPECT_EQ(d.source(), "sluice.triggers");
  EXPECT_EQ(d.tenant_id(), testing::kAcme);
  EXPECT_EQ(d.causation_id(), tier1.id());
  EXPECT_EQ(d.correlation_id(), tier1.correlation_id());
  EXPECT_EQ(d.profile_due().entity_id(), tier1.data_quality_degraded().entity_id());
  EXPECT_EQ(d.profile_due().canonical_key(), tier1.data_quality_degraded().canonical_key());
  EXPECT_EQ(d.profile_due().tier(), v1::TIER_1);
  EXPECT_EQ(d.profile_due().priority(), v1::PRIORITY_HIGH);
  EXPECT_EQ(d.profile_due().reason(), v1::PROFILE_REASON_QUALITY_DROP);
  EXPECT_TRUE(contracts::Validate(d, *catalog_).ok());
  // Attempts: one delivered; the incomplete template failed once, not retried, with the reason.
  auto attempts = History(testing::kTokenA, reprofile.id());
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].event_id(), tier1.id());
  EXPECT_EQ(attempts[0].status_code(), 0);
  EXPECT_EQ(attempts[0].error(), "");
  auto failed = History(testing::kTokenA, incomplete.id());
  ASSERT_EQ(failed.size(), 2u) << "both of tenant-acme's degradations matched, each tried once";
  for (const auto& a : failed) {
    EXPECT_EQ(a.outcome(), v1::DELIVERY_OUTCOME_FAILED);
    EXPECT_THAT(a.error(), HasSubstr("has no rowsAffected")) << a.error();
  }
  // The watcher's delivery of the derived event was queued with whatever the loop trigger
  // would have had: nothing.
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM trigger_delivery WHERE trigger_id = $1::uuid", {loop.id()})->Get(0, 0),
            "0")
      << "a derived event fires no publishing trigger";
  ASSERT_EQ(receiver_.Got("watcher").size(), 1u);
}

TEST_F(DeliveryTest, TheSweepRemovesDeliveriesWhoseTriggerIsGoneAndTheBacklogIgnoresThem) {
  const auto kept = MakeTrigger(testing::kTokenA, "kept", receiver_.Url("kept"));
  // As a gateway older than migration 0021 left them: its trigger deleted, not the row.
  ASSERT_TRUE(conn_
                  ->Exec("INSERT INTO trigger_delivery (tenant_id, trigger_id, event_id, event_type, body) VALUES"
                         " ($1, gen_random_uuid(), 'orphan', 'data.refreshed', '{}'),"
                         " ($1, $2::uuid, 'live', 'data.refreshed', '{}')",
                         {testing::kAcme, kept.id()})
                  .ok());
  auto backlog = triggers::Backlog(*conn_);
  ASSERT_TRUE(backlog.ok()) << backlog.status();
  EXPECT_EQ(backlog->pending, 1) << "only the live trigger's delivery";
  auto swept = triggers::Sweep(*conn_, absl::Hours(24), /*batch=*/1);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(*swept, 1);
  EXPECT_EQ(conn_->Exec("SELECT event_id FROM trigger_delivery")->Get(0, 0), "live");
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM trigger_delivery")->Get(0, 0), "1");
}

TEST_F(DeliveryTest, PublishingTriggersAreCheckedAndKeepTheirKindOfAction) {
  v1::CreateTriggerRequest req;
  req.set_name("forge");
  req.mutable_publish()->set_type("approval.approved");  // a decision nobody made
  req.mutable_publish()->set_payload_template(R"({"nope": "{{event.secret}}"})");
  req.mutable_webhook()->set_url(receiver_.Url("x"));
  auto s = Create(testing::kTokenA, req);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("publish.type"));
  EXPECT_THAT(s.error_message(), HasSubstr("webhook: must be empty"));
  req.mutable_publish()->set_type("metadata.profile.due");
  req.clear_webhook();
  s = Create(testing::kTokenA, req);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("publish.payload_template"));
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM event_trigger")->Get(0, 0), "0") << "nothing half-written";
  // Only trigger admins create them, like any trigger.
  req.mutable_publish()->set_payload_template(kReprofile);
  EXPECT_EQ(Create(testing::kTokenB, req).error_code(), StatusCode::PERMISSION_DENIED);
  v1::Trigger t;
  ASSERT_TRUE(Create(testing::kTokenA, req, &t).ok());
  const auto hook = MakeTrigger(testing::kTokenA, "hook", receiver_.Url("hook"));

  v1::UpdateTriggerRequest up;
  up.set_id(t.id());
  up.set_name("forge");
  up.mutable_webhook()->set_url(receiver_.Url("x"));
  v1::UpdateTriggerResponse resp;
  s = triggers_->UpdateTrigger(Ctx(testing::kTokenA).get(), up, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << "a publishing trigger stays one";
  EXPECT_THAT(s.error_message(), HasSubstr("publishes a derived event"));
  up.clear_webhook();
  up.mutable_publish()->set_type("metadata.profile.due");
  up.mutable_publish()->set_payload_template(R"({"entityType": "metadata", "entityId": "{{payload.entityId}}",
    "canonicalKey": "{{payload.canonicalKey}}", "tier": "tier1", "priority": "low", "reason": "schedule"})");
  ASSERT_TRUE(triggers_->UpdateTrigger(Ctx(testing::kTokenA).get(), up, &resp).ok());
  EXPECT_EQ(resp.trigger().publish().payload_template(), up.publish().payload_template());
  EXPECT_EQ(resp.trigger().version(), 2);
  up.set_id(hook.id());
  up.set_name("hook");
  s = triggers_->UpdateTrigger(Ctx(testing::kTokenA).get(), up, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << "a webhook trigger stays one";
  EXPECT_THAT(s.error_message(), HasSubstr("calls a webhook"));
  // Listed, counted and deleted with the other triggers.
  v1::ListTriggersRequest list;
  v1::ListTriggersResponse listed;
  ASSERT_TRUE(triggers_->ListTriggers(Ctx(testing::kTokenA).get(), list, &listed).ok());
  EXPECT_EQ(listed.triggers_size(), 2);
  v1::DeleteTriggerRequest del;
  del.set_id(t.id());
  v1::DeleteTriggerResponse deleted;
  EXPECT_TRUE(triggers_->DeleteTrigger(Ctx(testing::kTokenA).get(), del, &deleted).ok());
}

// ---- notification sinks ----

class NotifyTest : public DeliveryTest {
 protected:
  v1::NotificationSink MakeSink(const char* token, const std::string& name, v1::NotificationSinkKind kind,
                                const std::string& url, const std::string& secret, int threshold = 0,
                                const std::string& tenant = "") {
    v1::CreateNotificationSinkRequest req;
    req.set_tenant_id(tenant);
    req.set_name(name);
    req.set_kind(kind);
    req.set_url(url);
    req.set_secret(secret);
    req.set_quality_threshold(threshold);
    v1::CreateNotificationSinkResponse resp;
    auto s = triggers_->CreateNotificationSink(Ctx(token).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.sink();
  }

  // The token file sluice-triggers reads the approvers from: two stewards of acme, the
  // requester (a steward too, who never decides their own), a steward of tenant-b and an
  // operator without the role.
  std::string TokenFile() {
    const std::string path = common::Cat(::testing::TempDir(), "/tokens-", prefix_, ".textproto");
    std::ofstream(path) << "principals { name: \"steward\" token_sha256: \"" << std::string(64, 'a')
                        << "\" tenants: \"tenant-acme\" roles: \"metadata_steward\" }\n"
                        << "principals { name: \"steward2\" token_sha256: \"" << std::string(64, 'b')
                        << "\" tenants: \"tenant-acme\" roles: \"metadata_steward\" }\n"
                        << "principals { name: \"test-user\" token_sha256: \"" << std::string(64, 'c')
                        << "\" tenants: \"tenant-acme\" roles: \"metadata_steward\" }\n"
                        << "principals { name: \"b-steward\" token_sha256: \"" << std::string(64, 'd')
                        << "\" tenants: \"tenant-b\" roles: \"metadata_steward\" }\n"
                        << "principals { name: \"ops\" token_sha256: \"" << std::string(64, 'e')
                        << "\" tenants: \"*\" roles: \"operator\" }\n";
    return path;
  }

  v1::Envelope Profile(const std::string& tenant, v1::Tier tier, double score, const std::string& profile_id,
                       const std::string& correlation) {
    v1::Envelope e = Make("metadata.profile.completed", tenant);
    auto* p = e.mutable_profile_completed();
    p->set_tier(tier);
    p->set_quality_score(score);
    p->set_quality_grade(score < 70 ? v1::QUALITY_GRADE_D : v1::QUALITY_GRADE_B);
    p->set_profile_id(profile_id);
    p->set_canonical_key(common::Cat("finance.revenue.", profile_id.substr(0, 8)));
    e.set_correlation_id(correlation);
    return e;
  }

  static google::protobuf::Struct Json(const std::string& body) {
    google::protobuf::Struct doc;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(body, &doc).ok()) << body;
    return doc;
  }
  static std::string Str(const google::protobuf::Struct& d, const std::string& k) {
    auto it = d.fields().find(k);
    return it == d.fields().end() ? "" : it->second.string_value();
  }
  static std::vector<std::string> Strs(const google::protobuf::Struct& d, const std::string& k) {
    std::vector<std::string> out;
    auto it = d.fields().find(k);
    if (it != d.fields().end())
      for (const auto& v : it->second.list_value().values()) out.push_back(v.string_value());
    return out;
  }
};

TEST_F(NotifyTest, SinksGetOneQualityNotificationPerProfileAndApprovalsReachTheirAudience) {
  const std::string secret = common::Cat(kSecret, "-sink");
  const auto hook =
      MakeSink(testing::kTokenA, "ops-hook", v1::NOTIFICATION_SINK_KIND_WEBHOOK, receiver_.Url("hook"), secret);
  const auto slack =
      MakeSink(testing::kTokenA, "ops-slack", v1::NOTIFICATION_SINK_KIND_SLACK, receiver_.Url("slack"), "", 50);
  MakeSink(testing::kTokenOps, "b-hook", v1::NOTIFICATION_SINK_KIND_WEBHOOK, receiver_.Url("b-hook"), secret, 0,
           testing::kB);
  // A plain trigger of every approval.created still gets the CloudEvent.
  MakeTrigger(testing::kTokenA, "plain", receiver_.Url("plain"), {"approval.created"});
  // The approval the decision below is about, requested by test-user.
  const std::string decided = contracts::NewUuidV7();
  ASSERT_TRUE(conn_
                  ->Exec("INSERT INTO mdm_approval (id, tenant_id, entity_type, tier, lane, payload, requested_by,"
                         " required_role) VALUES ($1::uuid, 'tenant-acme', 'metadata', 'tier1', 'governed',"
                         " '{}', 'test-user', 'metadata_steward')",
                         {decided})
                  .ok());
  StartConsumer({"--tokens", TokenFile()});

  const std::string p1 = contracts::NewUuidV7(), p2 = contracts::NewUuidV7(), p3 = contracts::NewUuidV7(),
                    p4 = contracts::NewUuidV7();
  // tier1 at 60: critical; its data.quality.degraded is the same notification.
  v1::Envelope low = Profile(testing::kAcme, v1::TIER_1, 60, p1, "corr-1");
  v1::Envelope degraded = Make("data.quality.degraded", testing::kAcme);
  degraded.mutable_data_quality_degraded()->set_profile_id(p1);
  degraded.mutable_data_quality_degraded()->set_current_score(60);
  degraded.mutable_data_quality_degraded()->set_canonical_key(low.profile_completed().canonical_key());
  degraded.set_correlation_id("corr-1");
  // tier2 at 65: below the hook's 70, above the Slack sink's 50.
  v1::Envelope tier2 = Profile(testing::kAcme, v1::TIER_2, 65, p2, "corr-2");
  // tier2 at 70 (the threshold itself) and tier1 at 95 (the floor itself): no notification.
  v1::Envelope at_threshold = Profile(testing::kAcme, v1::TIER_2, 70, p3, "corr-3");
  v1::Envelope at_floor = Profile(testing::kAcme, v1::TIER_1, 95, p4, "corr-4");
  v1::Envelope created = Make("approval.created", testing::kAcme);
  created.set_correlation_id("corr-5");
  v1::Envelope approved = Make("approval.approved", testing::kAcme);
  approved.mutable_approval_approved()->set_approval_id(decided);
  // Written around the gateway: an approval.created from a source that may not emit it.
  v1::Envelope forged = Make("approval.created", testing::kAcme);
  forged.set_source("etl.pipeline");
  v1::Envelope b_low = Profile(testing::kB, v1::TIER_3, 10, contracts::NewUuidV7(), "corr-b");
  // A profile id that is not a UUID would become a header: no notification.
  v1::Envelope odd_id = Profile(testing::kAcme, v1::TIER_1, 10, "p-1\r\nX-Injected: 1", "corr-6");
  // The type of an event the profiler may emit, the payload of an approval request.
  v1::Envelope mismatched = Make("metadata.profile.completed", testing::kAcme);
  *mismatched.mutable_approval_created() = created.approval_created();
  PublishAll({low, degraded, tier2, at_threshold, at_floor, created, approved, forged, b_low, odd_id});
  // Produced raw (as any Kafka client could): the producer itself refuses the mismatch.
  producer_->SendRecord({.topic = catalog_->Find("metadata.profile.completed")->topic,
                         .key = mismatched.tenant_id(),
                         .value = mismatched.SerializeAsString(),
                         .headers = contracts::ToKafkaHeaders(mismatched),
                         .event_id = mismatched.id()},
                        [](absl::StatusOr<kafka::DeliveryReport> r) { EXPECT_TRUE(r.ok()) << r.status(); });
  ASSERT_TRUE(producer_->Flush(absl::Seconds(30)).ok());

  ASSERT_TRUE(receiver_.WaitFor("hook", 4));
  ASSERT_TRUE(receiver_.WaitFor("slack", 3));
  ASSERT_TRUE(receiver_.WaitFor("b-hook", 1));
  ASSERT_TRUE(receiver_.WaitFor("plain", 1));
  absl::SleepFor(absl::Seconds(2));  // anything extra would arrive by now

  std::map<std::string, google::protobuf::Struct> by_id;
  for (const auto& r : receiver_.Got("hook")) {
    EXPECT_EQ(r.content_type, "application/json; charset=utf-8");
    EXPECT_EQ(r.trigger_id, hook.id());
    ExpectSigned(r, secret);
    auto doc = Json(r.body);
    EXPECT_EQ(Str(doc, "id"), r.idempotency_key);
    EXPECT_EQ(Str(doc, "tenant_id"), testing::kAcme);
    EXPECT_TRUE(by_id.emplace(Str(doc, "id"), doc).second) << "one notification per id: " << r.body;
  }
  ASSERT_EQ(by_id.size(), 4u) << "p1 once (not twice), p2, the approval request and its decision";
  const auto& q1 = by_id.at(common::Cat("quality-", p1));
  EXPECT_EQ(Str(q1, "category"), "quality");
  EXPECT_EQ(Str(q1, "severity"), "critical");
  EXPECT_EQ(Str(q1, "entity_key"), low.profile_completed().canonical_key());
  EXPECT_EQ(q1.fields().at("score").number_value(), 60);
  EXPECT_EQ(Str(q1, "tier"), "tier1");
  EXPECT_EQ(Str(q1, "correlation_id"), "corr-1");
  EXPECT_THAT(Strs(q1, "reasons"), ::testing::IsSupersetOf({"below_threshold", "tier1_below_95"}));
  const auto& q2 = by_id.at(common::Cat("quality-", p2));
  EXPECT_EQ(Str(q2, "severity"), "warning");
  EXPECT_EQ(Str(q2, "grade"), "D");
  EXPECT_THAT(Strs(q2, "reasons"), ::testing::ElementsAre("below_threshold"));
  EXPECT_EQ(q2.fields().at("threshold").number_value(), 70);
  const auto& request = by_id.at(created.id());
  EXPECT_EQ(Str(request, "category"), "approval");
  EXPECT_EQ(Str(request, "approval_status"), "pending");
  EXPECT_EQ(Str(request, "required_role"), "metadata_steward");
  EXPECT_EQ(Str(request, "audience"), "approvers");
  EXPECT_THAT(Strs(request, "recipients"), ::testing::ElementsAre("steward", "steward2"))
      << "the tenant's principals with the role, not the requester, not tenant-b's, not the operator";
  const auto& decision = by_id.at(approved.id());
  EXPECT_EQ(Str(decision, "approval_status"), "approved");
  EXPECT_EQ(Str(decision, "audience"), "requester");
  EXPECT_THAT(Strs(decision, "recipients"), ::testing::ElementsAre("test-user"));

  // Slack: p1 (tier1 is below 95 whatever the threshold), the request and the decision.
  std::set<std::string> slack_keys;
  for (const auto& r : receiver_.Got("slack")) {
    slack_keys.insert(r.idempotency_key);
    auto doc = Json(r.body);
    EXPECT_FALSE(Str(doc, "text").empty()) << r.body;
    EXPECT_EQ(doc.fields().at("blocks").list_value().values_size(), 2) << r.body;
  }
  EXPECT_THAT(slack_keys, ::testing::UnorderedElementsAre(common::Cat("quality-", p1), created.id(), approved.id()));
  EXPECT_THAT(receiver_.Got("slack")[0].body, ::testing::AnyOf(HasSubstr("[critical]"), HasSubstr("[info]")));
  // tenant-b's sink: tenant-b's profile only.
  ASSERT_EQ(receiver_.Got("b-hook").size(), 1u);
  EXPECT_EQ(Str(Json(receiver_.Got("b-hook")[0].body), "tenant_id"), testing::kB);
  // The forged approval.created reached nobody, not even the plain trigger.
  ASSERT_EQ(receiver_.Got("plain").size(), 1u);
  EXPECT_EQ(receiver_.Got("plain")[0].idempotency_key, created.id());
  for (const auto& r : receiver_.Got()) {
    EXPECT_NE(r.idempotency_key, forged.id()) << r.path;
    EXPECT_NE(r.idempotency_key, mismatched.id()) << r.path;
    EXPECT_THAT(r.body, Not(HasSubstr("corr-6"))) << r.path;
  }

  // Each sink's attempts are in its history, like a trigger's.
  ASSERT_TRUE(WaitForOutcome(slack.id(), v1::DELIVERY_OUTCOME_DELIVERED));
  EXPECT_EQ(History(testing::kTokenA, hook.id(), 500).size(), 4u);
}

TEST_F(NotifyTest, SinksAreTheTenantsOwnTheirSecretsStayHiddenAndBadOnesAreRefused) {
  const std::string slack_url = receiver_.Url("slack-secret-path-T000/B000/XXXX");
  const auto hook = MakeSink(testing::kTokenA, "hook", v1::NOTIFICATION_SINK_KIND_WEBHOOK, receiver_.Url("hook"),
                             common::Cat(kSecret, "-h"));
  const auto slack = MakeSink(testing::kTokenA, "slack", v1::NOTIFICATION_SINK_KIND_SLACK, slack_url, "");
  EXPECT_EQ(hook.quality_threshold(), 70) << "the default";
  EXPECT_TRUE(hook.has_secret());
  EXPECT_FALSE(slack.has_secret());
  const std::string base = receiver_.Url("");
  EXPECT_EQ(slack.url(), common::Cat(base.substr(0, base.find("/hook/")), "/…")) << "scheme and host only";
  v1::ListNotificationSinksResponse list;
  ASSERT_TRUE(triggers_->ListNotificationSinks(Ctx(testing::kTokenSteward).get(), {}, &list).ok());
  ASSERT_EQ(list.sinks_size(), 2);
  EXPECT_THAT(list.DebugString(), Not(HasSubstr(kSecret)));
  EXPECT_THAT(list.DebugString(), Not(HasSubstr("slack-secret-path")));
  // Sinks are not triggers: ListTriggers and GetTrigger do not show them.
  v1::ListTriggersResponse triggers;
  ASSERT_TRUE(triggers_->ListTriggers(Ctx(testing::kTokenA).get(), {}, &triggers).ok());
  EXPECT_EQ(triggers.triggers_size(), 0);
  v1::GetTriggerRequest get;
  get.set_id(hook.id());
  v1::GetTriggerResponse got;
  EXPECT_EQ(triggers_->GetTrigger(Ctx(testing::kTokenA).get(), get, &got).error_code(), StatusCode::NOT_FOUND);
  // Another tenant sees none of them and may not test or delete them.
  ASSERT_TRUE(triggers_->ListNotificationSinks(Ctx(testing::kTokenB).get(), {}, &list).ok());
  EXPECT_EQ(list.sinks_size(), 0);
  v1::TestNotificationSinkRequest test;
  test.set_id(hook.id());
  v1::TestNotificationSinkResponse tested;
  EXPECT_EQ(triggers_->TestNotificationSink(Ctx(testing::kTokenB).get(), test, &tested).error_code(),
            StatusCode::PERMISSION_DENIED);
  test.set_tenant_id(testing::kB);  // an operator of tenant-b does not find it there
  EXPECT_EQ(triggers_->TestNotificationSink(Ctx(testing::kTokenOps).get(), test, &tested).error_code(),
            StatusCode::NOT_FOUND);
  v1::DeleteNotificationSinkRequest del;
  del.set_tenant_id(testing::kAcme);
  del.set_id(hook.id());
  v1::DeleteNotificationSinkResponse deleted;
  EXPECT_EQ(triggers_->DeleteNotificationSink(Ctx(testing::kTokenB).get(), del, &deleted).error_code(),
            StatusCode::PERMISSION_DENIED);
  // Pausing and resuming a sink goes through the trigger calls, which show no Slack URL.
  v1::PauseTriggerRequest pause;
  pause.set_id(slack.id());
  v1::PauseTriggerResponse paused;
  ASSERT_TRUE(triggers_->PauseTrigger(Ctx(testing::kTokenA).get(), pause, &paused).ok());
  EXPECT_EQ(paused.trigger().state(), v1::TRIGGER_STATE_PAUSED);
  EXPECT_THAT(paused.DebugString(), Not(HasSubstr("slack-secret-path")));
  test.set_tenant_id("");
  test.set_id(slack.id());
  auto t = triggers_->TestNotificationSink(Ctx(testing::kTokenA).get(), test, &tested);
  EXPECT_EQ(t.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(t.error_message(), HasSubstr("is paused"));
  v1::ResumeTriggerRequest resume;
  resume.set_id(slack.id());
  v1::ResumeTriggerResponse resumed;
  ASSERT_TRUE(triggers_->ResumeTrigger(Ctx(testing::kTokenA).get(), resume, &resumed).ok());
  EXPECT_THAT(resumed.DebugString(), Not(HasSubstr("slack-secret-path")));
  // One that failed too often says until when.
  ASSERT_TRUE(conn_
                  ->Exec("UPDATE event_trigger SET auto_paused_until = now() + interval '5 minutes' WHERE id = $1",
                         {slack.id()})
                  .ok());
  t = triggers_->TestNotificationSink(Ctx(testing::kTokenA).get(), test, &tested);
  EXPECT_EQ(t.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(t.error_message(), HasSubstr("failed too often and is paused until"));

  // Readers without trigger_admin may not change them.
  EXPECT_EQ(triggers_->DeleteNotificationSink(Ctx(testing::kTokenSteward).get(), del, &deleted).error_code(),
            StatusCode::PERMISSION_DENIED);

  // Every wrong field named, the URL never echoed, nothing stored.
  v1::CreateNotificationSinkRequest bad;
  bad.set_name("");
  bad.set_kind(v1::NOTIFICATION_SINK_KIND_UNSPECIFIED);
  bad.set_url("http://hooks.example.com/services/T0/B0/secretpart");
  bad.set_quality_threshold(101);
  bad.set_timeout_ms(5);
  v1::CreateNotificationSinkResponse resp;
  auto s = triggers_->CreateNotificationSink(Ctx(testing::kTokenA).get(), bad, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  for (const char* field : {"name", "kind", "url", "quality_threshold", "timeout_ms"})
    EXPECT_THAT(s.error_message(), HasSubstr(Cat(field, ": "))) << s.error_message();
  EXPECT_THAT(s.error_message(), Not(HasSubstr("secretpart")));
  bad = {};
  bad.set_name("slack with secret");
  bad.set_kind(v1::NOTIFICATION_SINK_KIND_SLACK);
  bad.set_url("https://hooks.example.com/x");
  bad.set_secret(kSecret);
  s = triggers_->CreateNotificationSink(Ctx(testing::kTokenA).get(), bad, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("secret: "));
  bad.set_kind(v1::NOTIFICATION_SINK_KIND_WEBHOOK);
  bad.set_secret("short");
  s = triggers_->CreateNotificationSink(Ctx(testing::kTokenA).get(), bad, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("secret: "));
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM event_trigger")->Get(0, 0), "2");
  // A name is unique among triggers and sinks; at most 10 sinks.
  v1::CreateTriggerRequest same = Failures("hook");
  auto taken = Create(testing::kTokenA, same);
  EXPECT_EQ(taken.error_code(), StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(taken.error_message(), HasSubstr("has a trigger or notification sink named \"hook\""));
  for (int i = 0; i < 8; ++i)
    MakeSink(testing::kTokenA, Cat("more-", i), v1::NOTIFICATION_SINK_KIND_WEBHOOK, receiver_.Url("x"),
             common::Cat(kSecret, "-x"));
  bad.set_name("eleventh");
  bad.set_secret(kSecret);
  EXPECT_EQ(triggers_->CreateNotificationSink(Ctx(testing::kTokenA).get(), bad, &resp).error_code(),
            StatusCode::RESOURCE_EXHAUSTED);
  // Deleting by the trigger call does not reach a sink; the sink call does.
  v1::DeleteTriggerRequest del_trigger;
  del_trigger.set_id(hook.id());
  v1::DeleteTriggerResponse trigger_deleted;
  EXPECT_EQ(triggers_->DeleteTrigger(Ctx(testing::kTokenA).get(), del_trigger, &trigger_deleted).error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_TRUE(triggers_->DeleteNotificationSink(Ctx(testing::kTokenA).get(), del, &deleted).ok());
}

TEST_F(NotifyTest, SluicectlNotifyCreatesListsAndTestsASink) {
  const std::string gateway = common::Cat("127.0.0.1:", gateway_->port());
  const std::string secret_file = common::Cat(::testing::TempDir(), "/notify-secret-", prefix_);
  std::ofstream(secret_file) << kSecret << "\n";
  const std::string url_file = common::Cat(::testing::TempDir(), "/notify-url-", prefix_);
  std::ofstream(url_file) << receiver_.Url("slack") << "\n";
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "notify");
    args.insert(args.end(), {"--gateway", gateway, "--token", testing::kTokenA});
    return testing::RunCaptured(SLUICECTL, args, common::Cat(::testing::TempDir(), "/notify-", prefix_, ".out"));
  };
  auto [rc, out] = run({"create", "--name", "cli-hook", "--url", receiver_.Url("hook"), "--secret-file", secret_file,
                        "--quality-threshold", "80", "--json"});
  ASSERT_EQ(rc, 0) << out;
  v1::NotificationSink hook;
  ASSERT_TRUE(contracts::FromJson(out, hook).ok()) << out;
  EXPECT_EQ(hook.quality_threshold(), 80);
  EXPECT_THAT(out, Not(HasSubstr(kSecret)));
  std::tie(rc, out) = run({"create", "--name", "cli-slack", "--kind", "slack", "--url-file", url_file, "--json"});
  ASSERT_EQ(rc, 0) << out;
  v1::NotificationSink slack;
  ASSERT_TRUE(contracts::FromJson(out, slack).ok()) << out;
  EXPECT_THAT(out, Not(HasSubstr("/hook/slack"))) << "the Slack URL is a secret";
  std::tie(rc, out) = run({"list"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("cli-hook"));
  EXPECT_THAT(out, HasSubstr("cli-slack"));
  EXPECT_THAT(out, Not(HasSubstr("/hook/slack")));

  // Without sluice-triggers the test is queued and not delivered: exit 1, said so.
  std::tie(rc, out) = run({"test", hook.id(), "--wait", "1"});
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr("not delivered within 1 s"));
  StartConsumer();
  std::tie(rc, out) = run({"test", slack.id(), "--wait", "30"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("delivered: HTTP 200"));
  ASSERT_TRUE(receiver_.WaitFor("hook", 1)) << "the earlier test, delivered once the service runs";
  auto doc = Json(receiver_.Got("hook")[0].body);
  EXPECT_EQ(Str(doc, "category"), "test");
  EXPECT_THAT(Str(doc, "id"), ::testing::StartsWith("test-"));
  ASSERT_EQ(receiver_.Got("slack").size(), 1u);
  EXPECT_THAT(receiver_.Got("slack")[0].body, HasSubstr("Test notification from Sluice"));
  // A receiver that refuses: the test says why and exits 1.
  receiver_.Script("hook", {400});
  std::tie(rc, out) = run({"test", hook.id(), "--wait", "30"});
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr("failed: attempt 1: HTTP 400"));
  // Errors: no URL for Slack, an unknown sink.
  std::tie(rc, out) = run({"create", "--name", "no-url", "--kind", "slack"});
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("--url-file"));
  std::tie(rc, out) = run({"create", "--name", "argv-url", "--kind", "slack", "--url", receiver_.Url("slack")});
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("a Slack URL is a secret"));
  std::tie(rc, out) = run({"test", contracts::NewUuidV7()});
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("no notification sink"));
  std::tie(rc, out) = run({"delete", slack.id()});
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace sluice
