// The trust boundary of sluice-gateway, probed as an attacker would, against the real local
// Kafka and PostgreSQL: a tenant-isolation matrix over every RPC and every kind of caller,
// forged governance events, self-approval, tier and role chosen by the requester, tenants
// colliding on event ids, replays of internal topics, and database text leaking to callers.
#include <absl/strings/ascii.h>
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "common/pg.h"
#include "contracts/envelope.h"
#include "contracts/json.h"
#include "contracts/test_util.h"
#include "contracts/vectors.h"
#include "gateway/server.h"
#include "kafka/consumer.h"
#include "kafka/util.h"
#include "sluice/v1/approval_service.grpc.pb.h"
#include "sluice/v1/event_query.grpc.pb.h"
#include "sluice/v1/gateway.grpc.pb.h"
#include "sluice/v1/trigger_service.grpc.pb.h"
#include "tests/kafka_fixture.h"

namespace sluice {
namespace {

using common::Cat;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAcme[] = "tenant-acme";
constexpr char kB[] = "tenant-b";

// Callers of the matrix. Names are the principals' names.
constexpr char kRequester[] = "tok-requester";  // tenant-acme, no role
constexpr char kOwn[] = "tok-own";              // tenant-acme, metadata_steward
constexpr char kOther[] = "tok-other";          // tenant-b, metadata_steward and operator
constexpr char kWildcard[] = "tok-wildcard";    // "*", metadata_steward and operator
constexpr char kEtl[] = "tok-etl";              // tenant-acme, source etl.pipeline only
constexpr char kRemoved[] = "tok-removed";      // was issued, is no longer in the token file
constexpr const char* kNone = nullptr;

class Authz : public testing::KafkaTest {
 protected:
  void SetUp() override {
    KafkaTest::SetUp();
    if (HasFatalFailure()) return;
    schema_ = Cat("it_authz_", std::random_device{}());
    auto c = common::PgConnection::Connect(common::DefaultPgDsn());
    ASSERT_TRUE(c.ok()) << c.status();
    conn_.emplace(*std::move(c));
    ASSERT_TRUE(conn_->ExecScript(Cat("CREATE SCHEMA ", schema_, "; SET search_path TO ", schema_)).ok());
    ASSERT_TRUE(common::Migrate(*conn_, std::string(SLUICE_SOURCE_DIR) + "/sql/migrations").ok());

    auto p = [](const char* name, const char* token, const std::string& rest) {
      return Cat("principals { name: \"", name, "\" token_sha256: \"", gateway::Sha256Hex(token), "\" ", rest, " }\n");
    };
    // The removed principal is in the file an earlier gateway used, not in this one.
    auto tokens = gateway::TokenStore::Parse(
        Cat(p("requester", kRequester, "tenants: \"tenant-acme\""),
            p("own", kOwn, "tenants: \"tenant-acme\" roles: \"metadata_steward\""),
            p("other", kOther, "tenants: \"tenant-b\" roles: \"metadata_steward\" roles: \"operator\""),
            p("wildcard", kWildcard, "tenants: \"*\" roles: \"metadata_steward\" roles: \"operator\""),
            p("etl", kEtl, "tenants: \"tenant-acme\" sources: \"etl.pipeline\"")));
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    gateway::GatewayConfig config{.listen = "127.0.0.1:0", .bootstrap_servers = bootstrap_};
    config.pg_dsn = common::DefaultPgDsn();
    config.pg_schema = schema_;
    config.health_interval = absl::ZeroDuration();
    auto gw = gateway::Gateway::Start(config, *std::move(tokens), gateway::RateLimiter(), *catalog_, registry_);
    ASSERT_TRUE(gw.ok()) << gw.status();
    gateway_ = *std::move(gw);
    auto channel = grpc::CreateChannel(Cat("127.0.0.1:", gateway_->port()), grpc::InsecureChannelCredentials());
    events_ = v1::EventGateway::NewStub(channel);
    refresh_ = v1::DataRefreshService::NewStub(channel);
    approvals_ = v1::ApprovalService::NewStub(channel);
    query_ = v1::EventQueryService::NewStub(channel);
    triggers_ = v1::TriggerService::NewStub(channel);
  }
  void TearDown() override {
    events_.reset();
    refresh_.reset();
    approvals_.reset();
    query_.reset();
    gateway_.reset();
    if (conn_) {
      EXPECT_TRUE(conn_->ExecScript(Cat("DROP SCHEMA ", schema_, " CASCADE")).ok());
    }
    KafkaTest::TearDown();
  }

