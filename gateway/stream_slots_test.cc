#include "gateway/stream_slots.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace sluice::gateway {
namespace {

using ::testing::HasSubstr;

TEST(StreamSlots, PerPrincipalCapNamesItselfAndLeavesOthersAlone) {
  StreamSlots slots(2, 10);
  auto a1 = slots.Acquire("a");
  auto a2 = slots.Acquire("a");
  ASSERT_TRUE(a1.ok() && a2.ok());
  auto a3 = slots.Acquire("a");
  EXPECT_EQ(a3.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(a3.status().message()), HasSubstr("--max-streams-per-principal"));
  EXPECT_THAT(std::string(a3.status().message()), HasSubstr("\"a\""));
  EXPECT_TRUE(slots.Acquire("b").ok());  // another principal is not affected
  EXPECT_EQ(slots.open("a"), 2u);
}

TEST(StreamSlots, GlobalCapNamesItself) {
  StreamSlots slots(5, 3);
  auto a = slots.Acquire("a");
  auto b = slots.Acquire("b");
  auto c = slots.Acquire("c");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  auto d = slots.Acquire("d");
  EXPECT_EQ(d.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("--max-streams)"));
  EXPECT_EQ(slots.open(), 3u);
}

TEST(StreamSlots, SlotsAreFreedWhenDestroyedOrMovedOver) {
  StreamSlots slots(1, 10);
  {
    auto a = slots.Acquire("a");
    ASSERT_TRUE(a.ok());
    EXPECT_FALSE(slots.Acquire("a").ok());
    StreamSlot moved = *std::move(a);  // a moved-from slot frees nothing
    EXPECT_EQ(slots.open("a"), 1u);
  }
  EXPECT_EQ(slots.open(), 0u);
  EXPECT_EQ(slots.open("a"), 0u);
  auto again = slots.Acquire("a");
  ASSERT_TRUE(again.ok());
  auto other = slots.Acquire("b");
  ASSERT_TRUE(other.ok());
  *again = *std::move(other);  // the slot of "a" is freed, the one of "b" kept
  EXPECT_EQ(slots.open("a"), 0u);
  EXPECT_EQ(slots.open("b"), 1u);
  EXPECT_EQ(slots.open(), 1u);
}

TEST(StreamSlots, ConcurrentAcquirersNeverExceedTheCap) {
  StreamSlots slots(1000, 7);
  std::atomic<int> granted{0}, max_seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        auto s = slots.Acquire(t % 2 ? "odd" : "even");
        if (!s.ok()) continue;
        int now = ++granted;
        int prev = max_seen.load();
        while (now > prev && !max_seen.compare_exchange_weak(prev, now)) {
        }
        --granted;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_LE(max_seen.load(), 7);
  EXPECT_EQ(slots.open(), 0u);
}

}  // namespace
}  // namespace sluice::gateway
