// Unit tests of the scheduler's pure parts. Against PostgreSQL: tests/profiler_kafkatest.cc.
#include "producers/scheduler/scheduler.h"

#include <absl/strings/str_cat.h>
#include <gtest/gtest.h>

#include <map>

#include "contracts/envelope.h"

namespace sluice::scheduler {
namespace {

const absl::Duration kPeriod = absl::Minutes(15);  // how often the scheduler runs

TEST(SchedulerTest, WindowsAreAlignedAndStableWithinACadence) {
  const absl::Duration day = absl::Hours(24);
  const absl::Time t = absl::FromUnixSeconds(1'800'000'000);  // 2027-01-15T08:00:00Z
  EXPECT_EQ(WindowStart(t, day), absl::FromUnixSeconds(1'800'000'000 - 1'800'000'000 % 86400));
  EXPECT_EQ(WindowStart(t, day), WindowStart(t + absl::Hours(15), day));
  EXPECT_NE(WindowStart(t, day), WindowStart(t + absl::Hours(16), day));
}

TEST(SchedulerTest, EventIdsAreDerivedUuidsThatDifferPerEntityTierAndWindow) {
  const absl::Time w = absl::FromUnixSeconds(1'799'971'200);
  const std::string id = DueEventId("acme", "0190a0c2-0000-7000-8000-000000000001", v1::TIER_1, w);
  EXPECT_TRUE(contracts::IsUuid(id)) << id;
  EXPECT_EQ(id[14], '8');  // version 8
  EXPECT_EQ(id, DueEventId("acme", "0190a0c2-0000-7000-8000-000000000001", v1::TIER_1, w));
  EXPECT_NE(id, DueEventId("acme2", "0190a0c2-0000-7000-8000-000000000001", v1::TIER_1, w));
  EXPECT_NE(id, DueEventId("acme", "0190a0c2-0000-7000-8000-000000000002", v1::TIER_1, w));
  EXPECT_NE(id, DueEventId("acme", "0190a0c2-0000-7000-8000-000000000001", v1::TIER_2, w));
  EXPECT_NE(id, DueEventId("acme", "0190a0c2-0000-7000-8000-000000000001", v1::TIER_1, w + absl::Hours(24)));
}

TEST(SchedulerTest, Tier1IsHighThenCriticalAfterTenDaysOthersNormal) {
  SchedulerConfig c;
  EXPECT_EQ(PriorityFor(v1::TIER_1, absl::Hours(25), c), v1::PRIORITY_HIGH);
  EXPECT_EQ(PriorityFor(v1::TIER_1, absl::Hours(24 * 10 - 1), c), v1::PRIORITY_HIGH);
  EXPECT_EQ(PriorityFor(v1::TIER_1, absl::Hours(24 * 10), c), v1::PRIORITY_CRITICAL);
  EXPECT_EQ(PriorityFor(v1::TIER_2, absl::Hours(24 * 30), c), v1::PRIORITY_NORMAL);
  EXPECT_EQ(PriorityFor(v1::TIER_3, absl::Hours(24 * 30), c), v1::PRIORITY_NORMAL);
}

TEST(SchedulerTest, WindowsParseAndNameWhatIsWrong) {
  auto w = ParseWindow("02:00/4h");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->start, absl::Hours(2));
  EXPECT_EQ(w->length, absl::Hours(4));
  auto t = ParseTenantWindow("acme=22:30/90m");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->first, "acme");
  EXPECT_EQ(t->second.start, absl::Hours(22) + absl::Minutes(30));
  EXPECT_EQ(t->second.length, absl::Minutes(90));
  for (const char* bad : {"2:00/4h", "24:00/4h", "02:60/4h", "02:00", "02:00/0s", "02:00/25h", "02:00/x", "0200/4h"})
    EXPECT_FALSE(ParseWindow(bad).ok()) << bad;
  EXPECT_FALSE(ParseTenantWindow("=02:00/4h").ok());
  EXPECT_FALSE(ParseTenantWindow("acme").ok());
  EXPECT_NE(std::string(ParseTenantWindow("acme=02:00/25h").status().message()).find("acme"), std::string::npos);
}

TEST(SchedulerTest, NormalPriorityWaitsForItsSlotInTheWindowHighAndCriticalDoNot) {
  const OffPeakWindow w{.start = absl::Hours(2), .length = absl::Hours(4)};
  const absl::Time midnight = absl::FromUnixSeconds(1'799'971'200);  // 2027-01-15T00:00:00Z
  const absl::Time noon = midnight + absl::Hours(12);
  EXPECT_EQ(SlotStart(noon, w), midnight + absl::Hours(2));
  EXPECT_EQ(SlotStart(midnight + absl::Hours(1), w), midnight - absl::Hours(22));
  for (auto p : {v1::PRIORITY_HIGH, v1::PRIORITY_CRITICAL}) {
    EXPECT_EQ(EmitAt(noon, p, "acme", "e1", w, kPeriod), noon);
  }
  // At noon the window is closed: NORMAL and LOW wait for tomorrow's slot.
  const absl::Duration off = SpreadOffset("acme", "e1", w, kPeriod);
  for (auto p : {v1::PRIORITY_NORMAL, v1::PRIORITY_LOW}) {
    EXPECT_EQ(EmitAt(noon, p, "acme", "e1", w, kPeriod), midnight + absl::Hours(26) + off);
  }
  // Inside the window: before the entity's offset it waits, from it on it goes.
  const absl::Time slot = midnight + absl::Hours(2) + off;
  EXPECT_EQ(EmitAt(slot, v1::PRIORITY_NORMAL, "acme", "e1", w, kPeriod), slot);
  EXPECT_EQ(EmitAt(midnight + absl::Hours(6) - absl::Seconds(1), v1::PRIORITY_NORMAL, "acme", "e1", w, kPeriod),
            midnight + absl::Hours(6) - absl::Seconds(1));
  if (off > absl::ZeroDuration()) {
    EXPECT_EQ(EmitAt(slot - absl::Seconds(1), v1::PRIORITY_NORMAL, "acme", "e1", w, kPeriod), slot);
  }
  // Closed again at the end of the window.
  EXPECT_EQ(EmitAt(midnight + absl::Hours(6), v1::PRIORITY_NORMAL, "acme", "e1", w, kPeriod), slot + absl::Hours(24));
}

TEST(SchedulerTest, OffsetsSpreadEntitiesOverTheWindow) {
  const OffPeakWindow w{.start = absl::Hours(2), .length = absl::Hours(4)};
  std::map<int64_t, int> per_hour;
  for (int i = 0; i < 400; ++i) {
    const absl::Duration off = SpreadOffset("acme", absl::StrCat("entity-", i), w, kPeriod);
    ASSERT_GE(off, absl::ZeroDuration());
    ASSERT_LT(off, w.length - kPeriod);                        // a run every kPeriod finds the slot open
    EXPECT_EQ(off, absl::Minutes(absl::ToInt64Minutes(off)));  // whole minutes
    per_hour[absl::ToInt64Hours(off)]++;
  }
  ASSERT_EQ(per_hour.size(), 4u);
  for (auto [hour, n] : per_hour) EXPECT_GT(n, 50) << "hour " << hour;  // 3h45m spread: about 107, 107, 107, 80
  EXPECT_EQ(SpreadOffset("acme", "e1", w, kPeriod), SpreadOffset("acme", "e1", w, kPeriod));
}

TEST(SchedulerTest, RunsEveryPeriodEmitEveryEntityInsideTheWindow) {
  const absl::Time midnight = absl::FromUnixSeconds(1'799'971'200);
  for (const OffPeakWindow w : {OffPeakWindow{.start = absl::Hours(2), .length = absl::Hours(4)},
                                OffPeakWindow{.start = absl::Hours(23), .length = absl::Minutes(90)}}) {
    for (const absl::Duration period : {absl::Minutes(15), absl::Hours(1)}) {
      // Runs at arbitrary phase: every `period` from 7 minutes past a slot's opening minus a period.
      for (int i = 0; i < 300; ++i) {
        const std::string id = absl::StrCat("entity-", i);
        bool emitted = false;
        const absl::Time opening = midnight + w.start;
        for (absl::Time t = opening - period + absl::Minutes(7); t < opening + w.length; t += period) {
          const absl::Time at = EmitAt(t, v1::PRIORITY_NORMAL, "acme", id, w, period);
          if (at == t) {
            emitted = true;
            EXPECT_GE(t, opening);
            EXPECT_LT(t, opening + w.length);
          }
        }
        EXPECT_TRUE(emitted) << id << " window " << w.length << " period " << period;
      }
    }
  }
}

TEST(SchedulerTest, EventIdsFollowTheWindowSoAStillDueEntityIsRetriedNextWindow) {
  const OffPeakWindow w{.start = absl::Hours(2), .length = absl::Hours(4)};
  const absl::Time midnight = absl::FromUnixSeconds(1'799'971'200);
  const absl::Duration two_weeks = absl::Hours(24 * 14);
  // Cadences of a day or more: one key per window opening, so one id a day.
  EXPECT_EQ(EmissionKey(midnight + absl::Hours(3), two_weeks, w), midnight + absl::Hours(2));
  EXPECT_EQ(EmissionKey(midnight + absl::Hours(25), two_weeks, w), midnight + absl::Hours(2));
  EXPECT_EQ(EmissionKey(midnight + absl::Hours(27), two_weeks, w), midnight + absl::Hours(26));
  // Shorter cadences keep their own windows.
  EXPECT_EQ(EmissionKey(midnight + absl::Minutes(90), absl::Hours(1), w), midnight + absl::Hours(1));
}

}  // namespace
}  // namespace sluice::scheduler
