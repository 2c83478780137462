// ApprovalService over real gRPC, PostgreSQL and Kafka, with sluice-relay's engine running.
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/pg.h"
#include "contracts/json.h"
#include "contracts/validate.h"
#include "producers/relay/relay.h"
#include "sluice/v1/approval_service.grpc.pb.h"
#include "tests/gateway_fixture.h"
#include "tests/subprocess.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

class Approvals : public testing::GatewayTest {
 protected:
  Approvals() : schema_(common::Cat("it_appr_", std::random_device{}())) {
    config_overrides_ = [this](gateway::GatewayConfig& c) {
      c.pg_dsn = common::DefaultPgDsn();
      c.pg_schema = schema_;
    };
  }
  void SetUp() override {
    GatewayTest::SetUp();
    if (HasFatalFailure()) return;
    auto c = common::PgConnection::Connect(common::DefaultPgDsn());
    ASSERT_TRUE(c.ok()) << c.status();
    conn_.emplace(*std::move(c));
    ASSERT_TRUE(conn_->ExecScript(common::Cat("CREATE SCHEMA ", schema_, "; SET search_path TO ", schema_)).ok());
    ASSERT_TRUE(common::Migrate(*conn_, std::string(SLUICE_SOURCE_DIR) + "/sql/migrations").ok());
    stub_ = v1::ApprovalService::NewStub(channel_);
    auto p = kafka::Producer::Create({.bootstrap_servers = bootstrap_}, *catalog_);
    ASSERT_TRUE(p.ok());
    relay_producer_ = *std::move(p);
    auto r = relay::Relay::Create(
        {.pg_dsn = common::DefaultPgDsn(), .poll_interval = absl::Milliseconds(200), .pg_schema = schema_},
        *relay_producer_);
    ASSERT_TRUE(r.ok());
    relay_ = *std::move(r);
    relay_thread_ = std::thread([this] { relay_->Run(); });
  }
  void TearDown() override {
    if (relay_) relay_->Stop();
    if (relay_thread_.joinable()) relay_thread_.join();
    relay_.reset();
    relay_producer_.reset();
    stub_.reset();
    GatewayTest::TearDown();
    if (conn_) {
      EXPECT_TRUE(conn_->ExecScript(common::Cat("DROP SCHEMA ", schema_, " CASCADE")).ok());
    }
  }

