// Unit tests of the profiler's pure parts: the trigger policy, column rules, the profile
// statement and the scores. The PostgreSQL side is in tests/profiler_kafkatest.cc.
#include <absl/strings/str_cat.h>
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
const EntityFacts kBoundTier1{.found = true, .bound = true, .tier = v1::TIER_1, .definition = "def-1"};

EntityFacts Bound(v1::Tier tier) { return {.found = true, .bound = true, .tier = tier, .definition = "def-1"}; }
LastProfile Ago(absl::Duration d, int64_t rows = 1000, std::string definition = "def-1") {
  return {kNow - d, rows, std::move(definition)};
}
Trigger Due(v1::ProfileReason reason = v1::PROFILE_REASON_SCHEDULE, v1::Priority priority = v1::PRIORITY_HIGH) {
  return {.kind = TriggerKind::kProfileDue, .reason = reason, .priority = priority};
}
const Trigger kApproved{.kind = TriggerKind::kMetadataApproved, .reason = v1::PROFILE_REASON_STRUCTURAL_CHANGE};
Trigger Refresh(int64_t rows) {
  return {.kind = TriggerKind::kDataRefreshed, .reason = v1::PROFILE_REASON_DATA_REFRESH, .rows_affected = rows};
}

TEST(PolicyTest, SkipsUnknownAndUnboundEntitiesWithTheReason) {
  PolicyConfig c;
  auto d = Decide(c, Due(v1::PROFILE_REASON_MANUAL), {}, std::nullopt, kNow);
  EXPECT_FALSE(d.profile);
  EXPECT_EQ(d.skip_reason, "entity_not_found");
  d = Decide(c, Refresh(1'000'000), {.found = true, .tier = v1::TIER_1}, std::nullopt, kNow);
  EXPECT_FALSE(d.profile);
  EXPECT_EQ(d.skip_reason, "no_binding");
}

TEST(PolicyTest, Tier1HighPriorityDueAlwaysProfilesButForTheRepeatGuard) {
  PolicyConfig c;
  for (auto priority : {v1::PRIORITY_HIGH, v1::PRIORITY_CRITICAL}) {
    auto d = Decide(c, Due(v1::PROFILE_REASON_SCHEDULE, priority), kBoundTier1, Ago(absl::Hours(11)), kNow);
    EXPECT_FALSE(d.profile) << v1::Priority_Name(priority);
    EXPECT_EQ(d.skip_reason, "cooldown");
    // Well within tier1's 7-day stale threshold, but high priority: profiles.
    EXPECT_TRUE(Decide(c, Due(v1::PROFILE_REASON_SCHEDULE, priority), kBoundTier1, Ago(absl::Hours(13)), kNow).profile);
  }
  EXPECT_TRUE(Decide(c, Due(), kBoundTier1, std::nullopt, kNow).profile);
  c.cooldown = absl::Hours(1);
  EXPECT_TRUE(Decide(c, Due(), kBoundTier1, Ago(absl::Hours(2)), kNow).profile);
}

TEST(PolicyTest, OtherDueEventsProfileOnceStalePerTier) {
  PolicyConfig c;
  const std::pair<v1::Tier, int> stale_days[] = {
      {v1::TIER_1, 7}, {v1::TIER_2, 14}, {v1::TIER_3, 30}, {v1::TIER_4, 90}, {v1::TIER_5, 90}};
  for (auto [tier, days] : stale_days) {
    // tier1 only when not HIGH/CRITICAL; every other tier whatever its priority.
    for (auto priority : {v1::PRIORITY_NORMAL, v1::PRIORITY_LOW, v1::PRIORITY_HIGH}) {
      if (tier == v1::TIER_1 && priority == v1::PRIORITY_HIGH) continue;
      const auto due = Due(v1::PROFILE_REASON_SCHEDULE, priority);
      auto d = Decide(c, due, Bound(tier), Ago(absl::Hours(24 * days - 1)), kNow);
      EXPECT_FALSE(d.profile) << v1::Tier_Name(tier);
      EXPECT_EQ(d.skip_reason, "not_stale") << v1::Tier_Name(tier);
      EXPECT_THAT(d.detail, HasSubstr(absl::StrCat("stale after ", days, " days")));
      EXPECT_TRUE(Decide(c, due, Bound(tier), Ago(absl::Hours(24 * days)), kNow).profile) << v1::Tier_Name(tier);
    }
  }
  c.stale = *ParseStaleDays("1,2,3,4,5");
  EXPECT_TRUE(Decide(c, Due(v1::PROFILE_REASON_SCHEDULE, v1::PRIORITY_NORMAL), Bound(v1::TIER_5),
                     Ago(absl::Hours(24 * 5)), kNow)
                  .profile);
  EXPECT_EQ(Decide(c, Due(v1::PROFILE_REASON_SCHEDULE, v1::PRIORITY_NORMAL), Bound(v1::TIER_5),
                   Ago(absl::Hours(24 * 4)), kNow)
                .skip_reason,
            "not_stale");
}

