// Fault test: the broker is stopped in the middle of a PublishStream and started again.
// Every event the gateway acknowledged must be in Kafka afterwards, exactly once.
// Stops and starts the local broker with dev/kafka.sh, so it runs alone.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "tests/gateway_fixture.h"

namespace sluice {
namespace {

int Kafka(const std::string& verb) {
  std::string cmd = common::Cat("bash ", SLUICE_SOURCE_DIR, "/dev/kafka.sh ", verb, " >/dev/null 2>&1");
  return std::system(cmd.c_str());
}

// Starts the broker again however the test ends.
struct BrokerGuard {
  ~BrokerGuard() {
    if (stopped) Kafka("start");
  }
  bool stopped = false;
};

class GatewayFault : public testing::GatewayTest {
 protected:
  GatewayFault() {
    config_overrides_ = [](gateway::GatewayConfig& c) {
      c.delivery_timeout = absl::Seconds(60);  // rides out the outage
      c.max_in_flight_per_stream = 500;
    };
  }
};

TEST_F(GatewayFault, NothingAcknowledgedIsLostWhenTheBrokerStopsMidStream) {
  constexpr int kEvents = 3000;
  v1::Envelope base = contracts::testing::Golden("data.refreshed");
  auto ctx = Ctx(testing::kTokenA);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(240));
  auto stream = events_->PublishStream(ctx.get());

  std::mutex mu;
  std::map<uint64_t, std::string> ids;  // sequence -> event id
  std::set<std::string> acked;
  std::map<int, int> errors;  // code -> count
  std::atomic<int> answers{0};
  std::thread reader([&] {
    v1::PublishStreamResponse r;
    while (stream->Read(&r)) {
      std::lock_guard lock(mu);
      if (r.has_ack()) {
        acked.insert(r.ack().event_id());
      } else {
        ++errors[r.error().code()];
      }
      answers.fetch_add(1);
    }
  });

  BrokerGuard guard;
  int answers_at_stop = 0;
  std::thread fault([&] {
    while (answers.load() < 500) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    answers_at_stop = answers.load();
    guard.stopped = true;
    EXPECT_EQ(Kafka("stop"), 0);
    std::this_thread::sleep_for(std::chrono::seconds(3));
    EXPECT_EQ(Kafka("start"), 0);
    guard.stopped = false;
  });

  for (int i = 0; i < kEvents; ++i) {
    v1::PublishStreamRequest req;
    req.set_sequence(static_cast<uint64_t>(i));
    *req.mutable_envelope() = base;
    req.mutable_envelope()->set_id(contracts::NewUuidV7());
    {
      std::lock_guard lock(mu);
      ids[req.sequence()] = req.envelope().id();
    }
    ASSERT_TRUE(stream->Write(req)) << i;
    if (i < 1000) std::this_thread::sleep_for(std::chrono::microseconds(500));  // spread the first part out
  }
  stream->WritesDone();
  fault.join();
  reader.join();
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(answers.load(), kEvents);  // one answer per event, ack or error
  std::printf("broker stopped after %d answers; acked %zu of %d; errors by code:", answers_at_stop, acked.size(),
              kEvents);
  for (const auto& [code, n] : errors) std::printf(" %d=%d", code, n);
  std::printf("\n");
  EXPECT_GT(acked.size(), 500u);
  EXPECT_LT(answers_at_stop, kEvents / 2) << "the broker stopped too late to test anything";

  auto records = ReadTopic(catalog_->Find("data.refreshed")->topic, acked.size(), absl::Seconds(120));
  std::map<std::string, int> stored;
  for (const auto& r : records) ++stored[r.envelope.id()];
  size_t missing = 0, duplicated = 0;
  for (const auto& id : acked) {
    if (stored[id] == 0) ++missing;
    if (stored[id] > 1) ++duplicated;
  }
  EXPECT_EQ(missing, 0u) << "acknowledged but not in Kafka";
  EXPECT_EQ(duplicated, 0u) << "acknowledged and stored twice";
}

}  // namespace
}  // namespace sluice
