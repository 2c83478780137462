#include "contracts/authz.h"

#include <gmock/gmock.h>
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

namespace sluice::contracts {
namespace {

using ::testing::HasSubstr;

v1::Principal P(const std::string& text) {
  v1::Principal p;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &p)) << text;
  return p;
}

v1::Envelope Env(std::string type, std::string tenant, std::string source) {
  v1::Envelope e;
  e.set_type(std::move(type));
  e.set_tenant_id(std::move(tenant));
  e.set_source(std::move(source));
  return e;
}

TEST(Authorizer, PublishNeedsTenantSourceAndCatalogProducer) {
  Authorizer a(Catalog::Default());
  const auto etl = P(R"pb(name: "etl" tenants: "tenant-a" sources: "etl.pipeline")pb");
  const auto plain = P(R"pb(name: "plain" tenants: "*")pb");
  EXPECT_TRUE(a.MayPublish(etl, Env("data.refreshed", "tenant-a", "etl.pipeline")).ok());
  auto other = a.MayPublish(etl, Env("data.refreshed", "tenant-b", "etl.pipeline"));
  EXPECT_EQ(other.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(other.message()), HasSubstr("tenant_id: etl may not act for tenant \"tenant-b\""));
  EXPECT_EQ(a.MayPublish(etl, Env("metadata.profile.due", "tenant-a", "kernel.scheduler")).code(),
            absl::StatusCode::kPermissionDenied);
  // The catalog's producers: etl.pipeline does not produce profile outcomes.
  auto forged = a.MayPublish(etl, Env("metadata.profile.completed", "tenant-a", "etl.pipeline"));
  EXPECT_EQ(forged.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(forged.message()), HasSubstr("source: \"etl.pipeline\" is not a producer"));
  EXPECT_TRUE(a.MayPublish(plain, Env("metadata.profile.due", "anyone", "kernel.scheduler")).ok());
}

TEST(Authorizer, DecisionEventsAndTheWorkflowIdentityAreOutboxOnly) {
  Authorizer a(Catalog::Default());
  const auto etl = P(R"pb(name: "etl" tenants: "t" sources: "etl.pipeline")pb");
  const auto plain = P(R"pb(name: "plain" tenants: "*")pb");
  const auto listed = P(R"pb(name: "x" tenants: "*" sources: "metadata-studio.approval")pb");
  for (const char* type :
       {"metadata.approved", "kpi.approved", "approval.created", "approval.approved", "approval.rejected"}) {
    for (const auto* who : {&etl, &plain, &listed}) {
      auto s = a.MayPublish(*who, Env(type, "t", "metadata-studio.approval"));
      EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << type << " " << who->name();
      EXPECT_THAT(std::string(s.message()), HasSubstr("type: ")) << type;
    }
  }
  // Not an outbox type, but the workflow's own source: refused too.
  auto s = a.MayPublish(listed, Env("metadata.changed", "t", "metadata-studio.approval"));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("source: \"metadata-studio.approval\" is a service identity"));
  // Consumers still accept what the relay writes.
  EXPECT_TRUE(a.SourceMayEmit(Env("metadata.approved", "t", "metadata-studio.approval")).ok());
  EXPECT_EQ(a.SourceMayEmit(Env("metadata.approved", "t", "etl.pipeline")).code(), absl::StatusCode::kPermissionDenied);
}

TEST(Authorizer, NoCallerPublishesAsTheTriggersIdentity) {
  Authorizer a(Catalog::Default());
  const auto plain = P(R"pb(name: "plain" tenants: "*")pb");
  const auto listed = P(R"pb(name: "x" tenants: "*" sources: "sluice.triggers")pb");
  for (const auto* who : {&plain, &listed}) {
    auto s = a.MayPublish(*who, Env("metadata.profile.due", "t", "sluice.triggers"));
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << who->name();
    EXPECT_THAT(std::string(s.message()), HasSubstr("is a service identity"));
  }
  // What sluice-triggers publishes is accepted by consumers; nothing else from it.
  EXPECT_TRUE(a.SourceMayEmit(Env("metadata.profile.due", "t", "sluice.triggers")).ok());
  for (const char* type : {"approval.approved", "metadata.approved", "data.quality.degraded", "metadata.changed"})
    EXPECT_EQ(a.SourceMayEmit(Env(type, "t", "sluice.triggers")).code(), absl::StatusCode::kPermissionDenied) << type;
}

