#include "consumers/memory_bus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "contracts/test_util.h"
#include "producers/kafka_util.h"

namespace sluice::bus {
namespace {

using contracts::testing::Goldens;

// Collects what a subscription receives; fails the first `fail_first` batches.
struct Sink {
  std::mutex mu;
  std::vector<consumer::Record> got;
  std::atomic<int> calls{0};
  int fail_first = 0;
  consumer::BatchHandler Handler() {
    return [this](const std::vector<consumer::Record>& batch) {
      if (calls.fetch_add(1) < fail_first) return absl::UnavailableError("downstream unavailable");
      std::lock_guard lock(mu);
      got.insert(got.end(), batch.begin(), batch.end());
      return absl::OkStatus();
    };
  }
  size_t Size() {
    std::lock_guard lock(mu);
    return got.size();
  }
};

bool WaitFor(const std::function<bool()>& pred) {
  for (int i = 0; i < 400 && !pred(); ++i) absl::SleepFor(absl::Milliseconds(10));
  return pred();
}

TEST(InMemoryBus, RoutesPartitionsAndDeliversEveryType) {
  InMemoryBus bus;
  for (auto e : Goldens()) {
    auto r = bus.PublishSync(e);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->event_id, e.id());
    EXPECT_EQ(r->topic, contracts::Catalog::Default().Find(e.type())->topic);
    EXPECT_EQ(r->partition, kafka::PartitionForKey(e.tenant_id(), 12));
  }
  auto stored = bus.Records("sluice.approval");
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(stored[0].key, "tenant-acme");
  EXPECT_EQ(contracts::FindHeader(stored[0].headers, "ce_type"), stored[0].envelope.type());

  Sink sink;
  auto sub = bus.Subscribe({.group = "all"}, sink.Handler());
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(WaitFor([&] { return sink.Size() == 13; })) << sink.Size();
  std::set<std::string> types;
  for (const auto& r : sink.got) types.insert(r.envelope.type());
  EXPECT_EQ(types.size(), 13u);
}

TEST(InMemoryBus, FailedBatchIsRedeliveredAndCommittedOnlyAfterSuccess) {
  InMemoryBus bus;
  auto goldens = Goldens();
  for (const auto& e : goldens) ASSERT_TRUE(bus.PublishSync(e).ok());
  Sink sink;
  sink.fail_first = 2;
  const int32_t p = kafka::PartitionForKey("tenant-acme", 12);
  {
    auto sub = bus.Subscribe({.group = "g", .types = {"data.refreshed"}, .retry_backoff = absl::Milliseconds(5)},
                             sink.Handler());
    ASSERT_TRUE(sub.ok());
    ASSERT_TRUE(WaitFor([&] { return sink.Size() == 1; }));
    EXPECT_GE(sink.calls.load(), 3);
  }
  ASSERT_EQ(sink.got.size(), 1u);  // two failures, then exactly one delivery
  EXPECT_EQ(sink.got[0].envelope.type(), "data.refreshed");
  // Both records on sluice.data are past the committed offset: the other type was skipped.
  EXPECT_EQ(bus.Committed("g", "sluice.data", p), 2);
  EXPECT_EQ(bus.Committed("g", "sluice.profile", p), 0);  // not subscribed

  // A new subscription of the same group resumes after the commit: nothing again.
  Sink again;
  auto sub = bus.Subscribe({.group = "g", .types = {"data.refreshed"}}, again.Handler());
  ASSERT_TRUE(sub.ok());
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_EQ(again.Size(), 0u);
}

TEST(InMemoryBus, RejectsInvalidEnvelopesAndBadSubscriptions) {
  InMemoryBus bus;
  v1::Envelope e = Goldens().at(0);
  e.set_tenant_id("Not A Tenant");
  auto r = bus.PublishSync(e);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  for (const auto& t : contracts::Catalog::Default().topics()) EXPECT_TRUE(bus.Records(t.name()).empty());

  Sink sink;
  EXPECT_EQ(bus.Subscribe({.group = ""}, sink.Handler()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bus.Subscribe({.group = "g", .types = {"no.such"}}, sink.Handler()).status().message()),
              ::testing::HasSubstr("no.such"));
  auto a = bus.Subscribe({.group = "g"}, sink.Handler());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(bus.Subscribe({.group = "g"}, sink.Handler()).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace sluice::bus
