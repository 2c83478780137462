// Against the real local broker: when a batch fails and the consumer cannot rewind to
// it, the consumer stops with an error instead of reading on, so nothing past the failed
// batch is committed and a restarted member gets the batch again.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "contracts/test_util.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "tests/kafka_fixture.h"

namespace sluice {
namespace {

using contracts::testing::Golden;
using ::testing::HasSubstr;

class ConsumerRewind : public testing::KafkaTest {};

TEST_F(ConsumerRewind, AFailedRewindStopsTheConsumerBeforeAnythingPastTheBatchIsCommitted) {
  auto producer = kafka::Producer::Create({.bootstrap_servers = bootstrap_}, *catalog_);
  ASSERT_TRUE(producer.ok()) << producer.status();
  constexpr int kEvents = 30;
  std::set<std::string> all;
  for (int i = 0; i < kEvents; ++i) {
    v1::Envelope e = Golden("data.refreshed");
    e.clear_id();
    e.set_tenant_id(common::Cat("tenant-", i % 5));
    auto r = (*producer)->SendSync(e);
    ASSERT_TRUE(r.ok()) << r.status();
    all.insert(r->event_id);
  }
  const std::string topic = catalog_->Find("data.refreshed")->topic;

  std::set<std::string> failed_batch;
  int rewinds = 0, calls = 0;
  {
    auto a = kafka::Consumer::Create({.bootstrap_servers = bootstrap_,
                                      .group_id = Group("rewind"),
                                      .topics = {topic},
                                      .max_batch = 10,
                                      .retry_backoff = absl::Milliseconds(10),
                                      // The seek back to the failed batch fails (as it can when the broker or the
                                      // assignment is gone at that moment).
                                      .rewind_for_testing = [&](const rd_kafka_topic_partition_list_t& list) {
                                        ++rewinds;
                                        EXPECT_GT(list.cnt, 0);
                                        return absl::UnavailableError("injected seek failure");
                                      }});
    ASSERT_TRUE(a.ok()) << a.status();
    absl::Status run = (*a)->Run([&](const std::vector<kafka::Record>& batch) {
      if (++calls == 1) {
        for (const auto& r : batch) failed_batch.insert(r.envelope.id());
        return absl::UnavailableError("database down");
      }
      // Reading on past the failed batch is the defect; stop so the test ends either way.
      if (calls >= 3) (*a)->Stop();
      return absl::OkStatus();
    });
    EXPECT_FALSE(run.ok()) << "Run must end with an error when a failed batch cannot be rewound";
    EXPECT_THAT(run.message(), HasSubstr("could not be rewound"));
    EXPECT_THAT(run.message(), HasSubstr("injected seek failure"));
    EXPECT_EQ(calls, 1) << "no batch after the failed one was handled";
    EXPECT_EQ(rewinds, 1);
    // The consumer stays stopped: a later poll hands nothing over.
    auto again = (*a)->PollOnce([&](const std::vector<kafka::Record>&) {
      ++calls;
      return absl::OkStatus();
    });
    EXPECT_FALSE(again.ok());
    EXPECT_EQ(calls, 1);
    EXPECT_EQ((*a)->stats().delivered, 0u);
  }  // closes: commits what is pending (nothing) and leaves the group
  ASSERT_FALSE(failed_batch.empty());

  // A restarted member of the group starts from the last committed offset: every record,
  // the failed batch included.
  auto b = kafka::Consumer::Create({.bootstrap_servers = bootstrap_, .group_id = Group("rewind"), .topics = {topic}});
  ASSERT_TRUE(b.ok()) << b.status();
  std::set<std::string> got;
  for (int i = 0; i < 300 && got.size() < all.size(); ++i) {
    auto n = (*b)->PollOnce([&](const std::vector<kafka::Record>& batch) {
      for (const auto& r : batch) got.insert(r.envelope.id());
      return absl::OkStatus();
    });
    ASSERT_TRUE(n.ok()) << n.status();
  }
  for (const auto& id : failed_batch) EXPECT_TRUE(got.contains(id)) << id << " of the failed batch was skipped";
  EXPECT_EQ(got, all);
}

}  // namespace
}  // namespace sluice