TEST(Authorizer, ReadableTenants) {
  Authorizer a(Catalog::Default());
  const auto one = P(R"pb(name: "one" tenants: "t1" tenants: "t2")pb");
  const auto all = P(R"pb(name: "all" tenants: "*")pb");
  google::protobuf::RepeatedPtrField<std::string> none, t3, bad;
  *t3.Add() = "t3";
  *bad.Add() = "Not A Tenant";
  EXPECT_EQ(*a.ReadableTenants(one, none, "f"), (std::set<std::string>{"t1", "t2"}));
  EXPECT_TRUE(a.ReadableTenants(all, none, "f")->empty());  // empty = every tenant
  auto denied = a.ReadableTenants(one, t3, "filter.tenant_ids");
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(denied.status().message()), HasSubstr("filter.tenant_ids[0]"));
  EXPECT_EQ(a.ReadableTenants(all, bad, "f").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Authorizer::SeesAllTenants(all));
  EXPECT_FALSE(Authorizer::SeesAllTenants(one));
}

TEST(Authorizer, ApprovalsAreDecidedByThePolicyRoleAndNotByTheRequester) {
  Authorizer a(Catalog::Default());
  const auto steward = P(R"pb(name: "steward" tenants: "t" roles: "metadata_steward")pb");
  const auto other = P(R"pb(name: "other" tenants: "u" roles: "metadata_steward")pb");
  const auto plain = P(R"pb(name: "plain" tenants: "t")pb");
  const std::string role = a.RequiredRole(v1::ENTITY_TYPE_METADATA, v1::TIER_1);
  EXPECT_EQ(role, "metadata_steward");
  EXPECT_EQ(a.RequiredRole(v1::ENTITY_TYPE_KPI, v1::TIER_2), "kpi_owner");
  EXPECT_TRUE(a.MayDecide(steward, "t", "plain", role).ok());
  auto self = a.MayDecide(steward, "t", "steward", role);
  EXPECT_EQ(self.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(self.message()), HasSubstr("requested this approval"));
  EXPECT_EQ(a.MayDecide(plain, "t", "steward", role).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(a.MayDecide(other, "t", "plain", role).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(a.MayDecide(steward, "t", "plain", "").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(a.MayCancel(plain, "plain").ok());
  EXPECT_EQ(a.MayCancel(steward, "plain").code(), absl::StatusCode::kPermissionDenied);
}

TEST(Authorizer, TriggersAreChangedByTheirTenantsTriggerAdminsOrOperators) {
  Authorizer a(Catalog::Default());
  const auto admin = P(R"pb(name: "admin" tenants: "tenant-a" roles: "trigger_admin")pb");
  const auto ops = P(R"pb(name: "ops" tenants: "*" roles: "operator")pb");
  const auto reader = P(R"pb(name: "reader" tenants: "tenant-a" roles: "metadata_steward")pb");
  EXPECT_TRUE(a.MayManageTriggers(admin, "tenant-a").ok());
  EXPECT_TRUE(a.MayManageTriggers(ops, "tenant-b").ok());
  EXPECT_EQ(a.MayManageTriggers(admin, "tenant-b").code(), absl::StatusCode::kPermissionDenied);
  auto read_only = a.MayManageTriggers(reader, "tenant-a");
  EXPECT_EQ(read_only.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(read_only.message()), HasSubstr("trigger_admin"));
}

TEST(ApprovalPolicy, FromJsonMostSpecificKeyWins) {
  auto p = ApprovalPolicy::FromJson(R"({"METADATA": "steward2", "metadata/tier1": "kernel_architect",
                                       "ENTITY_TYPE_KPI/TIER_3": "kpi_lead"})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->RoleFor(v1::ENTITY_TYPE_METADATA, v1::TIER_1), "kernel_architect");
  EXPECT_EQ(p->RoleFor(v1::ENTITY_TYPE_METADATA, v1::TIER_2), "steward2");
  EXPECT_EQ(p->RoleFor(v1::ENTITY_TYPE_KPI, v1::TIER_3), "kpi_lead");
  EXPECT_EQ(p->RoleFor(v1::ENTITY_TYPE_KPI, v1::TIER_1), "kpi_owner");
  EXPECT_EQ(p->RoleFor(v1::ENTITY_TYPE_GLOSSARY, v1::TIER_1), "metadata_steward");
  for (const char* bad : {R"({"NOPE": "x"})", R"({"KPI/TIER_9": "x"})", R"({"KPI": ""})", R"({"KPI": 3})", "[1]"}) {
    auto s = ApprovalPolicy::FromJson(bad);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Authorizer, OnlyCatalogTopicsAreReadableAndRepublishNeedsOperator) {
  Authorizer a(Catalog::Default());
  EXPECT_TRUE(a.MayReadTopic("sluice.approval").ok());
  EXPECT_EQ(a.MayReadTopic("__consumer_offsets").code(), absl::StatusCode::kPermissionDenied);
  const auto op = P(R"pb(name: "x" tenants: "*" roles: "operator")pb");
  EXPECT_EQ(a.MayRepublish(P(R"pb(name: "x" tenants: "*")pb"), "t").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(a.MayRepublish(op, "replay-target").ok());
  EXPECT_EQ(a.MayRepublish(op, "__consumer_offsets").code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace sluice::contracts
