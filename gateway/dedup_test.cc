#include "gateway/dedup.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

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

TEST(DedupWindow, IdsWithTheSameHashAreNeverTakenForOneAnother) {
  // Every id hashes alike: the first keeps the index's place, the second is published as
  // its own event (and, having no place, is not deduplicated), never answered as the first.
  DedupWindow w(absl::Minutes(10), 100, [](std::string_view) -> size_t { return 7; });
  int starts = 0;
  auto start = [&](DedupWindow::Done done) { done(D(++starts)); };
  std::vector<absl::StatusOr<v1::Delivery>> got;
  auto keep = [&](absl::StatusOr<v1::Delivery> r) { got.push_back(std::move(r)); };
  w.Publish("a", start, keep);
  w.Publish("b", start, keep);
  w.Publish("a", start, keep);
  w.Publish("b", start, keep);
  EXPECT_EQ(starts, 3);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_FALSE(got[0]->duplicate());
  EXPECT_FALSE(got[1]->duplicate());
  EXPECT_EQ(got[1]->offset(), 2);
  EXPECT_TRUE(got[2]->duplicate());
  EXPECT_EQ(got[2]->offset(), 1);  // a's own first delivery, not b's
  EXPECT_FALSE(got[3]->duplicate());
  EXPECT_EQ(w.size(), 1u);
}

TEST(DedupWindow, AFailureAmongFinishedEntriesIsPassedOverAndForgotten) {
  DedupWindow w(absl::Seconds(60), 3);
  std::vector<DedupWindow::Done> pending;
  int starts = 0;
  auto start = [&](DedupWindow::Done done) {
    ++starts;
    pending.push_back(std::move(done));
  };
  const absl::Time t = absl::FromUnixSeconds(1000);
  auto ignore = [](auto) {};
  w.Publish("a", start, ignore, t);
  w.Publish("b", start, ignore, t);
  w.Publish("c", start, ignore, t);
  // Finished out of order: c, then b fails, then a (the oldest, in flight until now).
  pending[2](D(3));
  pending[1](absl::UnavailableError("broker down"));
  EXPECT_EQ(w.size(), 2u);
  pending[0](D(1));
  // b failed: published again; a and c are still remembered.
  absl::StatusOr<v1::Delivery> a, c;
  w.Publish(
      "a", start, [&](auto r) { a = r; }, t + absl::Seconds(1));
  w.Publish(
      "c", start, [&](auto r) { c = r; }, t + absl::Seconds(1));
  ASSERT_TRUE(a.ok() && c.ok());
  EXPECT_TRUE(a->duplicate() && c->duplicate());
  EXPECT_EQ(a->offset(), 1);
  EXPECT_EQ(c->offset(), 3);
  w.Publish("b", start, ignore, t + absl::Seconds(1));
  EXPECT_EQ(starts, 4);
  pending[3](D(4));
  // Past the window, every entry goes; new ids still get their own publication.
  for (int i = 0; i < 10; ++i) w.Publish(common::Cat("later-", i), start, ignore, t + absl::Seconds(120));
  EXPECT_EQ(starts, 14);
  for (size_t i = 4; i < pending.size(); ++i) pending[i](D(static_cast<int64_t>(i + 1)));
  // The next publish forgets the oldest down to the capacity; the newest is still there.
  absl::StatusOr<v1::Delivery> late;
  w.Publish(
      "later-9", start, [&](auto r) { late = r; }, t + absl::Seconds(121));
  ASSERT_TRUE(late.ok());
  EXPECT_TRUE(late->duplicate());
  EXPECT_EQ(late->offset(), 14);
  EXPECT_EQ(w.size(), 3u);
}

TEST(DedupWindow, ADuplicateGetsTheFirstDeliveryWhole) {
  // Short and long ids (kept in place or not, either side of the 80 bytes an entry holds),
  // event ids that end the id, do not, or are empty.
  DedupWindow w(absl::Minutes(10), 100);
  const std::string long_tenant(100, 't');
  const std::string id80 = std::string(76, 'a') + "/e-3", id81 = std::string(77, 'a') + "/e-4";
  for (const auto& c : std::vector<std::pair<std::string, std::string>>{
           {"tenant-a/e-1", "e-1"},
           {long_tenant + "/e-2", "e-2"},
           {"tenant-a/x", "other-id"},
           {long_tenant, "y"},
           {id80, "e-3"},
           {id81, "e-4"},
           {"tenant-a/z", ""},
           {long_tenant + "/" + std::string(300, 'z'), std::string(300, 'z')}}) {
    // Named copies, not a structured binding: clang 14 (the fuzz build) cannot capture one.
    const std::string id = c.first, event_id = c.second;
    auto start = [&](DedupWindow::Done done) {
      v1::Delivery d;
      d.set_event_id(event_id);
      d.set_topic("it-123.sluice.data");
      d.set_partition(5);
      d.set_offset(77);
      done(d);
    };
    absl::StatusOr<v1::Delivery> first, again;
    w.Publish(id, start, [&](auto r) { first = r; });
    w.Publish(id, start, [&](auto r) { again = r; });
    ASSERT_TRUE(first.ok() && again.ok()) << id;
    EXPECT_TRUE(again->duplicate()) << id;
    EXPECT_EQ(again->event_id(), event_id) << id;
    EXPECT_EQ(again->topic(), "it-123.sluice.data") << id;
    EXPECT_EQ(again->partition(), 5) << id;
    EXPECT_EQ(again->offset(), 77) << id;
  }
  EXPECT_EQ(w.size(), 8u);
}