  v1::CreateApprovalRequest Request(v1::EntityType type, v1::Tier tier, const std::string& key,
                                    const std::string& payload_json) {
    v1::CreateApprovalRequest r;
    r.set_tenant_id("tenant-acme");
    r.set_entity_type(type);
    r.set_entity_key(key);
    r.set_tier(tier);
    r.set_lane(v1::LANE_GOVERNED);
    r.set_required_role(type == v1::ENTITY_TYPE_KPI ? "kpi_owner" : "metadata_steward");
    EXPECT_TRUE(contracts::FromJson(payload_json, *r.mutable_payload()).ok()) << payload_json;
    return r;
  }
  v1::Approval Create(const v1::CreateApprovalRequest& r, const std::string& traceparent = "") {
    v1::CreateApprovalResponse resp;
    auto ctx = Ctx(testing::kTokenA);
    if (!traceparent.empty()) ctx->AddMetadata("traceparent", traceparent);
    grpc::Status s = stub_->CreateApproval(ctx.get(), r, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.approval();
  }
  grpc::Status Approve(const std::string& id, const char* token, v1::ApproveResponse* out = nullptr,
                       const std::string& traceparent = "") {
    v1::ApproveRequest req;
    req.set_tenant_id("tenant-acme");
    req.set_id(id);
    v1::ApproveResponse resp;
    auto ctx = Ctx(token);
    if (!traceparent.empty()) ctx->AddMetadata("traceparent", traceparent);
    grpc::Status s = stub_->Approve(ctx.get(), req, &resp);
    if (out) *out = resp;
    return s;
  }
  // The outbox rows of an approval (correlation), in commit order: the envelope, and the
  // row's traceparent column.
  std::vector<std::pair<v1::Envelope, std::string>> OutboxOf(const std::string& approval_id) {
    std::vector<std::pair<v1::Envelope, std::string>> out;
    auto r = conn_->Exec("SELECT envelope, coalesce(traceparent, '') FROM event_outbox ORDER BY id");
    for (int i = 0; r.ok() && i < r->rows(); ++i) {
      std::string_view hex = r->Get(i, 0);
      std::string bytes;
      for (size_t j = 2; j + 1 < hex.size(); j += 2)
        bytes.push_back(static_cast<char>(std::stoi(std::string(hex.substr(j, 2)), nullptr, 16)));
      v1::Envelope e;
      if (e.ParseFromString(bytes) && e.correlation_id() == approval_id) out.emplace_back(e, std::string(r->Get(i, 1)));
    }
    return out;
  }
  // event_type of the outbox rows of an approval, in commit order.
  std::vector<std::string> OutboxTypes(const std::string& approval_id) {
    std::vector<std::string> out;
    for (const auto& [e, tp] : OutboxOf(approval_id)) out.push_back(e.type());
    return out;
  }
  // The events of `ids` as they arrived in Kafka: one consumer over every catalog topic,
  // until all were seen (and a quiet second to catch a duplicate).
  std::map<std::string, v1::Envelope> InKafka(const std::vector<std::string>& ids) {
    std::set<std::string> want(ids.begin(), ids.end());
    std::vector<std::string> topics;
    for (const auto& t : catalog_->topics()) topics.push_back(t.name());
    auto c = kafka::Consumer::Create({.bootstrap_servers = bootstrap_,
                                      .group_id = Group(common::Cat("approvals-", readers_++)),
                                      .topics = topics,
                                      .max_batch = 5000});
    std::map<std::string, v1::Envelope> got;
    std::map<std::string, int> count;
    if (!c.ok()) return got;
    absl::Time deadline = absl::Now() + absl::Seconds(60), quiet = absl::InfiniteFuture();
    while (absl::Now() < deadline && absl::Now() < quiet) {
      (void)(*c)->PollOnce([&](const std::vector<kafka::Record>& batch) {
        for (const auto& r : batch)
          if (want.contains(r.envelope.id())) {
            got[r.envelope.id()] = r.envelope;
            ++count[r.envelope.id()];
          }
        return absl::OkStatus();
      });
      if (got.size() == want.size() && quiet == absl::InfiniteFuture()) quiet = absl::Now() + absl::Seconds(1);
    }
    for (const auto& [id, n] : count) EXPECT_EQ(n, 1) << id << " in Kafka more than once";
    return got;
  }
  void WaitRelayed() {
    for (int i = 0; i < 100; ++i) {
      auto r = conn_->Exec("SELECT count(*) FROM event_outbox WHERE sent_at IS NULL");
      if (r.ok() && r->Get(0, 0) == "0") return;
      absl::SleepFor(absl::Milliseconds(100));
    }
    ADD_FAILURE() << "relay did not drain the outbox";
  }

  std::string schema_;
  std::optional<common::PgConnection> conn_;
  std::unique_ptr<v1::ApprovalService::Stub> stub_;
  std::unique_ptr<kafka::Producer> relay_producer_;
  std::unique_ptr<relay::Relay> relay_;
  std::thread relay_thread_;
};

struct TypeCase {
  v1::EntityType type;
  v1::Tier tier;
  const char* payload;
  std::vector<std::string> events;
};

// sluice_approvals_total for one label set, from the gateway's registry.
double Decided(prometheus::Registry& registry, const std::string& type, const std::string& tier,
               const std::string& decision) {
  for (const auto& family : registry.Collect()) {
    if (family.name != "sluice_approvals_total") continue;
    for (const auto& m : family.metric) {
      std::map<std::string, std::string> labels;
      for (const auto& l : m.label) labels[l.name] = l.value;
      if (labels == std::map<std::string, std::string>{{"decision", decision}, {"entity_type", type}, {"tier", tier}})
        return m.counter.value;
    }
  }
  return 0;
}

TEST_F(Approvals, EachEntityTypeEmitsItsEventsInOrderOnceWithOneCorrelation) {
  const TypeCase cases[] = {
      {v1::ENTITY_TYPE_METADATA,
       v1::TIER_1,
       R"({"label":"Revenue Gross","tier":"tier1","standardPackId":"IFRS_CORE","binding":{"schema":"public","table":"revenue"}})",
       {"approval.created", "metadata.approved", "metadata.changed", "approval.approved"}},
      {v1::ENTITY_TYPE_METADATA,
       v1::TIER_3,
       R"({"label":"Net Margin","tier":"tier3"})",
       {"approval.created", "metadata.approved", "metadata.changed", "approval.approved"}},
      {v1::ENTITY_TYPE_KPI,
       v1::TIER_2,
       R"({"name":"Revenue growth","formula":"rev/rev_prev-1"})",
       {"approval.created", "kpi.approved", "kpi.changed", "approval.approved"}},
      {v1::ENTITY_TYPE_GLOSSARY,
       v1::TIER_2,
       R"({"term":"Revenue","definition":"Income from sales","synonyms":["Sales"]})",
       {"approval.created", "approval.approved"}},
      {v1::ENTITY_TYPE_BUSINESS_RULE,
       v1::TIER_2,
       R"({"name":"Positive amount","expression":"amount > 0"})",
       {"approval.created", "approval.approved"}},
  };
  int n = 0;
  for (const auto& c : cases) {
    const std::string key = common::Cat("key_", n++);
    v1::Approval a = Create(Request(c.type, c.tier, key, c.payload));
    ASSERT_EQ(a.status(), v1::APPROVAL_STATUS_PENDING);
    EXPECT_EQ(a.requested_by(), "a");
    v1::ApproveResponse resp;
    grpc::Status s = Approve(a.id(), testing::kTokenSteward, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.approval().status(), v1::APPROVAL_STATUS_APPROVED);
    EXPECT_EQ(resp.approval().decided_by(), "steward");
    EXPECT_FALSE(resp.approval().entity_id().empty());
    EXPECT_THAT(OutboxTypes(a.id()), ElementsAreArray(c.events)) << key;

    WaitRelayed();
    std::vector<std::string> ids(resp.event_ids().begin(), resp.event_ids().end());
    auto got = InKafka(ids);
    ASSERT_EQ(got.size(), ids.size()) << key;
    for (size_t i = 0; i < ids.size(); ++i) {
      const v1::Envelope& e = got[ids[i]];
      EXPECT_EQ(e.type(), c.events[i + 1]);
      EXPECT_EQ(e.correlation_id(), a.id());
      EXPECT_FALSE(e.causation_id().empty()) << e.type() << " names no cause";
      EXPECT_EQ(e.source(), "metadata-studio.approval");
    }
  }
  // The approved entities exist, once each.
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM mdm_global_metadata")->Get(0, 0), "2");
  EXPECT_EQ(conn_->Exec("SELECT binding_table FROM mdm_global_metadata WHERE canonical_key = 'key_0'")->Get(0, 0),
            "revenue");
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM mdm_kpi_definition")->Get(0, 0), "1");
  EXPECT_EQ(conn_->Exec("SELECT synonyms::text FROM mdm_glossary_term")->Get(0, 0), "{Sales}");
  EXPECT_EQ(conn_->Exec("SELECT expression FROM mdm_business_rule")->Get(0, 0), "amount > 0");
}

TEST_F(Approvals, EventsContinueTheCallersTraceWithASpanEach) {
  const std::string create_trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const std::string decide_trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto trace_of = [](const std::string& tp) { return tp.size() == 55 ? tp.substr(3, 32) : std::string("none"); };
  // Created in one trace, approved by a call without one: every event is in the creator's trace.
  v1::Approval a =
      Create(Request(v1::ENTITY_TYPE_METADATA, v1::TIER_1, "traced", R"({"label":"Traced"})"), create_trace);
  ASSERT_TRUE(Approve(a.id(), testing::kTokenSteward).ok());
  auto rows = OutboxOf(a.id());
  ASSERT_EQ(rows.size(), 4u);  // approval.created, metadata.approved, metadata.changed, approval.approved
  std::set<std::string> spans;
  for (const auto& [e, column] : rows) {
    EXPECT_EQ(trace_of(e.traceparent()), trace_of(create_trace)) << e.type();
    EXPECT_TRUE(contracts::IsValidTraceparent(e.traceparent())) << e.traceparent();
    EXPECT_EQ(column, e.traceparent()) << e.type();
    spans.insert(e.traceparent().substr(36, 16));
  }
  EXPECT_EQ(spans.size(), rows.size());  // a span of its own each
  EXPECT_FALSE(spans.contains(create_trace.substr(36, 16)));
  // A decision made in a trace of its own continues that one.
  v1::Approval b =
      Create(Request(v1::ENTITY_TYPE_METADATA, v1::TIER_1, "traced2", R"({"label":"Traced 2"})"), create_trace);
  ASSERT_TRUE(Approve(b.id(), testing::kTokenSteward, nullptr, decide_trace).ok());
  rows = OutboxOf(b.id());
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(trace_of(rows[0].first.traceparent()), trace_of(create_trace));
  for (size_t i = 1; i < rows.size(); ++i)
    EXPECT_EQ(trace_of(rows[i].first.traceparent()), trace_of(decide_trace)) << rows[i].first.type();
  // No trace anywhere, or a malformed one: no traceparent (nothing invented).
  v1::Approval c =
      Create(Request(v1::ENTITY_TYPE_METADATA, v1::TIER_1, "untraced", R"({"label":"Untraced"})"), "garbage");
  ASSERT_TRUE(Approve(c.id(), testing::kTokenSteward).ok());
  for (const auto& [e, column] : OutboxOf(c.id())) {
    EXPECT_EQ(e.traceparent(), "") << e.type();
    EXPECT_EQ(column, "") << e.type();
  }
  // Kafka carries the same traceparent (the relay passes the envelope on as it is).
  WaitRelayed();
  auto kafka = InKafka({rows[0].first.id()});
  ASSERT_EQ(kafka.size(), 1u);
  EXPECT_EQ(kafka.begin()->second.traceparent(), rows[0].first.traceparent());
}

TEST_F(Approvals, DeprecationKeepsThePriorStateAndEmitsMetadataDeprecated) {
  v1::Approval first = Create(Request(v1::ENTITY_TYPE_METADATA, v1::TIER_2, "eps", R"({"label":"EPS"})"));
  ASSERT_TRUE(Approve(first.id(), testing::kTokenSteward).ok());
  v1::Approval second = Create(Request(v1::ENTITY_TYPE_METADATA, v1::TIER_2, "eps",
                                       R"({"label":"EPS","status":"deprecated","replacedBy":"eps_diluted"})"));
  v1::ApproveResponse resp;
  ASSERT_TRUE(Approve(second.id(), testing::kTokenSteward, &resp).ok());
  EXPECT_THAT(OutboxTypes(second.id()), ElementsAre("approval.created", "metadata.approved", "metadata.changed",
                                                    "metadata.deprecated", "approval.approved"));
  // current_state holds the entity as it was before this approval.
  const auto& prior = resp.approval().current_state().fields();
  EXPECT_EQ(prior.at("status").string_value(), "active");
  EXPECT_EQ(prior.at("version").number_value(), 1);
  EXPECT_EQ(conn_->Exec("SELECT status, version FROM mdm_global_metadata WHERE canonical_key = 'eps'")->Get(0, 1), "2");
  WaitRelayed();
  auto got = InKafka({resp.event_ids().begin(), resp.event_ids().end()});
  EXPECT_THAT(got.at(resp.event_ids(1)).metadata_changed().changed_fields(), ElementsAre("replacedBy", "status"));
  EXPECT_EQ(got.at(resp.event_ids(2)).metadata_deprecated().replaced_by(), "eps_diluted");
}

TEST_F(Approvals, ConcurrentApprovesGiveExactlyOneSuccessAndOneSetOfEvents) {
  v1::Approval a = Create(Request(v1::ENTITY_TYPE_KPI, v1::TIER_2, "kpi_x", R"({"name":"X"})"));
  std::vector<grpc::Status> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i)
    threads.emplace_back([&, i] { results[i] = Approve(a.id(), testing::kTokenSteward); });
  for (auto& t : threads) t.join();
  int ok = 0, precondition = 0;
  for (const auto& s : results) {
    ok += s.ok();
    precondition += s.error_code() == grpc::FAILED_PRECONDITION;
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(precondition, 3);
  EXPECT_EQ(Decided(registry_, "kpi", "tier2", "approved"), 1);  // the three refused are not counted
  EXPECT_THAT(OutboxTypes(a.id()), ElementsAre("approval.created", "kpi.approved", "kpi.changed", "approval.approved"));
}

TEST_F(Approvals, WrongRoleIsDeniedAndChangesNothing) {
  v1::Approval a = Create(Request(v1::ENTITY_TYPE_METADATA, v1::TIER_1, "guarded", R"({"label":"Guarded"})"));
  EXPECT_EQ(Approve(a.id(), testing::kTokenA).error_code(), grpc::PERMISSION_DENIED);  // no roles
  EXPECT_EQ(Approve(a.id(), testing::kTokenB).error_code(), grpc::PERMISSION_DENIED);  // other tenant
  EXPECT_EQ(conn_->Exec("SELECT status FROM mdm_approval")->Get(0, 0), "pending");
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM mdm_global_metadata")->Get(0, 0), "0");
  EXPECT_THAT(OutboxTypes(a.id()), ElementsAre("approval.created"));
}

TEST_F(Approvals, RejectNeedsAReasonCancelIsTheRequestersAndDecidedApprovalsStayDecided) {
  v1::Approval a = Create(Request(v1::ENTITY_TYPE_GLOSSARY, v1::TIER_3, "t1", R"({"term":"T","definition":"D"})"));
  v1::RejectRequest rej;
  rej.set_tenant_id("tenant-acme");
  rej.set_id(a.id());
  v1::RejectResponse rresp;
  auto c1 = Ctx(testing::kTokenSteward);
  grpc::Status s = stub_->Reject(c1.get(), rej, &rresp);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  rej.set_reason("duplicates an existing term");
  auto c2 = Ctx(testing::kTokenSteward);
  ASSERT_TRUE(stub_->Reject(c2.get(), rej, &rresp).ok());
  EXPECT_EQ(rresp.approval().status(), v1::APPROVAL_STATUS_REJECTED);
  EXPECT_EQ(rresp.approval().decision_reason(), "duplicates an existing term");
  EXPECT_THAT(OutboxTypes(a.id()), ElementsAre("approval.created", "approval.rejected"));
  EXPECT_EQ(Approve(a.id(), testing::kTokenSteward).error_code(), grpc::FAILED_PRECONDITION);

  v1::Approval b = Create(Request(v1::ENTITY_TYPE_GLOSSARY, v1::TIER_3, "t2", R"({"term":"T2","definition":"D2"})"));
  v1::CancelRequest can;
  can.set_tenant_id("tenant-acme");
  can.set_id(b.id());
  v1::CancelResponse cresp;
  auto c3 = Ctx(testing::kTokenSteward);
  EXPECT_EQ(stub_->Cancel(c3.get(), can, &cresp).error_code(), grpc::PERMISSION_DENIED);  // not the requester
  auto c4 = Ctx(testing::kTokenA);
  ASSERT_TRUE(stub_->Cancel(c4.get(), can, &cresp).ok());
  EXPECT_EQ(cresp.approval().status(), v1::APPROVAL_STATUS_CANCELLED);
  EXPECT_EQ(Approve(b.id(), testing::kTokenSteward).error_code(), grpc::FAILED_PRECONDITION);

  // Counted once each, by what was decided; refused calls count nothing.
  EXPECT_EQ(Decided(registry_, "glossary", "tier3", "created"), 2);
  EXPECT_EQ(Decided(registry_, "glossary", "tier3", "rejected"), 1);
  EXPECT_EQ(Decided(registry_, "glossary", "tier3", "cancelled"), 1);
  EXPECT_EQ(Decided(registry_, "glossary", "tier3", "approved"), 0);
}

// `sluicectl audit verify` over this test's topics and schema: exit code and output.
std::pair<int, std::string> Verify(const std::string& prefix, const std::string& bootstrap, const std::string& schema) {
  const std::string log = common::Cat(::testing::TempDir(), "/verify-", schema, ".out");
  return testing::RunCaptured(SLUICECTL,
                              {"--topic-prefix", prefix, "--bootstrap", bootstrap, "audit", "verify", "--pg-dsn",
                               common::DefaultPgDsn(), "--pg-schema", schema},
                              log);
}

TEST_F(Approvals, AuditVerifyFindsRowsChangedBehindThePlatformsBack) {
  v1::Approval meta = Create(Request(v1::ENTITY_TYPE_METADATA, v1::TIER_1, "orders",
                                     R"({"label":"Orders","binding":{"schema":"sales","table":"orders"}})"));
  ASSERT_TRUE(Approve(meta.id(), testing::kTokenSteward).ok());
  // A second approval of the same entity: the latest payload is the one that counts.
  v1::Approval meta2 = Create(Request(v1::ENTITY_TYPE_METADATA, v1::TIER_1, "orders",
                                      R"({"label":"Orders v2","binding":{"schema":"sales","table":"orders"}})"));
  ASSERT_TRUE(Approve(meta2.id(), testing::kTokenSteward).ok());
  v1::Approval kpi = Create(Request(v1::ENTITY_TYPE_KPI, v1::TIER_2, "growth", R"({"name":"Growth","formula":"a/b"})"));
  ASSERT_TRUE(Approve(kpi.id(), testing::kTokenSteward).ok());
  v1::Approval rejected =
      Create(Request(v1::ENTITY_TYPE_GLOSSARY, v1::TIER_3, "term", R"({"term":"T","definition":"D"})"));
  v1::RejectRequest rej;
  rej.set_tenant_id("tenant-acme");
  rej.set_id(rejected.id());
  rej.set_reason("not needed");
  v1::RejectResponse rresp;
  ASSERT_TRUE(stub_->Reject(Ctx(testing::kTokenSteward).get(), rej, &rresp).ok());
  v1::Approval cancelled =
      Create(Request(v1::ENTITY_TYPE_GLOSSARY, v1::TIER_3, "term2", R"({"term":"U","definition":"E"})"));
  v1::CancelRequest can;
  can.set_tenant_id("tenant-acme");
  can.set_id(cancelled.id());
  v1::CancelResponse cresp;
  ASSERT_TRUE(stub_->Cancel(Ctx(testing::kTokenA).get(), can, &cresp).ok());
  WaitRelayed();

  auto [code, out] = Verify(prefix_, bootstrap_, schema_);
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("0 mismatches: 5 approvals and 2 entities checked against 9 approval events"));
  EXPECT_THAT(out, ::testing::HasSubstr("1 cancelled"));

