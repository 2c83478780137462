// Batched publishing through sluice-gateway (PublishBatch, and PublishStream messages with
// several envelopes) over real gRPC against the real local broker: per-event results in
// request order, the batch and message limits, and events (not messages) counted against
// a stream's in-flight bound.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <map>
#include <set>

#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "kafka/util.h"
#include "tests/gateway_fixture.h"

namespace sluice {
namespace {

using contracts::testing::Golden;
using ::testing::HasSubstr;
using testing::ViolationField;

constexpr size_t kMaxBatch = 8;
constexpr size_t kInFlight = 4;
constexpr int kMaxMessageBytes = 8 * 1024;

// A valid data.refreshed event of tenant-acme from etl.pipeline with a fresh id.
v1::Envelope Valid() {
  v1::Envelope e = Golden("data.refreshed");
  e.set_id(contracts::NewUuidV7());
  return e;
}

class GatewayBatch : public testing::GatewayTest {
 protected:
  void SetUp() override {
    config_overrides_ = [](gateway::GatewayConfig& c) {
      c.max_batch_events = kMaxBatch;
      c.max_in_flight_per_stream = kInFlight;
      c.max_message_bytes = kMaxMessageBytes;
    };
    testing::GatewayTest::SetUp();
  }

  grpc::Status Batch(const std::vector<v1::Envelope>& events, v1::PublishBatchResponse* resp,
                     const char* token = testing::kTokenEtl) {
    v1::PublishBatchRequest req;
    for (const auto& e : events) *req.add_envelopes() = e;
    auto ctx = Ctx(token);
    return events_->PublishBatch(ctx.get(), req, resp);
  }

  std::string Topic() const { return catalog_->Find("data.refreshed")->topic; }

  // Records in the data.refreshed topic: the sum of its partitions' end offsets.
  int64_t EndOffsets() {
    auto conf = kafka::MakeConf({{"bootstrap.servers", bootstrap_}});
    EXPECT_TRUE(conf.ok());
    char err[256];
    kafka::KafkaHandle rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf->release(), err, sizeof(err)));
    EXPECT_TRUE(rk) << err;
    int64_t sum = 0;
    for (int p = 0; p < catalog_->Find("data.refreshed")->partitions; ++p) {
      int64_t low = 0, high = 0;
      EXPECT_TRUE(kafka::QueryWatermarks(rk.get(), Topic(), p, low, high).ok());
      sum += high;
    }
    return sum;
  }
};

