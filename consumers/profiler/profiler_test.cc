// Unit tests of the profiler's pure parts: the trigger policy, column rules, the profile
// statement and the scores. The PostgreSQL side is in tests/profiler_kafkatest.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "consumers/profiler/policy.h"
#include "consumers/profiler/profile.h"

namespace sluice::profiler {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);
const EntityFacts kBoundTier1{.found = true, .bound = true, .tier = v1::TIER_1};

LastProfile Ago(absl::Duration d, int64_t rows = 1000) { return {kNow - d, rows}; }

TEST(PolicyTest, SkipsUnknownAndUnboundEntitiesWithTheReason) {
  PolicyConfig c;
  auto d = Decide(c, TriggerKind::kProfileDue, v1::PROFILE_REASON_MANUAL, {}, std::nullopt, 0, kNow);
  EXPECT_FALSE(d.profile);
  EXPECT_EQ(d.skip_reason, "entity_not_found");
  d = Decide(c, TriggerKind::kDataRefreshed, v1::PROFILE_REASON_DATA_REFRESH, {.found = true, .tier = v1::TIER_1},
             std::nullopt, 1'000'000, kNow);
  EXPECT_FALSE(d.profile);
  EXPECT_EQ(d.skip_reason, "no_binding");
}

TEST(PolicyTest, CooldownSkipsRecentProfilesUnlessQualityDropOrManual) {
  PolicyConfig c;
  for (auto reason : {v1::PROFILE_REASON_SCHEDULE, v1::PROFILE_REASON_STRUCTURAL_CHANGE}) {
    auto d = Decide(c, TriggerKind::kProfileDue, reason, kBoundTier1, Ago(absl::Hours(11)), 0, kNow);
    EXPECT_FALSE(d.profile) << v1::ProfileReason_Name(reason);
    EXPECT_EQ(d.skip_reason, "cooldown");
    EXPECT_TRUE(Decide(c, TriggerKind::kProfileDue, reason, kBoundTier1, Ago(absl::Hours(13)), 0, kNow).profile);
  }
  for (auto reason : {v1::PROFILE_REASON_QUALITY_DROP, v1::PROFILE_REASON_MANUAL})
    EXPECT_TRUE(Decide(c, TriggerKind::kProfileDue, reason, kBoundTier1, Ago(absl::Minutes(1)), 0, kNow).profile);
  EXPECT_TRUE(
      Decide(c, TriggerKind::kProfileDue, v1::PROFILE_REASON_SCHEDULE, kBoundTier1, std::nullopt, 0, kNow).profile);
  c.cooldown = absl::Hours(1);
  EXPECT_TRUE(
      Decide(c, TriggerKind::kProfileDue, v1::PROFILE_REASON_SCHEDULE, kBoundTier1, Ago(absl::Hours(2)), 0, kNow)
          .profile);
}

TEST(PolicyTest, DataRefreshedProfilesWhenNeverProfiledStaleOrMoreThanTenPercentChanged) {
  PolicyConfig c;
  auto refresh = [&](std::optional<LastProfile> last, int64_t rows) {
    return Decide(c, TriggerKind::kDataRefreshed, v1::PROFILE_REASON_DATA_REFRESH, kBoundTier1, last, rows, kNow);
  };
  EXPECT_TRUE(refresh(std::nullopt, 0).profile);
  EXPECT_TRUE(refresh(Ago(absl::Hours(25)), 1).profile);
  EXPECT_TRUE(refresh(Ago(absl::Minutes(5), 1000), 101).profile);  // no cooldown for refreshes
  auto d = refresh(Ago(absl::Hours(23), 1000), 100);               // exactly 10%: not more
  EXPECT_FALSE(d.profile);
  EXPECT_EQ(d.skip_reason, "refresh_below_threshold");
  EXPECT_TRUE(refresh(Ago(absl::Hours(1), 0), 1).profile);  // an empty table that got rows
}

TEST(PolicyTest, ApprovalsProfileTier1AndTier2Only) {
  PolicyConfig c;
  for (auto tier : {v1::TIER_1, v1::TIER_2})
    EXPECT_TRUE(Decide(c, TriggerKind::kMetadataApproved, v1::PROFILE_REASON_STRUCTURAL_CHANGE,
                       {.found = true, .bound = true, .tier = tier}, std::nullopt, 0, kNow)
                    .profile);
  for (auto tier : {v1::TIER_3, v1::TIER_4, v1::TIER_5}) {
    auto d = Decide(c, TriggerKind::kMetadataApproved, v1::PROFILE_REASON_STRUCTURAL_CHANGE,
                    {.found = true, .bound = true, .tier = tier}, std::nullopt, 0, kNow);
    EXPECT_FALSE(d.profile);
    EXPECT_EQ(d.skip_reason, "tier_not_eligible");
  }
  auto d = Decide(c, TriggerKind::kMetadataApproved, v1::PROFILE_REASON_STRUCTURAL_CHANGE, kBoundTier1,
                  Ago(absl::Hours(1)), 0, kNow);
  EXPECT_EQ(d.skip_reason, "cooldown");
}

TEST(ColumnRulesTest, ParsesEveryKey) {
  auto r = ParseColumnRules(R"([{"column":"amount","min":0,"max":1000.5},
      {"column":"cur","allowed_values":["EUR","USD"],"max_length":3,"not_null":true},
      {"column":"email","unique":true,"regex":"^[^@]+@[^@]+$"}])");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ(*(*r)[0].min, "0");
  EXPECT_EQ(*(*r)[0].max, "1000.5");
  EXPECT_EQ(*(*r)[1].allowed_values, (std::vector<std::string>{"EUR", "USD"}));
  EXPECT_EQ(*(*r)[1].max_length, 3);
  EXPECT_TRUE((*r)[2].unique);
  EXPECT_EQ(*(*r)[2].regex, "^[^@]+@[^@]+$");
  EXPECT_TRUE(ParseColumnRules("[]")->empty());
}

