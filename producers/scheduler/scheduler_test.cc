// Unit tests of the scheduler's pure parts. Against PostgreSQL: tests/profiler_kafkatest.cc.
#include "producers/scheduler/scheduler.h"

#include <gtest/gtest.h>

#include "contracts/envelope.h"

namespace sluice::scheduler {
namespace {

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

}  // namespace
}  // namespace sluice::scheduler