  // An entity edited in the database.
  ASSERT_TRUE(
      conn_->ExecScript("UPDATE mdm_global_metadata SET label = 'Tampered' WHERE canonical_key = 'orders'").ok());
  std::tie(code, out) = Verify(prefix_, bootstrap_, schema_);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("MISMATCH entity metadata tenant-acme/orders: label: PostgreSQL has "
                                        "\"Tampered\", the events give \"Orders v2\""));
  EXPECT_THAT(out, ::testing::HasSubstr("1 mismatches"));
  ASSERT_TRUE(
      conn_->ExecScript("UPDATE mdm_global_metadata SET label = 'Orders v2' WHERE canonical_key = 'orders'").ok());

  // An approval's decision rewritten, and an entity no event accounts for.
  ASSERT_TRUE(conn_->Exec("UPDATE mdm_approval SET status = 'approved' WHERE id = $1::uuid", {rejected.id()}).ok());
  ASSERT_TRUE(conn_
                  ->ExecScript("INSERT INTO mdm_kpi_definition (tenant_id, canonical_key, name, tier)"
                               " VALUES ('tenant-acme', 'smuggled', 'Smuggled', 'tier1')")
                  .ok());
  std::tie(code, out) = Verify(prefix_, bootstrap_, schema_);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out,
              ::testing::HasSubstr(common::Cat("MISMATCH approval ", rejected.id(),
                                               " (tenant-acme): PostgreSQL says approved, the events say rejected")));
  EXPECT_THAT(out, ::testing::HasSubstr(
                       "MISMATCH entity kpi tenant-acme/smuggled: in PostgreSQL, but no approval.approved event"));
  EXPECT_THAT(out, ::testing::HasSubstr("2 mismatches"));

  // Back as it was: consistent again.
  ASSERT_TRUE(conn_->Exec("UPDATE mdm_approval SET status = 'rejected' WHERE id = $1::uuid", {rejected.id()}).ok());
  ASSERT_TRUE(conn_->ExecScript("DELETE FROM mdm_kpi_definition WHERE canonical_key = 'smuggled'").ok());
  std::tie(code, out) = Verify(prefix_, bootstrap_, schema_);
  EXPECT_EQ(code, 0) << out;
}