  static std::unique_ptr<grpc::ClientContext> Ctx(const char* token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (token != nullptr) ctx->AddMetadata("authorization", Cat("Bearer ", token));
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return ctx;
  }

  static v1::Envelope Event(const std::string& type, const std::string& tenant) {
    v1::Envelope e = contracts::testing::Golden(type);
    e.set_id(contracts::NewUuidV7());
    e.set_tenant_id(tenant);
    return e;
  }

  grpc::Status Publish(const char* token, const v1::Envelope& e, v1::PublishResponse* out = nullptr) {
    v1::PublishRequest req;
    *req.mutable_envelope() = e;
    v1::PublishResponse resp;
    auto s = events_->Publish(Ctx(token).get(), req, &resp);
    if (out) *out = resp;
    return s;
  }

  // The code of one event sent over PublishStream (the stream's own status when the call
  // itself is refused).
  grpc::StatusCode PublishStream(const char* token, const v1::Envelope& e) {
    auto ctx = Ctx(token);
    auto stream = events_->PublishStream(ctx.get());
    v1::PublishStreamRequest req;
    req.set_sequence(1);
    *req.mutable_envelope() = e;
    stream->Write(req);
    stream->WritesDone();
    v1::PublishStreamResponse resp;
    grpc::StatusCode code = grpc::StatusCode::OK;
    if (stream->Read(&resp) && resp.has_error()) code = static_cast<grpc::StatusCode>(resp.error().code());
    grpc::Status fin = stream->Finish();
    return fin.ok() ? code : fin.error_code();
  }

