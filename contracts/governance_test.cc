#include "contracts/governance.h"

#include <gtest/gtest.h>

#include <set>

namespace sluice::contracts {
namespace {

TEST(Governance, EveryEntityTypeHasOneSpellingThatRoundTrips) {
  std::set<std::string> seen;
  for (int t = v1::EntityType_MIN + 1; t <= v1::EntityType_MAX; ++t) {
    const auto type = static_cast<v1::EntityType>(t);
    const std::string db = EntityTypeDb(type);
    ASSERT_FALSE(db.empty()) << v1::EntityType_Name(type);
    EXPECT_TRUE(seen.insert(db).second) << db;
    EXPECT_EQ(EntityTypeFromDb(db), type);
  }
  EXPECT_EQ(EntityTypeDb(v1::ENTITY_TYPE_METADATA), "metadata");
  EXPECT_EQ(EntityTypeDb(v1::ENTITY_TYPE_BUSINESS_RULE), "business_rule");
  EXPECT_EQ(EntityTypeDb(v1::ENTITY_TYPE_UNSPECIFIED), "");
  EXPECT_EQ(EntityTypeDb(static_cast<v1::EntityType>(99)), "");
  // The old approval spelling and other near misses are not accepted.
  EXPECT_EQ(EntityTypeFromDb("GLOBAL_METADATA"), v1::ENTITY_TYPE_UNSPECIFIED);
  EXPECT_EQ(EntityTypeFromDb("METADATA"), v1::ENTITY_TYPE_UNSPECIFIED);
  EXPECT_EQ(EntityTypeFromDb(""), v1::ENTITY_TYPE_UNSPECIFIED);
}

TEST(Governance, TiersAreCheckedBothWays) {
  for (int t = 1; t <= 5; ++t) {
    const auto tier = static_cast<v1::Tier>(t);
    EXPECT_EQ(TierDb(tier), "tier" + std::to_string(t));
    EXPECT_EQ(TierFromDb(TierDb(tier)), tier);
  }
  EXPECT_EQ(TierDb(v1::TIER_UNSPECIFIED), "");
  EXPECT_EQ(TierDb(static_cast<v1::Tier>(7)), "");
  for (const char* bad : {"tier0", "tier6", "tier", "tier12", "TIER_1", "xier1", ""})
    EXPECT_EQ(TierFromDb(bad), v1::TIER_UNSPECIFIED) << bad;
}

TEST(Governance, LanesAndApprovalStatusesRoundTrip) {
  for (auto lane : {v1::LANE_KERNEL, v1::LANE_GOVERNED, v1::LANE_DRAFT}) EXPECT_EQ(LaneFromDb(LaneDb(lane)), lane);
  EXPECT_EQ(LaneDb(v1::LANE_GOVERNED), "governed");
  EXPECT_EQ(LaneFromDb("GOVERNED"), v1::LANE_UNSPECIFIED);
  for (auto s : {v1::APPROVAL_STATUS_PENDING, v1::APPROVAL_STATUS_APPROVED, v1::APPROVAL_STATUS_REJECTED,
                 v1::APPROVAL_STATUS_CANCELLED})
    EXPECT_EQ(ApprovalStatusFromDb(ApprovalStatusDb(s)), s);
  EXPECT_EQ(ApprovalStatusDb(v1::APPROVAL_STATUS_UNSPECIFIED), "");
  EXPECT_EQ(ApprovalStatusFromDb("canceled"), v1::APPROVAL_STATUS_UNSPECIFIED);
}

TEST(Governance, OnlyApprovableTypesHaveAnEntityTableAndUpsert) {
  for (int t = v1::EntityType_MIN; t <= v1::EntityType_MAX; ++t) {
    const auto type = static_cast<v1::EntityType>(t);
    EXPECT_EQ(EntityTable(type) == nullptr, EntityUpsertSql(type) == nullptr) << t;
  }
  EXPECT_STREQ(EntityTable(v1::ENTITY_TYPE_METADATA), "mdm_global_metadata");
  EXPECT_EQ(EntityTable(v1::ENTITY_TYPE_TAG), nullptr);
  EXPECT_EQ(EntityTable(v1::ENTITY_TYPE_UNSPECIFIED), nullptr);
}

}  // namespace
}  // namespace sluice::contracts