TEST(PolicyTest, QualityDropAndManualAlwaysProfile) {
  PolicyConfig c;
  for (auto reason : {v1::PROFILE_REASON_QUALITY_DROP, v1::PROFILE_REASON_MANUAL})
    for (auto tier : {v1::TIER_1, v1::TIER_3, v1::TIER_5})
      EXPECT_TRUE(Decide(c, Due(reason, v1::PRIORITY_LOW), Bound(tier), Ago(absl::Minutes(1)), kNow).profile);
}

TEST(PolicyTest, APublishingTriggersRequestNeverBypassesTheCooldown) {
  PolicyConfig c;
  for (auto reason : {v1::PROFILE_REASON_QUALITY_DROP, v1::PROFILE_REASON_MANUAL}) {
    Trigger derived = Due(reason, v1::PRIORITY_HIGH);
    derived.derived = true;
    // Right after a profile (what a trigger on metadata.profile.completed would answer).
    EXPECT_EQ(Decide(c, derived, kBoundTier1, Ago(absl::Minutes(1)), kNow).skip_reason, "cooldown");
    derived.priority = v1::PRIORITY_LOW;
    EXPECT_EQ(Decide(c, derived, Bound(v1::TIER_3), Ago(absl::Minutes(1)), kNow).skip_reason, "not_stale");
    EXPECT_TRUE(Decide(c, derived, kBoundTier1, Ago(absl::Hours(24 * 30)), kNow).profile) << "once stale anyway";
  }
}

TEST(PolicyTest, AChangedDefinitionAlwaysProfilesTheCooldownGuardsOnlyRepeats) {
  PolicyConfig c;
  // The same definition as the last profile, a minute ago: a repeated trigger.
  EXPECT_EQ(Decide(c, kApproved, kBoundTier1, Ago(absl::Minutes(1)), kNow).skip_reason, "cooldown");
  EXPECT_EQ(Decide(c, Due(), kBoundTier1, Ago(absl::Minutes(1)), kNow).skip_reason, "cooldown");
  EXPECT_EQ(
      Decide(c, Due(v1::PROFILE_REASON_SCHEDULE, v1::PRIORITY_NORMAL), Bound(v1::TIER_2), Ago(absl::Minutes(1)), kNow)
          .skip_reason,
      "not_stale");
  // The binding or the column rules changed since: structural, whatever the trigger.
  for (const Trigger& t : {kApproved, Due(), Due(v1::PROFILE_REASON_SCHEDULE, v1::PRIORITY_NORMAL)}) {
    auto d = Decide(c, t, kBoundTier1, Ago(absl::Minutes(1), 1000, "def-0"), kNow);
    EXPECT_TRUE(d.profile);
    EXPECT_THAT(d.detail, HasSubstr("changed"));
  }
  // A profile stored before definitions were recorded counts as another definition.
  EXPECT_TRUE(Decide(c, kApproved, kBoundTier1, Ago(absl::Minutes(1), 1000, ""), kNow).profile);
}