TEST_F(GatewayBatch, EachEventGetsItsOwnResultInRequestOrderAndOnlyValidOnesLand) {
  // Published before the batch: its id in the batch is a duplicate.
  v1::Envelope earlier = Valid();
  v1::PublishRequest one;
  *one.mutable_envelope() = earlier;
  v1::PublishResponse first;
  auto ctx = Ctx(testing::kTokenEtl);
  ASSERT_TRUE(events_->Publish(ctx.get(), one, &first).ok());

  v1::Envelope a = Valid();
  v1::Envelope invalid = Valid();
  invalid.mutable_data_refreshed()->clear_entity_urn();
  v1::Envelope forbidden = Valid();
  forbidden.set_source("kernel.scheduler");  // the etl token may publish from etl.pipeline only
  v1::Envelope other_tenant = Valid();
  other_tenant.set_tenant_id("tenant-b");
  v1::Envelope b = Valid();
  v1::Envelope unknown_type = Valid();
  unknown_type.set_type("data.exploded");
  const std::vector<v1::Envelope> batch = {a, invalid, forbidden, b, earlier, b, unknown_type, other_tenant};
  ASSERT_EQ(batch.size(), kMaxBatch);  // a full batch is accepted

  v1::PublishBatchResponse resp;
  grpc::Status s = Batch(batch, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.results_size(), static_cast<int>(batch.size()));

  ASSERT_TRUE(resp.results(0).has_ack()) << resp.results(0).DebugString();
  EXPECT_EQ(resp.results(0).ack().event_id(), a.id());
  EXPECT_EQ(resp.results(0).ack().topic(), Topic());
  EXPECT_FALSE(resp.results(0).ack().duplicate());

  ASSERT_TRUE(resp.results(1).has_error());
  EXPECT_EQ(resp.results(1).error().code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(resp.results(1).error().field(), "data_refreshed.entity_urn");

  ASSERT_TRUE(resp.results(2).has_error());
  EXPECT_EQ(resp.results(2).error().code(), grpc::PERMISSION_DENIED);

  ASSERT_TRUE(resp.results(3).has_ack());
  EXPECT_EQ(resp.results(3).ack().event_id(), b.id());
  EXPECT_FALSE(resp.results(3).ack().duplicate());

  // Already published: the first delivery, not written again.
  ASSERT_TRUE(resp.results(4).has_ack());
  EXPECT_TRUE(resp.results(4).ack().duplicate());
  EXPECT_EQ(resp.results(4).ack().offset(), first.delivery().offset());
  EXPECT_EQ(resp.results(4).ack().partition(), first.delivery().partition());

  // The same id twice in one batch: the second waits for the first and is its duplicate.
  ASSERT_TRUE(resp.results(5).has_ack());
  EXPECT_TRUE(resp.results(5).ack().duplicate());
  EXPECT_EQ(resp.results(5).ack().offset(), resp.results(3).ack().offset());

  ASSERT_TRUE(resp.results(6).has_error());
  EXPECT_EQ(resp.results(6).error().code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(resp.results(6).error().field(), "type");

  ASSERT_TRUE(resp.results(7).has_error());
  EXPECT_EQ(resp.results(7).error().code(), grpc::PERMISSION_DENIED);

  // Kafka holds the earlier event, a and b, once each, with their acknowledged offsets.
  auto records = ReadTopic(Topic(), 3);
  std::map<std::string, int64_t> offset_by_id;
  for (const auto& r : records) offset_by_id[r.envelope.id()] = r.offset;
  EXPECT_EQ(records.size(), 3u);
  EXPECT_EQ(offset_by_id, (std::map<std::string, int64_t>{{earlier.id(), first.delivery().offset()},
                                                          {a.id(), resp.results(0).ack().offset()},
                                                          {b.id(), resp.results(3).ack().offset()}}));
}

TEST_F(GatewayBatch, RefusesEmptyAndOverLimitBatchesWholeWithNothingPublished) {
  const int64_t before = EndOffsets();

  v1::PublishBatchResponse resp;
  grpc::Status s = Batch({}, &resp);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "envelopes: empty");
  EXPECT_EQ(ViolationField(s), "envelopes");

  std::vector<v1::Envelope> over;
  for (size_t i = 0; i < kMaxBatch + 1; ++i) over.push_back(Valid());
  s = Batch(over, &resp);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("9 events, more than the limit of 8"));
  EXPECT_THAT(s.error_message(), HasSubstr("--max-batch-events"));
  EXPECT_EQ(ViolationField(s), "envelopes");
  EXPECT_EQ(resp.results_size(), 0);

  // Valid events, but the request is larger than --max-message-bytes: gRPC refuses it unread.
  std::vector<v1::Envelope> large;
  for (size_t i = 0; i < kMaxBatch; ++i) {
    v1::Envelope e = Valid();
    (*e.mutable_metadata())["note.a"] = std::string(900, 'a');
    (*e.mutable_metadata())["note.b"] = std::string(900, 'b');
    large.push_back(std::move(e));
  }
  s = Batch(large, &resp);
  EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED) << s.error_message();

  // A marker event, acknowledged: had anything of the above been produced, the gateway's
  // producer would have sent it before (or with) the marker.
  v1::PublishBatchResponse marker;
  ASSERT_TRUE(Batch({Valid()}, &marker).ok());
  ASSERT_TRUE(marker.results(0).has_ack()) << marker.DebugString();
  EXPECT_EQ(EndOffsets(), before + 1);
}

