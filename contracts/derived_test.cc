#include "contracts/derived.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "contracts/catalog.h"
#include "contracts/test_util.h"

namespace sluice::contracts {
namespace {

using testing::Golden;

std::vector<std::string> Kinds(const std::vector<v1::EventLink>& links) {
  std::vector<std::string> out;
  for (const auto& l : links) out.push_back(l.kind() + "=" + l.id());
  return out;
}

TEST(SeverityOf, FailedIsAnErrorDegradedAndGradeFAreWarningsTheRestInfo) {
  EXPECT_EQ(SeverityOf(Golden("metadata.profile.failed")), v1::EVENT_SEVERITY_ERROR);
  EXPECT_EQ(SeverityOf(Golden("data.quality.degraded")), v1::EVENT_SEVERITY_WARNING);
  v1::Envelope completed = Golden("metadata.profile.completed");
  EXPECT_EQ(SeverityOf(completed), v1::EVENT_SEVERITY_INFO);  // grade A
  completed.mutable_profile_completed()->set_quality_grade(v1::QUALITY_GRADE_D);
  EXPECT_EQ(SeverityOf(completed), v1::EVENT_SEVERITY_INFO);
  completed.mutable_profile_completed()->set_quality_grade(v1::QUALITY_GRADE_F);
  EXPECT_EQ(SeverityOf(completed), v1::EVENT_SEVERITY_WARNING);
  for (const char* type :
       {"data.refreshed", "approval.created", "approval.approved", "approval.rejected", "kpi.changed", "kpi.approved",
        "metadata.changed", "metadata.approved", "metadata.deprecated", "metadata.profile.due"})
    EXPECT_EQ(SeverityOf(Golden(type)), v1::EVENT_SEVERITY_INFO) << type;
}

TEST(TypesWithSeverity, NameCatalogTypesThatCoverTheRule) {
  for (auto severity : {v1::EVENT_SEVERITY_ERROR, v1::EVENT_SEVERITY_WARNING}) {
    const auto types = TypesWithSeverity(severity);
    ASSERT_FALSE(types.empty());
    for (const auto& t : types) EXPECT_NE(Catalog::Default().Find(t), nullptr) << t;
  }
  EXPECT_TRUE(TypesWithSeverity(v1::EVENT_SEVERITY_INFO).empty());
  // Every golden event whose severity is not INFO is of one of its severity's types.
  for (const auto& route : Catalog::Default().routes()) {
    const v1::Envelope e = Golden(route.type);
    const auto severity = SeverityOf(e);
    if (severity == v1::EVENT_SEVERITY_INFO) continue;
    EXPECT_THAT(TypesWithSeverity(severity), ::testing::Contains(route.type));
  }
}

TEST(LinksOf, NameWhatTheEventRefersToInOrder) {
  EXPECT_THAT(Kinds(LinksOf(Golden("metadata.profile.failed"))),
              ::testing::ElementsAre("entity=5d1c2a7e-3b7f-4c1e-9a51-1f2e3d4c5b6a", "canonical_key=revenue_gross",
                                     "job=0193a5f2-8000-7000-8000-0000000000c1",
                                     "correlation=0193a5f2-7c00-7000-8000-00000000c0de"));
  EXPECT_THAT(Kinds(LinksOf(Golden("approval.created"))),
              ::testing::Contains("approval=0193a5f2-6000-7000-8000-0000000000a1"));
  v1::Envelope bare = Golden("data.refreshed");
  bare.clear_correlation_id();
  for (const auto& l : LinksOf(bare)) EXPECT_NE(l.kind(), "correlation");
  v1::Envelope none;
  EXPECT_TRUE(LinksOf(none).empty());
}

TEST(Derive, SetsSeverityAndReplacesLinks) {
  v1::StoredEvent stored;
  *stored.mutable_envelope() = Golden("data.quality.degraded");
  stored.add_links()->set_kind("stale");
  Derive(stored);
  EXPECT_EQ(stored.severity(), v1::EVENT_SEVERITY_WARNING);
  ASSERT_GT(stored.links_size(), 0);
  for (const auto& l : stored.links()) EXPECT_NE(l.kind(), "stale");
  EXPECT_THAT(Kinds(LinksOf(stored.envelope())), ::testing::Contains(::testing::StartsWith("profile=")));
}

}  // namespace
}  // namespace sluice::contracts