TEST(PolicyTest, DataRefreshedProfilesWhenNeverProfiledStaleOrMoreThanTenPercentChanged) {
  PolicyConfig c;
  auto refresh = [&](std::optional<LastProfile> last, int64_t rows) {
    return Decide(c, Refresh(rows), kBoundTier1, last, kNow);
  };
  EXPECT_TRUE(refresh(std::nullopt, 0).profile);
  EXPECT_TRUE(refresh(Ago(absl::Hours(25)), 1).profile);
  EXPECT_TRUE(refresh(Ago(absl::Minutes(5), 1000), 101).profile);  // no cooldown for refreshes
  auto d = refresh(Ago(absl::Hours(23), 1000), 100);               // exactly 10%: not more
  EXPECT_FALSE(d.profile);
  EXPECT_EQ(d.skip_reason, "refresh_below_threshold");
  EXPECT_TRUE(refresh(Ago(absl::Hours(1), 0), 1).profile);  // an empty table that got rows
}

TEST(PolicyTest, ApprovalsProfileTier1AndTier2AndStructuralChangesOfAnyTier) {
  PolicyConfig c;
  for (auto tier : {v1::TIER_1, v1::TIER_2}) EXPECT_TRUE(Decide(c, kApproved, Bound(tier), std::nullopt, kNow).profile);
  for (auto tier : {v1::TIER_3, v1::TIER_4, v1::TIER_5}) {
    // The same definition as the last profile, however old: the scheduler covers it.
    auto same = Decide(c, kApproved, Bound(tier), Ago(absl::Hours(24 * 400), 1000, "def-1"), kNow);
    EXPECT_FALSE(same.profile);
    EXPECT_EQ(same.skip_reason, "tier_not_eligible");
    // Never profiled: left to the scheduler too.
    EXPECT_EQ(Decide(c, kApproved, Bound(tier), std::nullopt, kNow).skip_reason, "tier_not_eligible");
    // A changed binding or column rules (even a minute after the last profile) profiles.
    auto changed = Decide(c, kApproved, Bound(tier), Ago(absl::Minutes(1), 1000, "def-0"), kNow);
    EXPECT_TRUE(changed.profile) << changed.detail;
    EXPECT_THAT(changed.detail, HasSubstr("changed"));
  }
}

TEST(PolicyTest, StaleDaysParsingNamesTheBadTier) {
  auto ok = ParseStaleDays("7,14,30,90,90");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)[1], absl::Hours(24 * 14));
  EXPECT_THAT(std::string(ParseStaleDays("7,14,30").status().message()), HasSubstr("five"));
  EXPECT_THAT(std::string(ParseStaleDays("7,14,x,90,90").status().message()), HasSubstr("tier3"));
  EXPECT_THAT(std::string(ParseStaleDays("7,0,30,90,90").status().message()), HasSubstr("tier2"));
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
  // A short allowed-values list is padded with its last value, so PostgreSQL hashes it.
  EXPECT_EQ(*plan->params[2], R"({"1\"}","2","2","2","2","2","2","2","2"})");
}

TEST(ProfilePlanTest, AllowedValuesPaddedToTheHashedLengthOnlyWhenShort) {
  auto values = [](const std::string& list) {
    auto rules = ParseColumnRules(R"([{"column":"email","allowed_values":)" + list + "}]");
    EXPECT_TRUE(rules.ok()) << rules.status();
    auto plan = BuildProfilePlan("t", kColumns, *rules, Quote);
    EXPECT_TRUE(plan.ok()) << plan.status();
    return plan.ok() && plan->params.size() == 1 ? plan->params[0].value_or("") : std::string("?");
  };
  EXPECT_EQ(values("[]"), "{}");  // nothing to pad with: no value is allowed
  EXPECT_EQ(values(R"(["a"])"), R"({"a","a","a","a","a","a","a","a","a"})");
  EXPECT_EQ(values(R"(["1","2","3","4","5","6","7","8","9"])"), R"({"1","2","3","4","5","6","7","8","9"})");
  EXPECT_EQ(values(R"(["1","2","3","4","5","6","7","8","9","10"])"), R"({"1","2","3","4","5","6","7","8","9","10"})");
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