TEST_F(Approvals, CreateValidatesThePayloadForItsEntityType) {
  v1::CreateApprovalResponse resp;
  auto bad = Request(v1::ENTITY_TYPE_BUSINESS_RULE, v1::TIER_2, "r", R"({"name":"no expression"})");
  auto c1 = Ctx(testing::kTokenA);
  grpc::Status s = stub_->CreateApproval(c1.get(), bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::StartsWith("payload.expression: required"));
  auto other = Request(v1::ENTITY_TYPE_KPI, v1::TIER_2, "k", R"({"name":"K"})");
  other.set_tenant_id("tenant-b");
  auto c2 = Ctx(testing::kTokenA);
  EXPECT_EQ(stub_->CreateApproval(c2.get(), other, &resp).error_code(), grpc::PERMISSION_DENIED);
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM mdm_approval")->Get(0, 0), "0");
}

TEST_F(Approvals, ListIsNewestFirstFilteredAndPagesWithoutGapsOrRepeats) {
  std::vector<std::string> created;
  for (int i = 0; i < 7; ++i) {
    auto type = i % 2 == 0 ? v1::ENTITY_TYPE_KPI : v1::ENTITY_TYPE_GLOSSARY;
    created.push_back(
        Create(Request(type, v1::TIER_2, common::Cat("k", i),
                       type == v1::ENTITY_TYPE_KPI ? R"({"name":"K"})" : R"({"term":"T","definition":"D"})"))
            .id());
  }
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    v1::ListApprovalsRequest req;
    req.set_tenant_id("tenant-acme");
    req.set_page_size(3);
    req.set_cursor(cursor);
    v1::ListApprovalsResponse resp;
    auto ctx = Ctx(testing::kTokenA);
    ASSERT_TRUE(stub_->ListApprovals(ctx.get(), req, &resp).ok());
    for (const auto& a : resp.approvals()) seen.push_back(a.id());
    cursor = resp.next_cursor();
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  std::vector<std::string> newest_first(created.rbegin(), created.rend());
  EXPECT_EQ(seen, newest_first);

  v1::ListApprovalsRequest kpis;
  kpis.set_tenant_id("tenant-acme");
  kpis.set_entity_type(v1::ENTITY_TYPE_KPI);
  kpis.set_status(v1::APPROVAL_STATUS_PENDING);
  v1::ListApprovalsResponse resp;
  auto ctx = Ctx(testing::kTokenA);
  ASSERT_TRUE(stub_->ListApprovals(ctx.get(), kpis, &resp).ok());
  EXPECT_EQ(resp.approvals_size(), 4);
  for (const auto& a : resp.approvals()) EXPECT_EQ(a.entity_type(), v1::ENTITY_TYPE_KPI);
}