TEST(DedupWindow, FailuresDuringAnOutageDoNotPileUpBehindARememberedId) {
  // A young remembered id at the front, then every publish fails (a broker outage): the
  // failed entries count toward the capacity, so what the window holds stays bounded.
  DedupWindow w(absl::Minutes(10), 3);
  const absl::Time t = absl::FromUnixSeconds(1000);
  w.Publish(
      "ok", [](DedupWindow::Done done) { done(D(1)); }, [](auto) {}, t);
  auto fail = [](DedupWindow::Done done) { done(absl::UnavailableError("broker down")); };
  for (int i = 0; i < 1000; ++i)
    w.Publish(
        common::Cat("retry-", i % 10), fail, [](auto) {}, t + absl::Seconds(1));
  EXPECT_LE(w.held(), 4u);
  EXPECT_EQ(w.size(), 0u);  // "ok" made room for them: the capacity bounds memory first
}

TEST(DedupWindow, AFailedIdWhoseHashAnotherSharesIsRememberedWhenRetried) {
  DedupWindow w(absl::Minutes(10), 100, [](std::string_view) -> size_t { return 7; });
  DedupWindow::Done pending_a;
  int starts = 0;
  auto hold = [&](DedupWindow::Done done) {
    ++starts;
    pending_a = std::move(done);
  };
  auto ok = [&](DedupWindow::Done done) { done(D(++starts * 10)); };
  std::vector<absl::StatusOr<v1::Delivery>> got;
  auto keep = [&](absl::StatusOr<v1::Delivery> r) { got.push_back(std::move(r)); };
  w.Publish("a", hold, keep);                        // indexed, in flight
  w.Publish("b", ok, keep);                          // same hash: published, not indexed
  pending_a(absl::UnavailableError("broker down"));  // a forgotten: its place is free
  w.Publish("a", ok, keep);                          // the retry takes the place
  w.Publish("a", ok, keep);                          // and is remembered
  ASSERT_EQ(got.size(), 4u);
  EXPECT_FALSE(got[2]->duplicate());
  EXPECT_TRUE(got[3]->duplicate());
  EXPECT_EQ(got[3]->offset(), got[2]->offset());
  EXPECT_EQ(starts, 3);
}

TEST(DedupWindow, PublishersAndADeliveryThreadTogether) {
  // Three publishing threads and one delivering thread (as in the gateway), ids repeated
  // across threads, a few deliveries failing: every publish is answered exactly once, and
  // every duplicate carries the delivery of a publish of its own id that was stored.
  DedupWindow w(absl::Minutes(10), 4096);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<std::string, DedupWindow::Done>> queued;
  bool stop = false;
  std::thread delivery([&] {
    int64_t n = 0;
    for (;;) {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return stop || !queued.empty(); });
      if (queued.empty()) return;
      auto [id, done] = std::move(queued.front());
      queued.pop_front();
      lock.unlock();
      if (++n % 97 == 0) {
        done(absl::UnavailableError("broker down"));
      } else {
        v1::Delivery d;
        d.set_event_id(id);
        d.set_topic("t");
        d.set_offset(n);
        done(d);
      }
    }
  });
  constexpr int kThreads = 3, kPerThread = 20000;
  std::atomic<int> answers{0}, failures{0};
  std::mutex first_mu;
  std::map<std::string, std::set<int64_t>> stored;  // id -> offsets of its stored publishes
  std::vector<std::pair<std::string, int64_t>> duplicates;
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = common::Cat("id-", (i * 7 + t * 13) % 3000);
        auto start = [&, id](DedupWindow::Done done) {
          {
            std::lock_guard lock(mu);
            queued.emplace_back(id, std::move(done));
          }
          cv.notify_one();
        };
        w.Publish(id, start, [&, id](absl::StatusOr<v1::Delivery> r) {
          ++answers;
          if (!r.ok()) {
            ++failures;
            return;
          }
          EXPECT_EQ(r->event_id(), id);
          std::lock_guard lock(first_mu);
          if (r->duplicate()) {
            duplicates.emplace_back(id, r->offset());
          } else {
            stored[id].insert(r->offset());
          }
        });
      }
    });
  }
  for (auto& p : publishers) p.join();
  {
    std::lock_guard lock(mu);
    stop = true;
  }
  cv.notify_one();
  delivery.join();
  EXPECT_EQ(answers.load(), kThreads * kPerThread);
  EXPECT_GT(failures.load(), 0);
  EXPECT_GT(duplicates.size(), 10000u);
  std::lock_guard lock(first_mu);
  for (const auto& [id, offset] : duplicates) EXPECT_TRUE(stored[id].contains(offset)) << id << " at " << offset;
}

}  // namespace
}  // namespace sluice::gateway