TEST_F(GatewayBatch, StreamMessagesWithEnvelopesGetResultsAndBadMessagesDoNotEndTheStream) {
  auto ctx = Ctx(testing::kTokenEtl);
  auto stream = events_->PublishStream(ctx.get());
  auto send = [&](uint64_t seq, std::vector<v1::Envelope> many, const v1::Envelope* single = nullptr) {
    v1::PublishStreamRequest req;
    req.set_sequence(seq);
    for (auto& e : many) *req.add_envelopes() = std::move(e);
    if (single != nullptr) *req.mutable_envelope() = *single;
    ASSERT_TRUE(stream->Write(req));
  };
  v1::Envelope bad = Valid();
  bad.mutable_data_refreshed()->clear_entity_urn();
  const v1::Envelope lone = Valid();
  std::vector<v1::Envelope> full, too_many_in_flight, over_batch;
  for (size_t i = 0; i < kInFlight; ++i) full.push_back(Valid());
  for (size_t i = 0; i < kInFlight + 1; ++i) too_many_in_flight.push_back(Valid());
  for (size_t i = 0; i < kMaxBatch + 1; ++i) over_batch.push_back(Valid());
  const std::vector<v1::Envelope> mixed = {Valid(), bad, Valid()};

  send(1, mixed);
  send(2, {Valid()}, &lone);    // envelope and envelopes both set
  send(3, too_many_in_flight);  // more than the stream may have in flight: refused, no deadlock
  send(4, {}, &lone);           // a single envelope, as before
  send(5, full);                // exactly the in-flight bound
  send(6, over_batch);          // over --max-batch-events
  send(7, {Valid(), Valid()}, nullptr);
  ASSERT_TRUE(stream->WritesDone());

  std::map<uint64_t, v1::PublishStreamResponse> got;
  v1::PublishStreamResponse r;
  while (stream->Read(&r)) EXPECT_TRUE(got.emplace(r.sequence(), r).second) << "answered twice: " << r.sequence();
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(got.size(), 7u);

  ASSERT_EQ(got[1].results_size(), 3);
  EXPECT_FALSE(got[1].has_ack() || got[1].has_error());
  ASSERT_TRUE(got[1].results(0).has_ack());
  EXPECT_EQ(got[1].results(0).ack().event_id(), mixed[0].id());
  ASSERT_TRUE(got[1].results(1).has_error());
  EXPECT_EQ(got[1].results(1).error().code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(got[1].results(1).error().field(), "data_refreshed.entity_urn");
  ASSERT_TRUE(got[1].results(2).has_ack());
  EXPECT_EQ(got[1].results(2).ack().event_id(), mixed[2].id());

  ASSERT_TRUE(got[2].has_error());
  EXPECT_EQ(got[2].error().code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(got[2].error().field(), "envelopes");
  EXPECT_EQ(got[2].results_size(), 0);

  ASSERT_TRUE(got[3].has_error());
  EXPECT_EQ(got[3].error().code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(got[3].error().message(), HasSubstr("--max-in-flight-per-stream"));
  EXPECT_EQ(got[3].results_size(), 0);

  ASSERT_TRUE(got[4].has_ack()) << got[4].DebugString();
  EXPECT_EQ(got[4].ack().event_id(), lone.id());
  EXPECT_EQ(got[4].results_size(), 0);

  ASSERT_EQ(got[5].results_size(), static_cast<int>(kInFlight));
  for (size_t i = 0; i < kInFlight; ++i) {
    ASSERT_TRUE(got[5].results(static_cast<int>(i)).has_ack()) << got[5].DebugString();
    EXPECT_EQ(got[5].results(static_cast<int>(i)).ack().event_id(), full[i].id());
  }

  ASSERT_TRUE(got[6].has_error());
  EXPECT_EQ(got[6].error().code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(got[6].error().message(), HasSubstr("--max-batch-events"));

  ASSERT_EQ(got[7].results_size(), 2);
  EXPECT_TRUE(got[7].results(0).has_ack() && got[7].results(1).has_ack()) << got[7].DebugString();

  // 2 of message 1, the single event, 4 of message 5 and 2 of message 7; nothing of the
  // refused messages.
  std::set<std::string> want = {mixed[0].id(), mixed[2].id(), lone.id()};
  for (const auto& e : full) want.insert(e.id());
  for (int i = 0; i < 2; ++i) want.insert(got[7].results(i).ack().event_id());
  auto records = ReadTopic(Topic(), want.size());
  std::set<std::string> ids;
  for (const auto& rec : records) ids.insert(rec.envelope.id());
  EXPECT_EQ(records.size(), want.size());
  EXPECT_EQ(ids, want);
}

}  // namespace
}  // namespace sluice