TEST_F(Approvals, GatewayAndRelayCarryOnAfterPostgresRestarts) {
  v1::Approval before = Create(Request(v1::ENTITY_TYPE_KPI, v1::TIER_2, "before", R"({"name":"Before"})"));
  WaitRelayed();
  conn_.reset();
  ASSERT_EQ(std::system(common::Cat("bash ", SLUICE_SOURCE_DIR, "/dev/postgres.sh stop >/dev/null 2>&1").c_str()), 0);
  ASSERT_EQ(std::system(common::Cat("bash ", SLUICE_SOURCE_DIR, "/dev/postgres.sh start >/dev/null 2>&1").c_str()), 0);
  auto c = common::PgConnection::Connect(common::DefaultPgDsn());
  ASSERT_TRUE(c.ok());
  conn_.emplace(*std::move(c));
  ASSERT_TRUE(conn_->ExecScript(common::Cat("SET search_path TO ", schema_)).ok());

  // The gateway's pooled connections died with the server: the next calls reconnect.
  v1::ApproveResponse resp;
  grpc::Status s = Approve(before.id(), testing::kTokenSteward, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  WaitRelayed();  // and the relay reconnected too
  EXPECT_EQ(InKafka({resp.event_ids().begin(), resp.event_ids().end()}).size(), 3u);
}

}  // namespace
}  // namespace sluice