  v1::CreateApprovalRequest ApprovalRequest(const std::string& key, v1::Tier tier = v1::TIER_2) {
    v1::CreateApprovalRequest r;
    r.set_tenant_id(kAcme);
    r.set_entity_type(v1::ENTITY_TYPE_METADATA);
    r.set_entity_key(key);
    r.set_tier(tier);
    r.set_lane(v1::LANE_GOVERNED);
    EXPECT_TRUE(contracts::FromJson(R"({"label": "Revenue"})", *r.mutable_payload()).ok());
    return r;
  }
  // A pending approval of tenant-acme requested by `token`.
  std::string Pending(const char* token = kRequester) {
    v1::CreateApprovalResponse resp;
    auto s = approvals_->CreateApproval(Ctx(token).get(), ApprovalRequest(Cat("key-", ++keys_)), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.approval().id();
  }

  // A refused Subscribe ends at once with its code; an admitted one is still streaming
  // (nothing is published) when its 3 s deadline ends it: that counts as OK.
  grpc::StatusCode Subscribe(const char* token, const std::string& tenant) {
    auto ctx = Ctx(token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    v1::SubscribeRequest req;
    req.mutable_filter()->add_tenant_ids(tenant);
    auto reader = query_->Subscribe(ctx.get(), req);
    v1::SubscribeResponse ignored;
    while (reader->Read(&ignored)) {
    }
    grpc::Status s = reader->Finish();
    return s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? grpc::StatusCode::OK : s.error_code();
  }

  grpc::StatusCode Replay(const char* token, const std::string& tenant, const std::string& topic = "") {
    auto ctx = Ctx(token);
    v1::ReplayRequest req;
    req.add_topics(topic.empty() ? catalog_->Find("data.refreshed")->topic : topic);
    req.add_tenant_ids(tenant);
    auto reader = query_->Replay(ctx.get(), req);
    v1::ReplayResponse ignored;
    while (reader->Read(&ignored)) {
    }
    return reader->Finish().error_code();
  }

  prometheus::Registry registry_;
  std::string schema_;
  std::optional<common::PgConnection> conn_;
  std::unique_ptr<gateway::Gateway> gateway_;
  std::unique_ptr<v1::EventGateway::Stub> events_;
  std::unique_ptr<v1::DataRefreshService::Stub> refresh_;
  std::unique_ptr<v1::ApprovalService::Stub> approvals_;
  std::unique_ptr<v1::EventQueryService::Stub> query_;
  std::unique_ptr<v1::TriggerService::Stub> triggers_;
  int keys_ = 0;
  std::string shared_view_;
  // A view kOwn shares in tenant-acme (made once).
  std::string SharedView() {
    if (!shared_view_.empty()) return shared_view_;
    v1::CreateSavedViewRequest req;
    req.set_tenant_id(kAcme);
    req.set_name("shared");
    req.set_visibility(v1::SAVED_VIEW_VISIBILITY_SHARED);
    v1::CreateSavedViewResponse resp;
    auto s = query_->CreateSavedView(Ctx(kOwn).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    shared_view_ = resp.view().id();
    return shared_view_;
  }

  // A trigger of tenant-acme, created once by the wildcard operator.
  std::string AcmeTrigger() {
    if (!acme_trigger_.empty()) return acme_trigger_;
    v1::CreateTriggerRequest req;
    req.set_tenant_id(kAcme);
    req.set_name("history");
    req.mutable_webhook()->set_url("https://hooks.example.com/sluice");
    req.mutable_webhook()->set_secret(std::string(32, 's'));
    v1::CreateTriggerResponse resp;
    auto s = triggers_->CreateTrigger(Ctx(kWildcard).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    acme_trigger_ = resp.trigger().id();
    return acme_trigger_;
  }
  std::string acme_trigger_;
  // A fresh notification sink of tenant-acme (made by the wildcard operator).
  std::string NewAcmeSink() {
    v1::CreateNotificationSinkRequest req;
    req.set_tenant_id(kAcme);
    req.set_name(common::Cat("sink-", ++sinks_));
    req.set_kind(v1::NOTIFICATION_SINK_KIND_WEBHOOK);
    req.set_url("https://hooks.example.com/notify");
    req.set_secret(std::string(32, 's'));
    v1::CreateNotificationSinkResponse resp;
    auto s = triggers_->CreateNotificationSink(Ctx(kWildcard).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.sink().id();
  }
  int sinks_ = 0;
};

using grpc::StatusCode;
constexpr StatusCode kOk = StatusCode::OK;
constexpr StatusCode kDenied = StatusCode::PERMISSION_DENIED;
constexpr StatusCode kUnauth = StatusCode::UNAUTHENTICATED;

// Every RPC against tenant-acme, by every kind of caller. Each row says what each caller
// must get; a row is a lambda so each call gets fresh state (a new pending approval...).
TEST_F(Authz, TenantIsolationMatrix) {
  std::string test_sink;
  struct Row {
    const char* rpc;
    std::function<StatusCode(const char* token)> call;
    // own tenant, other tenant, wildcard, no token, removed token
    StatusCode own, other, wildcard, none, removed;
    const char* own_token = kOwn;
  };
  const std::vector<Row> rows = {
      {"Publish", [&](const char* t) { return Publish(t, Event("data.refreshed", kAcme)).error_code(); }, kOk, kDenied,
       kOk, kUnauth, kUnauth},
      {"PublishStream", [&](const char* t) { return PublishStream(t, Event("data.refreshed", kAcme)); }, kOk, kDenied,
       kOk, kUnauth, kUnauth},
      {"NotifyDataRefreshed",
       [&](const char* t) {
         v1::NotifyDataRefreshedRequest req;
         req.set_tenant_id(kAcme);
         req.set_entity_urn("urn:acme:sales");
         req.set_schema("sales");
         req.set_table("orders");
         req.set_rows_affected(10);
         req.set_refresh_type(v1::REFRESH_TYPE_INCREMENTAL);
         req.mutable_triggered_by()->set_actor_id("nightly");
         req.mutable_triggered_by()->set_actor_type(v1::ACTOR_TYPE_SYSTEM);
         v1::NotifyDataRefreshedResponse resp;
         return refresh_->NotifyDataRefreshed(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      {"CreateApproval",
       [&](const char* t) {
         v1::CreateApprovalResponse resp;
         return approvals_->CreateApproval(Ctx(t).get(), ApprovalRequest(Cat("create-", ++keys_)), &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      {"GetApproval",
       [&](const char* t) {
         v1::GetApprovalRequest req;
         req.set_tenant_id(kAcme);
         req.set_id(Pending());
         v1::GetApprovalResponse resp;
         return approvals_->GetApproval(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      {"ListApprovals",
       [&](const char* t) {
         v1::ListApprovalsRequest req;
         req.set_tenant_id(kAcme);
         v1::ListApprovalsResponse resp;
         return approvals_->ListApprovals(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      {"Approve",
       [&](const char* t) {
         v1::ApproveRequest req;
         req.set_tenant_id(kAcme);
         req.set_id(Pending());
         v1::ApproveResponse resp;
         return approvals_->Approve(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      {"Reject",
       [&](const char* t) {
         v1::RejectRequest req;
         req.set_tenant_id(kAcme);
         req.set_id(Pending());
         req.set_reason("no");
         v1::RejectResponse resp;
         return approvals_->Reject(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      // Only the requester cancels: a wildcard steward is still not the requester.
      {"Cancel",
       [&](const char* t) {
         v1::CancelRequest req;
         req.set_tenant_id(kAcme);
         req.set_id(Pending());
         v1::CancelResponse resp;
         return approvals_->Cancel(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kDenied, kUnauth, kUnauth, kRequester},
      {"ListEvents",
       [&](const char* t) {
         v1::ListEventsRequest req;
         req.mutable_filter()->add_tenant_ids(kAcme);
         v1::ListEventsResponse resp;
         return query_->ListEvents(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      {"Subscribe", [&](const char* t) { return Subscribe(t, kAcme); }, kOk, kDenied, kOk, kUnauth, kUnauth},
      {"Replay", [&](const char* t) { return Replay(t, kAcme); }, kOk, kDenied, kOk, kUnauth, kUnauth},
      {"GetEventHealth",
       [&](const char* t) {
         v1::GetEventHealthResponse resp;
         return query_->GetEventHealth(Ctx(t).get(), {}, &resp).error_code();
       },
       kOk, kOk, kOk, kUnauth, kUnauth},
      {"CreateSavedView",
       [&](const char* t) {
         v1::CreateSavedViewRequest req;
         req.set_tenant_id(kAcme);
         req.set_name(Cat("view-", ++keys_));
         v1::CreateSavedViewResponse resp;
         return query_->CreateSavedView(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      {"ListSavedViews",
       [&](const char* t) {
         v1::ListSavedViewsRequest req;
         req.set_tenant_id(kAcme);
         v1::ListSavedViewsResponse resp;
         return query_->ListSavedViews(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      {"ListTriggers",
       [&](const char* t) {
         v1::ListTriggersRequest req;
         req.set_tenant_id(kAcme);
         v1::ListTriggersResponse resp;
         return triggers_->ListTriggers(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      // Changing triggers needs trigger_admin or operator: the own-tenant steward has neither.
      {"CreateTrigger",
       [&](const char* t) {
         v1::CreateTriggerRequest req;
         req.set_tenant_id(kAcme);
         req.set_name(Cat("trigger-", ++keys_));
         req.mutable_webhook()->set_url("https://hooks.example.com/sluice");
         req.mutable_webhook()->set_secret(std::string(32, 's'));
         v1::CreateTriggerResponse resp;
         return triggers_->CreateTrigger(Ctx(t).get(), req, &resp).error_code();
       },
       kDenied, kDenied, kOk, kUnauth, kUnauth},
      // A view shared in tenant-acme: used by anyone who reads the tenant.
      {"UseSavedView",
       [&](const char* t) {
         v1::UseSavedViewRequest req;
         req.set_tenant_id(kAcme);
         req.set_id(SharedView());
         v1::UseSavedViewResponse resp;
         return query_->UseSavedView(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      {"ListTriggerDeliveries",
       [&](const char* t) {
         v1::ListTriggerDeliveriesRequest req;
         req.set_tenant_id(kAcme);
         req.set_trigger_id(AcmeTrigger());
         v1::ListTriggerDeliveriesResponse resp;
         return triggers_->ListTriggerDeliveries(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      {"ListNotificationSinks",
       [&](const char* t) {
         v1::ListNotificationSinksRequest req;
         req.set_tenant_id(kAcme);
         v1::ListNotificationSinksResponse resp;
         return triggers_->ListNotificationSinks(Ctx(t).get(), req, &resp).error_code();
       },
       kOk, kDenied, kOk, kUnauth, kUnauth},
      // Changing sinks, like triggers, needs trigger_admin or operator.
      {"CreateNotificationSink",
       [&](const char* t) {
         v1::CreateNotificationSinkRequest req;
         req.set_tenant_id(kAcme);
         req.set_name(Cat("sink-by-", ++keys_));
         req.set_kind(v1::NOTIFICATION_SINK_KIND_SLACK);
         req.set_url("https://hooks.example.com/services/T/B/X");
         v1::CreateNotificationSinkResponse resp;
         return triggers_->CreateNotificationSink(Ctx(t).get(), req, &resp).error_code();
       },
       kDenied, kDenied, kOk, kUnauth, kUnauth},
      {"TestNotificationSink",
       [&](const char* t) {
         v1::TestNotificationSinkRequest req;
         req.set_tenant_id(kAcme);
         if (test_sink.empty()) test_sink = NewAcmeSink();
         req.set_id(test_sink);
         v1::TestNotificationSinkResponse resp;
         return triggers_->TestNotificationSink(Ctx(t).get(), req, &resp).error_code();
       },
       kDenied, kDenied, kOk, kUnauth, kUnauth},
      {"DeleteNotificationSink",
       [&](const char* t) {
         v1::DeleteNotificationSinkRequest req;
         req.set_tenant_id(kAcme);
         req.set_id(NewAcmeSink());
         v1::DeleteNotificationSinkResponse resp;
         return triggers_->DeleteNotificationSink(Ctx(t).get(), req, &resp).error_code();
       },
       kDenied, kDenied, kOk, kUnauth, kUnauth},
  };
  for (const Row& r : rows) {
    const std::pair<const char*, StatusCode> cases[] = {
        {r.own_token, r.own}, {kOther, r.other}, {kWildcard, r.wildcard}, {kNone, r.none}, {kRemoved, r.removed}};
    const char* names[] = {"own tenant", "other tenant", "wildcard", "no token", "removed token"};
    for (size_t i = 0; i < std::size(cases); ++i)
      EXPECT_EQ(r.call(cases[i].first), cases[i].second) << r.rpc << " by " << names[i];
  }
}

TEST_F(Authz, HealthShowsEachCallerItsOwnTenantsOnly) {
  ASSERT_TRUE(Publish(kOwn, Event("data.refreshed", kAcme)).ok());
  ASSERT_TRUE(Publish(kOther, Event("data.refreshed", kB)).ok());
  // Dead letters as sluice-audit writes them: two of tenant-acme, one of B, one without tenant.
  ASSERT_TRUE(
      conn_
          ->ExecScript(
              "INSERT INTO event_dead_letter (topic, \"partition\", \"offset\", event_id, tenant_id, type, source,"
              " category, reason, record_value) VALUES"
              " ('t', 0, 1, 'x', 'tenant-acme', 'data.refreshed', 'etl.pipeline', 'invalid', 'r', '\\x00'),"
              " ('t', 0, 2, 'x', 'tenant-acme', 'data.refreshed', 'etl.pipeline', 'invalid', 'r', '\\x00'),"
              " ('t', 0, 3, 'x', 'tenant-b', 'data.refreshed', 'etl.pipeline', 'invalid', 'r', '\\x00'),"
              " ('t', 0, 4, 'x', NULL, 'data.refreshed', 'etl.pipeline', 'invalid', 'r', '\\x00')")
          .ok());
  v1::GetEventHealthResponse other;
  ASSERT_TRUE(query_->GetEventHealth(Ctx(kOther).get(), {}, &other).ok());
  ASSERT_EQ(other.sources_size(), 1);
  EXPECT_EQ(other.sources(0).tenant_id(), kB);
  EXPECT_EQ(other.consumer_lag_size(), 0);
  ASSERT_EQ(other.dead_letters_size(), 1);
  EXPECT_EQ(other.dead_letters(0).tenant_id(), kB);
  EXPECT_EQ(other.dead_letters(0).count(), 1);
  v1::GetEventHealthResponse own;
  ASSERT_TRUE(query_->GetEventHealth(Ctx(kOwn).get(), {}, &own).ok());
  ASSERT_EQ(own.dead_letters_size(), 1);
  EXPECT_EQ(own.dead_letters(0).count(), 2);
  v1::GetEventHealthResponse all;
  ASSERT_TRUE(query_->GetEventHealth(Ctx(kWildcard).get(), {}, &all).ok());
  EXPECT_EQ(all.sources_size(), 2);
  EXPECT_EQ(all.dead_letters_size(), 3);
}

TEST_F(Authz, GovernanceEventsCannotBeForgedThroughTheGateway) {
  // The catalog's producers are enforced, and decision events come only from the outbox.
  struct Probe {
    const char* token;
    const char* type;
    const char* source;
  };
  const Probe probes[] = {
      {kEtl, "metadata.approved", "etl.pipeline"},              // the profiler acts on it
      {kOwn, "approval.approved", "metadata-studio.approval"},  // a plain token as the workflow
      {kWildcard, "kpi.approved", "metadata-studio.approval"},
      {kWildcard, "metadata.changed", "metadata-studio.approval"},  // the workflow's identity
      {kOwn, "metadata.profile.completed", "etl.pipeline"},         // not a producer of it
  };
  for (const auto& p : probes) {
    v1::Envelope e = Event(p.type, kAcme);
    e.set_source(p.source);
    grpc::Status s = Publish(p.token, e);
    EXPECT_EQ(s.error_code(), kDenied) << p.type << " as " << p.source << ": " << s.error_message();
    EXPECT_EQ(PublishStream(p.token, e), kDenied) << p.type << " as " << p.source;
  }
  // Nothing of it reached Kafka; a legitimate event afterwards did.
  std::vector<std::string> topics;
  for (const auto& t : catalog_->topics()) topics.push_back(t.name());
  v1::Envelope ok = Event("data.refreshed", kAcme);
  ASSERT_TRUE(Publish(kEtl, ok).ok());
  auto c = kafka::Consumer::Create(
      {.bootstrap_servers = bootstrap_, .group_id = Group("forged"), .topics = topics, .max_batch = 1000});
  ASSERT_TRUE(c.ok());
  std::vector<std::string> seen;
  for (absl::Time end = absl::Now() + absl::Seconds(20); absl::Now() < end && seen.empty();) {
    ASSERT_TRUE((*c)->PollOnce([&](const std::vector<kafka::Record>& batch) {
                      for (const auto& r : batch) seen.push_back(r.envelope.type());
                      return absl::OkStatus();
                    })
                    .ok());
  }
  absl::SleepFor(absl::Seconds(1));
  ASSERT_TRUE((*c)->PollOnce([&](const std::vector<kafka::Record>& batch) {
                    for (const auto& r : batch) seen.push_back(r.envelope.type());
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_THAT(seen, ::testing::ElementsAre("data.refreshed"));
}

TEST_F(Authz, NoSelfApprovalAndTheRequesterChoosesNeitherRoleNorTier) {
  // A steward asks for a change and tries to approve it: refused; another steward may.
  const std::string id = Pending(kOwn);
  v1::ApproveRequest approve;
  approve.set_tenant_id(kAcme);
  approve.set_id(id);
  v1::ApproveResponse resp;
  grpc::Status self = approvals_->Approve(Ctx(kOwn).get(), approve, &resp);
  EXPECT_EQ(self.error_code(), kDenied);
  EXPECT_THAT(self.error_message(), HasSubstr("requested this approval"));
  v1::RejectRequest reject;
  reject.set_tenant_id(kAcme);
  reject.set_id(id);
  reject.set_reason("mine");
  v1::RejectResponse rresp;
  EXPECT_EQ(approvals_->Reject(Ctx(kOwn).get(), reject, &rresp).error_code(), kDenied);
  EXPECT_TRUE(approvals_->Approve(Ctx(kWildcard).get(), approve, &resp).ok());

  // The role is the policy's: a requester naming a role it holds itself is refused.
  v1::CreateApprovalRequest req = ApprovalRequest("role-pick");
  req.set_required_role("operator");
  v1::CreateApprovalResponse created;
  grpc::Status s = approvals_->CreateApproval(Ctx(kRequester).get(), req, &created);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("required_role"));
  req.clear_required_role();
  ASSERT_TRUE(approvals_->CreateApproval(Ctx(kRequester).get(), req, &created).ok());
  EXPECT_EQ(created.approval().required_role(), "metadata_steward");

  // The payload cannot carry another tier than the approval's.
  v1::CreateApprovalRequest tiered = ApprovalRequest("tier-pick", v1::TIER_3);
  (*tiered.mutable_payload()->mutable_fields())["tier"].set_string_value("tier1");
  s = approvals_->CreateApproval(Ctx(kRequester).get(), tiered, &created);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("payload.tier"));
  (*tiered.mutable_payload()->mutable_fields())["tier"].set_string_value("tier3");
  ASSERT_TRUE(approvals_->CreateApproval(Ctx(kRequester).get(), tiered, &created).ok());
  approve.set_id(created.approval().id());
  ASSERT_TRUE(approvals_->Approve(Ctx(kOwn).get(), approve, &resp).ok());
  auto tier = conn_->Exec("SELECT tier FROM mdm_global_metadata WHERE tenant_id = $1 AND canonical_key = 'tier-pick'",
                          {std::string(kAcme)});
  ASSERT_TRUE(tier.ok()) << tier.status();
  ASSERT_EQ(tier->rows(), 1);
  EXPECT_EQ(tier->Get(0, 0), "tier3");
}

TEST_F(Authz, TenantsDoNotCollideOnEventIdsAndIdsHaveOneForm) {
  v1::Envelope a = Event("data.refreshed", kAcme);
  v1::PublishResponse first, second, upper, b_resp;
  ASSERT_TRUE(Publish(kOwn, a, &first).ok());
  EXPECT_FALSE(first.delivery().duplicate());
  // The same id in upper case is the same event of the same tenant.
  v1::Envelope shouting = a;
  shouting.set_id(absl::AsciiStrToUpper(a.id()));
  ASSERT_TRUE(Publish(kOwn, shouting, &upper).ok());
  EXPECT_TRUE(upper.delivery().duplicate());
  EXPECT_EQ(upper.delivery().offset(), first.delivery().offset());
  // Tenant B's event with tenant A's id is B's own event: written, not answered with A's.
  v1::Envelope b = a;
  b.set_tenant_id(kB);
  ASSERT_TRUE(Publish(kOther, b, &b_resp).ok());
  EXPECT_FALSE(b_resp.delivery().duplicate());
  EXPECT_EQ(b_resp.delivery().partition(), kafka::PartitionForKey(kB, catalog_->Find("data.refreshed")->partitions));
}

TEST_F(Authz, ReplayReadsCatalogTopicsOnlyAndRequestsAreBounded) {
  EXPECT_EQ(Replay(kWildcard, kAcme, "__consumer_offsets"), kDenied);
  EXPECT_EQ(Replay(kWildcard, kAcme, Cat(prefix_, "not-in-the-catalog")), kDenied);
  auto bad = [&](const std::function<void(v1::ReplayRequest&)>& mutate) {
    auto ctx = Ctx(kWildcard);
    v1::ReplayRequest req;
    req.add_topics(catalog_->Find("data.refreshed")->topic);
    mutate(req);
    auto reader = query_->Replay(ctx.get(), req);
    v1::ReplayResponse ignored;
    while (reader->Read(&ignored)) {
    }
    return reader->Finish().error_code();
  };
  EXPECT_EQ(bad([](auto& r) { r.set_from_offset(-5); }), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad([](auto& r) { r.set_from_offset(10), r.set_to_offset(3); }), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad([](auto& r) { r.mutable_from_time()->set_seconds(INT64_MAX / 2); }), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad([](auto& r) { r.mutable_to_time()->set_seconds(-1); }), StatusCode::INVALID_ARGUMENT);
  v1::ListEventsRequest req;
  req.mutable_filter()->mutable_to_time()->set_seconds(INT64_MAX / 2);
  v1::ListEventsResponse resp;
  EXPECT_EQ(query_->ListEvents(Ctx(kWildcard).get(), req, &resp).error_code(), StatusCode::INVALID_ARGUMENT);
}

TEST_F(Authz, DatabaseTextNeverReachesTheCaller) {
  v1::ListEventsRequest req;
  req.mutable_filter()->set_json_path("$.a ? (@ == ");
  v1::ListEventsResponse resp;
  grpc::Status s = query_->ListEvents(Ctx(kOwn).get(), req, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("filter.json_path"));
  EXPECT_THAT(s.error_message(), Not(HasSubstr("syntax error")));
}

TEST_F(Authz, MalformedRequestsAreInvalidArgument) {
  auto channel = grpc::CreateChannel(Cat("127.0.0.1:", gateway_->port()), grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(channel);
  grpc::CompletionQueue cq;
  auto call = [&](const std::string& method, const std::string& body) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", Cat("Bearer ", kOwn));
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Slice slice(body);
    grpc::ByteBuffer req(&slice, 1), resp;
    grpc::Status status;
    auto c = generic.PrepareUnaryCall(&ctx, method, req, &cq);
    c->StartCall();
    c->Finish(&resp, &status, reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    return status;
  };
  const std::string garbage("\xff\xff\xff\xff", 4);  // no protobuf message: field 0 with wire type 7
  for (const char* method : {"/sluice.v1.EventGateway/Publish", "/sluice.v1.DataRefreshService/NotifyDataRefreshed",
                             "/sluice.v1.ApprovalService/CreateApproval", "/sluice.v1.ApprovalService/Approve",
                             "/sluice.v1.EventQueryService/ListEvents", "/sluice.v1.EventQueryService/GetEventHealth",
                             "/sluice.v1.EventQueryService/CreateSavedView"}) {
    grpc::Status s = call(method, garbage);
    EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << method << ": " << s.error_message();
  }
  cq.Shutdown();
}

}  // namespace
}  // namespace sluice