TEST(ColumnRulesTest, NamesTheBadEntryAndKey) {
  EXPECT_THAT(ParseColumnRules(R"([{"column":"a"},{"column":"b","max_length":-1}])").status().message(),
              HasSubstr("column_rules[1].max_length"));
  EXPECT_THAT(ParseColumnRules(R"([{"unique":true}])").status().message(), HasSubstr("column_rules[0].column"));
  EXPECT_THAT(ParseColumnRules(R"([{"column":"a","colour":1}])").status().message(), HasSubstr("unknown key"));
  EXPECT_THAT(ParseColumnRules(R"([{"column":"a"},{"column":"a"}])").status().message(), HasSubstr("twice"));
  EXPECT_THAT(ParseColumnRules(R"({"column":"a"})").status().message(), HasSubstr("not a JSON array"));
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

const std::vector<ColumnInfo> kColumns = {{"id", "bigint", 'N', true},
                                          {"email", "text", 'S', false},
                                          {"amount", "numeric", 'N', false},
                                          {"at", "timestamp with time zone", 'D', false}};

TEST(ProfilePlanTest, OneStatementWithValuesAsParameters) {
  auto rules = ParseColumnRules(
      R"([{"column":"id","unique":true},{"column":"email","unique":true,"regex":"x'); DROP TABLE t; --"},
          {"column":"amount","min":0,"allowed_values":["1\"}","2"]}])");
  ASSERT_TRUE(rules.ok());
  auto plan = BuildProfilePlan("\"s\".\"t\"", kColumns, *rules, Quote);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->sql, testing::StartsWith("SELECT count(*), count(\"id\")"));
  EXPECT_THAT(plan->sql, testing::EndsWith(" FROM \"s\".\"t\""));
  EXPECT_THAT(plan->sql, Not(HasSubstr("DROP")));
  // Distinct values are counted by a statement of their own (a GROUP BY PostgreSQL can
  // hash in parallel), not count(DISTINCT) in the main scan; the unique index proves "id".
  EXPECT_THAT(plan->sql, Not(HasSubstr("DISTINCT")));
  EXPECT_THAT(plan->distinct_sql,
              ElementsAre("SELECT count(*) FROM (SELECT \"email\" FROM \"s\".\"t\" WHERE \"email\" IS NOT NULL GROUP BY"
                          " \"email\") AS d"));
  EXPECT_THAT(plan->sql, HasSubstr("min(\"at\")::text"));
  EXPECT_THAT(plan->sql, Not(HasSubstr("min(\"email\")")));
  ASSERT_EQ(plan->params.size(), 3u);
  EXPECT_EQ(*plan->params[0], "x'); DROP TABLE t; --");
  EXPECT_EQ(*plan->params[2], R"({"1\"}","2"})");
}

TEST(ProfilePlanTest, RejectsUnknownColumnsAndRangesOnText) {
  auto missing = BuildProfilePlan("t", kColumns, *ParseColumnRules(R"([{"column":"nope","unique":true}])"), Quote);
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_THAT(missing.status().message(), HasSubstr("\"nope\""));
  auto text_range = BuildProfilePlan("t", kColumns, *ParseColumnRules(R"([{"column":"email","max":5}])"), Quote);
  EXPECT_TRUE(absl::IsInvalidArgument(text_range.status()));
}

TEST(ScoresTest, WeightedMeanOfCompletenessUniquenessValidity) {
  ProfileResult r;
  r.row_count = 10;
  r.columns = {{.column = "a", .null_count = 2},                                           // 8 of 10
               {.column = "b", .null_count = 0, .unique_checked = true, .duplicates = 3},  // 7 distinct of 10
               {.column = "c", .null_count = 5, .validity_checked = true, .invalid = 1}};  // 4 valid of 5
  ComputeScores(r, {});
  EXPECT_DOUBLE_EQ(r.completeness, 100.0 * 23 / 30);
  EXPECT_DOUBLE_EQ(r.uniqueness, 70.0);
  EXPECT_DOUBLE_EQ(r.validity, 80.0);
  EXPECT_DOUBLE_EQ(r.quality_score, 0.4 * (100.0 * 23 / 30) + 0.3 * 70 + 0.3 * 80);
  EXPECT_EQ(r.grade, v1::QUALITY_GRADE_C);  // 75.67
  ComputeScores(r, {.completeness = 0, .uniqueness = 0, .validity = 1});
  EXPECT_DOUBLE_EQ(r.quality_score, 80.0);
}

TEST(ScoresTest, NothingMeasuredIsAHundredAndGradesHaveTheDocumentedBounds) {
  ProfileResult r;
  ComputeScores(r, {});
  EXPECT_EQ(r.quality_score, 100);
  EXPECT_EQ(GradeFor(90), v1::QUALITY_GRADE_A);
  EXPECT_EQ(GradeFor(89.99), v1::QUALITY_GRADE_B);
  EXPECT_EQ(GradeFor(80), v1::QUALITY_GRADE_B);
  EXPECT_EQ(GradeFor(70), v1::QUALITY_GRADE_C);
  EXPECT_EQ(GradeFor(60), v1::QUALITY_GRADE_D);
  EXPECT_EQ(GradeFor(59.9), v1::QUALITY_GRADE_F);
}

}  // namespace
}  // namespace sluice::profiler
