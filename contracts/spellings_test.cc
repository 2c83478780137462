#include "contracts/spellings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "contracts/governance.h"
#include "contracts/json.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::contracts {
namespace {

using ::testing::HasSubstr;

TEST(SpellingsTest, ShortSpellingsAreTheDatabasesWhereItHasOne) {
  for (int i = 1; i < v1::Tier_descriptor()->value_count(); ++i) {
    const auto& v = *v1::Tier_descriptor()->value(i);
    EXPECT_EQ(ShortSpelling(v), TierDb(static_cast<v1::Tier>(v.number())));
  }
  for (int i = 1; i < v1::EntityType_descriptor()->value_count(); ++i) {
    const auto& v = *v1::EntityType_descriptor()->value(i);
    EXPECT_EQ(ShortSpelling(v), EntityTypeDb(static_cast<v1::EntityType>(v.number())));
  }
  for (int i = 1; i < v1::Lane_descriptor()->value_count(); ++i) {
    const auto& v = *v1::Lane_descriptor()->value(i);
    EXPECT_EQ(ShortSpelling(v), LaneDb(static_cast<v1::Lane>(v.number())));
  }
  for (int i = 1; i < v1::ApprovalStatus_descriptor()->value_count(); ++i) {
    const auto& v = *v1::ApprovalStatus_descriptor()->value(i);
    EXPECT_EQ(ShortSpelling(v), ApprovalStatusDb(static_cast<v1::ApprovalStatus>(v.number())));
  }
  EXPECT_EQ(ShortSpelling(*v1::QualityGrade_descriptor()->FindValueByName("QUALITY_GRADE_F")), "F");
  EXPECT_EQ(ShortSpelling(*v1::Priority_descriptor()->FindValueByName("PRIORITY_HIGH")), "high");
  EXPECT_EQ(ShortSpelling(*v1::ProfileReason_descriptor()->FindValueByName("PROFILE_REASON_QUALITY_DROP")),
            "quality_drop");
  EXPECT_EQ(ShortSpelling(*v1::Tier_descriptor()->FindValueByNumber(0)), "");
}

TEST(SpellingsTest, EitherSpellingFindsTheValue) {
  const auto& tier = *v1::Tier_descriptor();
  for (const char* s : {"TIER_1", "tier1", "TIER1"}) {
    ASSERT_NE(FindEnumValue(tier, s), nullptr) << s;
    EXPECT_EQ(FindEnumValue(tier, s)->number(), 1) << s;
  }
  EXPECT_EQ(FindEnumValue(*v1::Priority_descriptor(), "HIGH")->name(), "PRIORITY_HIGH");
  EXPECT_EQ(FindEnumValue(*v1::QualityGrade_descriptor(), "a")->name(), "QUALITY_GRADE_A");
  for (const char* s : {"tier6", "", "unspecified", "1", "TIER_"}) {
    EXPECT_EQ(FindEnumValue(tier, s), nullptr) << s;
  }
}

TEST(SpellingsTest, JsonAcceptsTheShortSpellingAtAnyDepth) {
  v1::Envelope short_form, long_form;
  ASSERT_TRUE(FromJson(R"({"id": "x", "profileDue": {"entityType": "metadata", "tier": "tier1",
      "priority": "high", "reason": "SCHEDULE"}})",
                       short_form)
                  .ok());
  ASSERT_TRUE(FromJson(R"({"id": "x", "profileDue": {"entityType": "ENTITY_TYPE_METADATA", "tier": "TIER_1",
      "priority": "PRIORITY_HIGH", "reason": "PROFILE_REASON_SCHEDULE"}})",
                       long_form)
                  .ok());
  EXPECT_EQ(short_form.SerializeAsString(), long_form.SerializeAsString());
  EXPECT_EQ(short_form.profile_due().tier(), v1::TIER_1);
  v1::Envelope graded;
  ASSERT_TRUE(
      FromJson(R"({"dataQualityDegraded": {"previousGrade": "A", "currentGrade": "QUALITY_GRADE_F"}})", graded).ok());
  EXPECT_EQ(graded.data_quality_degraded().previous_grade(), v1::QUALITY_GRADE_A);
  // Still refused: a value that is neither spelling, an unknown field, and a number that
  // could not be re-encoded exactly (with a short spelling that would need rewriting).
  v1::Envelope e;
  auto s = FromJson(R"({"profileDue": {"tier": "tier9"}})", e);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("tier"));
  EXPECT_FALSE(FromJson(R"({"profileDue": {"tier": "tier1", "bogus": 1}})", e).ok());
  EXPECT_FALSE(FromJson(R"({"ttlMs": 9007199254740993, "profileDue": {"tier": "tier1"}})", e).ok());
  EXPECT_TRUE(FromJson(R"({"ttlMs": 9007199254740993, "profileDue": {"tier": "TIER_1"}})", e).ok());
  EXPECT_EQ(e.ttl_ms(), 9007199254740993);
}

TEST(SpellingsTest, JsonPathComparisonsWithShortSpellingsMatchTheEnumNameToo) {
  EXPECT_EQ(WidenEnumComparisons(R"($.tier ? (@ == "tier1"))"), R"($.tier ? ((@ == "tier1" || @ == "TIER_1")))");
  EXPECT_EQ(
      WidenEnumComparisons(R"($ ? (@.currentGrade == "F" && @.tier=="tier2"))"),
      R"($ ? ((@.currentGrade == "F" || @.currentGrade == "QUALITY_GRADE_F") && (@.tier == "tier2" || @.tier == "TIER_2")))");
  EXPECT_EQ(WidenEnumComparisons(R"($.items[*].priority ? (@ == "high"))"),
            R"($.items[*].priority ? ((@ == "high" || @ == "PRIORITY_HIGH")))");
  // Inequality excludes both spellings.
  EXPECT_EQ(WidenEnumComparisons(R"($.tier ? (@ != "tier1"))"), R"($.tier ? ((@ != "tier1" && @ != "TIER_1")))");
  EXPECT_EQ(WidenEnumComparisons(R"($.tier ? (@ <> "tier1"))"), R"($.tier ? ((@ <> "tier1" && @ <> "TIER_1")))");
  // Left alone: enum names, other strings, other operators, escapes, non-path operands,
  // a path that is the right operand of arithmetic.
  for (const char* p : {R"($.tier ? (@ == "TIER_1"))", R"($.entityKey ? (@ == "orders"))", R"($.tier ? (@ >= "tier1"))",
                        R"($ ? (@.a - @.b == "tier1"))", R"($ ? (-$.x == "tier1"))",
                        R"($.tier ? (@ like_regex "tier1"))", R"($.tier ? (@ == "tier\u0031"))",
                        R"($.tier ? (@.size() == "tier1"))", R"($.a ? ("tier1" == @))", R"x($.a ? (@ == "tier1)")x"}) {
    EXPECT_EQ(WidenEnumComparisons(p), p) << p;
  }
}

}  // namespace
}  // namespace sluice::contracts
