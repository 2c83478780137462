#include "gateway/dedup.h"

#include <gtest/gtest.h>

#include "common/strings.h"

namespace sluice::gateway {
namespace {

v1::Delivery D(int64_t offset) {
  v1::Delivery d;
  d.set_event_id("e");
  d.set_topic("t");
  d.set_offset(offset);
  return d;
}

TEST(DedupWindow, SecondPublishGetsTheFirstDeliveryMarkedDuplicate) {
  DedupWindow w(absl::Minutes(10), 100);
  int starts = 0;
  auto start = [&](DedupWindow::Done done) {
    ++starts;
    done(D(42));
  };
  absl::StatusOr<v1::Delivery> first, second;
  w.Publish("e", start, [&](auto r) { first = r; });
  w.Publish("e", start, [&](auto r) { second = r; });
  EXPECT_EQ(starts, 1);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_FALSE(first->duplicate());
  EXPECT_TRUE(second->duplicate());
  EXPECT_EQ(second->offset(), 42);
}

TEST(DedupWindow, InFlightDuplicateWaitsAndFailuresAreForgotten) {
  DedupWindow w(absl::Minutes(10), 100);
  DedupWindow::Done pending;
  int starts = 0;
  auto start = [&](DedupWindow::Done done) {
    ++starts;
    pending = std::move(done);
  };
  std::vector<absl::StatusOr<v1::Delivery>> got;
  w.Publish("e", start, [&](auto r) { got.push_back(r); });
  w.Publish("e", start, [&](auto r) { got.push_back(r); });
  EXPECT_EQ(starts, 1);
  EXPECT_TRUE(got.empty());
  pending(absl::UnavailableError("broker down"));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(got[1].status().code(), absl::StatusCode::kUnavailable);
  // Failed: not remembered, so a retry publishes.
  w.Publish("e", start, [&](auto r) { got.push_back(r); });
  EXPECT_EQ(starts, 2);
  pending(D(7));
  EXPECT_FALSE(got.back()->duplicate());
}

TEST(DedupWindow, ForgetsAfterTheWindowAndBeyondCapacity) {
  DedupWindow w(absl::Seconds(60), 2);
  int starts = 0;
  auto start = [&](DedupWindow::Done done) { done(D(++starts)); };
  absl::Time t = absl::FromUnixSeconds(1000);
  auto ignore = [](auto) {};
  w.Publish("a", start, ignore, t);
  w.Publish("a", start, ignore, t + absl::Seconds(59));
  EXPECT_EQ(starts, 1);
  w.Publish("a", start, ignore, t + absl::Seconds(61));  // window passed
  EXPECT_EQ(starts, 2);
  w.Publish("b", start, ignore, t + absl::Seconds(62));
  w.Publish("c", start, ignore, t + absl::Seconds(62));
  w.Publish("d", start, ignore, t + absl::Seconds(62));
  EXPECT_LE(w.size(), 3u);
}

TEST(DedupWindow, ShardedWindowStillFindsEveryIdAndBoundsItsSize) {
  constexpr size_t kCapacity = 8192;  // sharded (>= kMinShardedCapacity)
  DedupWindow w(absl::Minutes(10), kCapacity);
  int starts = 0;
  auto start = [&](DedupWindow::Done done) { done(D(++starts)); };
  const absl::Time t = absl::FromUnixSeconds(1000);
  int duplicates = 0;
  auto count = [&](absl::StatusOr<v1::Delivery> d) { duplicates += d.ok() && d->duplicate(); };
  for (int i = 0; i < 1000; ++i) w.Publish(common::Cat("id-", i), start, count, t);
  for (int i = 0; i < 1000; ++i) w.Publish(common::Cat("id-", i), start, count, t);
  EXPECT_EQ(starts, 1000);
  EXPECT_EQ(duplicates, 1000);
  // Far past the capacity: each shard forgets its oldest, the total stays near the capacity.
  for (int i = 0; i < 50000; ++i) w.Publish(common::Cat("more-", i), start, count, t);
  EXPECT_LE(w.size(), kCapacity + DedupWindow::kShards);
  EXPECT_GE(w.size(), kCapacity - DedupWindow::kShards * 64);
}

}  // namespace
}  // namespace sluice::gateway
