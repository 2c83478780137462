#include "contracts/catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/file.h"
#include "contracts/vectors.h"

namespace sluice::contracts {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(Catalog, DefaultRoutesAllThirteenTypesByDomain) {
  const Catalog& c = Catalog::Default();
  EXPECT_EQ(c.routes().size(), 13u);
  EXPECT_EQ(c.topics().size(), 5u);
  struct Want {
    const char* type;
    const char* topic;
    const char* field;
  };
  for (auto w : {Want{"metadata.profile.due", "sluice.profile", "profile_due"},
                 Want{"metadata.profile.completed", "sluice.profile", "profile_completed"},
                 Want{"metadata.profile.failed", "sluice.profile", "profile_failed"},
                 Want{"metadata.changed", "sluice.metadata", "metadata_changed"},
                 Want{"metadata.approved", "sluice.metadata", "metadata_approved"},
                 Want{"metadata.deprecated", "sluice.metadata", "metadata_deprecated"},
                 Want{"kpi.changed", "sluice.kpi", "kpi_changed"}, Want{"kpi.approved", "sluice.kpi", "kpi_approved"},
                 Want{"data.refreshed", "sluice.data", "data_refreshed"},
                 Want{"data.quality.degraded", "sluice.data", "data_quality_degraded"},
                 Want{"approval.created", "sluice.approval", "approval_created"},
                 Want{"approval.approved", "sluice.approval", "approval_approved"},
                 Want{"approval.rejected", "sluice.approval", "approval_rejected"}}) {
    const Route* r = c.Find(w.type);
    ASSERT_NE(r, nullptr) << w.type;
    EXPECT_EQ(r->topic, w.topic) << w.type;
    EXPECT_EQ(r->payload_field, w.field) << w.type;
    EXPECT_EQ(r->key, "tenant_id");
    EXPECT_EQ(r->partitions, 12);
    EXPECT_GT(r->retention_ms, 0);
    EXPECT_FALSE(r->producers.empty()) << w.type;
    EXPECT_EQ(c.FindByPayloadField(w.field), r);
  }
  EXPECT_EQ(c.Find("metadata.profile.started"), nullptr);
  EXPECT_EQ(c.Lookup("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(Catalog, KnowsTheNineSources) {
  EXPECT_THAT(Catalog::Default().sources(),
              ElementsAre("agent.profiler", "bff.graphql", "etl.pipeline", "finance.service", "kernel.scheduler",
                          "metadata-studio.api", "metadata-studio.approval", "sluice.triggers", "system.migration"));
  EXPECT_TRUE(Catalog::Default().IsOutboxOnlySource("sluice.triggers")) << "no caller may publish as it";
}

TEST(Catalog, FileOnDiskMatchesTheEmbeddedCopy) {
  auto c = Catalog::FromFile(std::string(SLUICE_SOURCE_DIR) + "/contracts/catalog.textproto");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->routes().size(), Catalog::Default().routes().size());
  for (size_t i = 0; i < c->routes().size(); ++i) EXPECT_EQ(c->routes()[i].topic, Catalog::Default().routes()[i].topic);
}

TEST(Catalog, TopicPrefixRenamesEveryTopicAndRoute) {
  Catalog c = Catalog::Default().WithTopicPrefix("t1.");
  EXPECT_EQ(c.Find("data.refreshed")->topic, "t1.sluice.data");
  for (const auto& t : c.topics()) EXPECT_THAT(t.name(), ::testing::StartsWith("t1.sluice."));
  EXPECT_THAT(c.TypesOnTopic("t1.sluice.data"), ElementsAre("data.refreshed", "data.quality.degraded"));
  EXPECT_EQ(Catalog::Default().Find("data.refreshed")->topic, "sluice.data");
}

std::string Text() {
  auto t = common::ReadFile(std::string(SLUICE_SOURCE_DIR) + "/contracts/catalog.textproto");
  EXPECT_TRUE(t.ok());
  return t.ok() ? *t : "";
}

void Replace(std::string& s, std::string_view from, std::string_view to) {
  auto pos = s.find(from);
  ASSERT_NE(pos, std::string::npos) << from;
  s.replace(pos, from.size(), to);
}

TEST(Catalog, TopicsForTypesIsSortedDistinctAndNamesAnUnknownType) {
  const Catalog& c = Catalog::Default();
  auto some = c.TopicsFor({"metadata.changed", "metadata.approved", "approval.created"});
  ASSERT_TRUE(some.ok()) << some.status();
  EXPECT_THAT(*some, ElementsAre("sluice.approval", "sluice.metadata"));
  auto all = c.TopicsFor({});
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(*all, ElementsAre("sluice.approval", "sluice.data", "sluice.kpi", "sluice.metadata", "sluice.profile"));
  auto bad = c.TopicsFor({"metadata.changed", "no.such"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("types: unknown event type \"no.such\""));
}

TEST(Catalog, RejectsUnknownTopic) {
  std::string t = Text();
  Replace(t, "topic: \"sluice.kpi\"", "topic: \"sluice.nope\"");
  auto c = Catalog::Parse(t);
  EXPECT_THAT(c.status().message(), HasSubstr("event_types[6].topic: unknown topic \"sluice.nope\""));
}

TEST(Catalog, RejectsMismatchedPayloadMessage) {
  std::string t = Text();
  Replace(t, "payload_message: \"sluice.v1.KpiApproved\"", "payload_message: \"sluice.v1.KpiChanged\"");
  EXPECT_THAT(Catalog::Parse(t).status().message(), HasSubstr("event_types[7].payload_message"));
}

TEST(Catalog, RejectsAMissingType) {
  std::string t = Text();
  auto start = t.find("event_types {\n  type: \"approval.rejected\"");
  ASSERT_NE(start, std::string::npos);
  t.erase(start, t.find('}', start) + 1 - start);
  EXPECT_THAT(Catalog::Parse(t).status().message(),
              HasSubstr("no type for Envelope payload field \"approval_rejected\""));
}

TEST(Catalog, RejectsUnknownProducerAndNonTenantKey) {
  std::string t = Text();
  Replace(t, "producers: \"etl.pipeline\"", "producers: \"etl.unknown\"");
  EXPECT_THAT(Catalog::Parse(t).status().message(), HasSubstr("producers[0]: unknown source \"etl.unknown\""));
  t = Text();
  Replace(t, "key: \"tenant_id\"", "key: \"entity_id\"");
  EXPECT_THAT(Catalog::Parse(t).status().message(), HasSubstr("event_types[0].key"));
  EXPECT_FALSE(Catalog::Parse("topics { name: ").ok());
}

}  // namespace
}  // namespace sluice::contracts
