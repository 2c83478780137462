// Against the real local broker (dev/stack.sh up): the producer and consumer wrappers
// carry all 13 event types with their keys, headers and partitions intact, commit only
// what was handled, and surface delivery failures.
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <map>
#include <set>

#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "tests/kafka_fixture.h"

namespace sluice {
namespace kafka {

// Reaches the path a delivery report without an offset takes. librdkafka gives such a
// report only in races with the broker (see Producer), which no test can provoke on cue.
class ProducerTestPeer {
 public:
  static bool Unconfirmed(rd_kafka_resp_err_t err, int64_t offset) { return Producer::Unconfirmed(err, offset); }
  static void AcknowledgedWithoutOffset(Producer& p, EncodedRecord record, DeliveryCallback done, int times) {
    p.ResendForTest(std::move(record), std::move(done), times);
  }
  // What the destructor does before it purges what is left.
  static void StartClosing(Producer& p) {
    std::lock_guard lock(p.resend_mu_);
    p.closing_ = true;
  }
};

}  // namespace kafka
namespace {

using contracts::testing::Goldens;

using google::protobuf::util::MessageDifferencer;

class KafkaRoundTrip : public testing::KafkaTest {
 protected:
  std::unique_ptr<kafka::Producer> MakeProducer(absl::Duration delivery_timeout = absl::Seconds(30)) {
    auto p =
        kafka::Producer::Create({.bootstrap_servers = bootstrap_, .delivery_timeout = delivery_timeout}, *catalog_);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }
  std::unique_ptr<kafka::Consumer> MakeConsumer(std::string group, std::vector<std::string> topics,
                                                std::set<std::string> types = {}, size_t max_batch = 500) {
    auto c = kafka::Consumer::Create({.bootstrap_servers = bootstrap_,
                                      .group_id = Group(group),
                                      .topics = std::move(topics),
                                      .types = std::move(types),
                                      .max_batch = max_batch});
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }
  std::vector<std::string> AllTopics() const {
    std::vector<std::string> t;
    for (const auto& s : catalog_->topics()) t.push_back(s.name());
    return t;
  }
  // Polls until `want` records arrived or `timeout` passed.
  std::vector<kafka::Record> Collect(kafka::Consumer& c, size_t want, absl::Duration timeout = absl::Seconds(30)) {
    std::vector<kafka::Record> got;
    const absl::Time deadline = absl::Now() + timeout;
    while (got.size() < want && absl::Now() < deadline) {
      auto n = c.PollOnce([&](const std::vector<kafka::Record>& batch) {
        got.insert(got.end(), batch.begin(), batch.end());
        return absl::OkStatus();
      });
      EXPECT_TRUE(n.ok()) << n.status();
    }
    return got;
  }
};

TEST_F(KafkaRoundTrip, AllThirteenTypesArriveWithPayloadKeyHeadersAndMurmur2Partition) {
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  std::map<std::string, std::pair<v1::Envelope, kafka::DeliveryReport>> sent;
  int i = 0;
  for (v1::Envelope e : Goldens()) {
    e.set_tenant_id(common::Cat("tenant-", i++));  // spread over partitions
    auto report = producer->SendSync(e);
    ASSERT_TRUE(report.ok()) << e.type() << ": " << report.status();
    EXPECT_EQ(report->topic, catalog_->Find(e.type())->topic);
    sent[e.id()] = {e, *report};
  }
  ASSERT_EQ(sent.size(), 13u);

  auto consumer = MakeConsumer("all", AllTopics());
  ASSERT_NE(consumer, nullptr);
  auto got = Collect(*consumer, 13);
  ASSERT_EQ(got.size(), 13u);
  std::set<std::string> types;
  for (const auto& r : got) {
    auto it = sent.find(r.envelope.id());
    ASSERT_NE(it, sent.end()) << r.envelope.id();
    const auto& [want, report] = it->second;
    types.insert(want.type());
    EXPECT_TRUE(MessageDifferencer::Equals(r.envelope, want)) << want.type();
    EXPECT_EQ(r.key, want.tenant_id());
    EXPECT_EQ(r.value, contracts::SerializeDeterministic(want)) << want.type();
    EXPECT_EQ(r.headers, contracts::ToKafkaHeaders(want)) << want.type();
    EXPECT_EQ(r.topic, report.topic);
    EXPECT_EQ(r.offset, report.offset);
    EXPECT_EQ(r.partition, report.partition);
    // The Java client's default partitioner would pick the same partition.
    EXPECT_EQ(r.partition, kafka::PartitionForKey(want.tenant_id(), 12)) << want.tenant_id();
  }
  EXPECT_EQ(types.size(), 13u);
  EXPECT_EQ(consumer->stats().delivered, 13u);
}

TEST_F(KafkaRoundTrip, SkipsUnhandledTypesWithoutDecodingAndCommitsThem) {
  auto producer = MakeProducer();
  for (const auto& e : Goldens()) {
    if (e.type() == "data.refreshed" || e.type() == "data.quality.degraded") {
      ASSERT_TRUE(producer->SendSync(e).ok());
    }
  }
  const std::string topic = catalog_->Find("data.refreshed")->topic;
  {
    auto c = MakeConsumer("refresh-only", {topic}, {"data.refreshed"});
    auto got = Collect(*c, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].envelope.type(), "data.refreshed");
    // The other record was fetched and skipped; give it a moment in case it came later.
    for (int i = 0; i < 20 && c->stats().skipped_type == 0; ++i)
      ASSERT_TRUE(c->PollOnce([](auto&) { return absl::OkStatus(); }).ok());
    EXPECT_EQ(c->stats().skipped_type, 1u);
    EXPECT_EQ(c->stats().undecodable, 0u);
  }
  // Committed: a new member of the group gets nothing more.
  auto again = MakeConsumer("refresh-only", {topic}, {"data.refreshed"});
  EXPECT_TRUE(Collect(*again, 1, absl::Seconds(5)).empty());
}

// Commits are asynchronous, yet a running member's handled batches reach the group's
// committed offsets without a revoke or Close (a crashed member would otherwise redo
// everything since it joined).
TEST_F(KafkaRoundTrip, HandledBatchesAreCommittedWhileTheMemberRuns) {
  auto producer = MakeProducer();
  constexpr int kEvents = 40;
  for (int i = 0; i < kEvents; ++i) {
    v1::Envelope e = Goldens()[0];
    e.clear_id();
    e.set_tenant_id(common::Cat("tenant-", i % 7));
    ASSERT_TRUE(producer->SendSync(e).ok());
  }
  const std::string topic = catalog_->Find(Goldens()[0].type())->topic;
  const std::string group = "commit-while-running";
  auto c = MakeConsumer(group, {topic}, {}, 10);
  auto got = Collect(*c, kEvents);
  ASSERT_EQ(got.size(), static_cast<size_t>(kEvents));
  std::map<int32_t, int64_t> want;  // partition -> next offset
  for (const auto& r : got) want[r.partition] = std::max(want[r.partition], r.offset + 1);

  // The group's committed offsets as another client sees them (no membership needed).
  auto conf = kafka::MakeConf({{"bootstrap.servers", bootstrap_}, {"group.id", Group(group)}});
  ASSERT_TRUE(conf.ok()) << conf.status();
  char err[512];
  kafka::KafkaHandle probe(rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), err, sizeof(err)));
  ASSERT_NE(probe, nullptr) << err;
  conf->release();
  auto committed = [&] {
    std::map<int32_t, int64_t> out;
    kafka::PartitionListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(want.size())));
    for (const auto& [p, _] : want) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
    EXPECT_EQ(rd_kafka_committed(probe.get(), list.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < list->cnt; ++i) out[list->elems[i].partition] = list->elems[i].offset;
    return out;
  };
  std::map<int32_t, int64_t> seen;
  for (int i = 0; i < 50 && (seen = committed()) != want; ++i)
    ASSERT_TRUE(c->PollOnce([](auto&) { return absl::OkStatus(); }).ok());  // serves commit results
  EXPECT_EQ(seen, want);
  EXPECT_EQ(c->stats().commit_failures, 0u);
  EXPECT_EQ(c->stats().delivered, static_cast<uint64_t>(kEvents));
}

TEST_F(KafkaRoundTrip, ConsumerStoppedMidBatchRereadsExactlyTheUncommittedRecords) {
  auto producer = MakeProducer();
  v1::Envelope base = Goldens().at(0);  // any type; data.refreshed below
  for (const auto& e : Goldens())
    if (e.type() == "data.refreshed") base = e;
  constexpr int kEvents = 60;
  std::set<std::string> all;
  for (int i = 0; i < kEvents; ++i) {
    v1::Envelope e = base;
    e.clear_id();
    e.set_tenant_id(common::Cat("tenant-", i % 7));
    auto r = producer->SendSync(e);
    ASSERT_TRUE(r.ok()) << r.status();
    all.insert(r->event_id);
  }
  const std::string topic = catalog_->Find("data.refreshed")->topic;

  std::set<std::string> committed, uncommitted;
  {
    auto a = MakeConsumer("resume", {topic}, {}, /*max_batch=*/10);
    int calls = 0;
    absl::Status run = a->Run([&](const std::vector<kafka::Record>& batch) {
      if (++calls == 1) {
        for (const auto& r : batch) committed.insert(r.envelope.id());
        return absl::OkStatus();
      }
      for (const auto& r : batch) uncommitted.insert(r.envelope.id());
      a->Stop();  // the process is told to stop while this batch is in hand
      return absl::CancelledError("stopping mid-batch");
    });
    EXPECT_TRUE(run.ok()) << run;
  }
  ASSERT_FALSE(committed.empty());
  ASSERT_FALSE(uncommitted.empty());

  auto b = MakeConsumer("resume", {topic});
  auto got = Collect(*b, kEvents - committed.size());
  // Nothing more arrives after the expected count.
  auto extra = Collect(*b, 1, absl::Seconds(3));
  std::multiset<std::string> reread;
  for (const auto& r : got) reread.insert(r.envelope.id());
  EXPECT_TRUE(extra.empty()) << extra.size() << " unexpected records";

  std::set<std::string> want;
  std::set_difference(all.begin(), all.end(), committed.begin(), committed.end(), std::inserter(want, want.end()));
  EXPECT_EQ(std::set<std::string>(reread.begin(), reread.end()), want);
  EXPECT_EQ(reread.size(), want.size()) << "a record was delivered twice";
  for (const auto& id : uncommitted) EXPECT_TRUE(want.contains(id)) << id;
}

TEST_F(KafkaRoundTrip, DeliveryFailureSurfacesAsStatus) {
  // A catalog whose topics were never created: the broker refuses every record.
  auto missing = contracts::Catalog::Default().WithTopicPrefix(prefix_ + "missing.");
  auto p = kafka::Producer::Create({.bootstrap_servers = bootstrap_, .delivery_timeout = absl::Seconds(3)}, missing);
  ASSERT_TRUE(p.ok());
  auto r = (*p)->SendSync(Goldens().at(0));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().code(), ::testing::AnyOf(absl::StatusCode::kNotFound, absl::StatusCode::kUnavailable))
      << r.status();
  EXPECT_TRUE((*p)->Flush(absl::Seconds(1)).ok());  // nothing left in flight
  EXPECT_EQ((*p)->InFlight(), 0);

  // An invalid envelope never reaches Kafka and names the field.
  auto good = MakeProducer();
  v1::Envelope bad = Goldens().at(0);
  bad.set_source("nobody");
  auto v = good->SendSync(bad);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(v.status().message()), ::testing::StartsWith("source: "));
}

TEST_F(KafkaRoundTrip, RecordAcknowledgedWithoutAnOffsetIsSentAgainUntilTheBrokerGivesOne) {
  using Peer = kafka::ProducerTestPeer;
  EXPECT_TRUE(Peer::Unconfirmed(RD_KAFKA_RESP_ERR_NO_ERROR, RD_KAFKA_OFFSET_INVALID));
  EXPECT_FALSE(Peer::Unconfirmed(RD_KAFKA_RESP_ERR_NO_ERROR, 0));
  EXPECT_FALSE(Peer::Unconfirmed(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_OFFSET_INVALID));

  auto p = MakeProducer();
  ASSERT_NE(p, nullptr);
  auto settle = [&](v1::Envelope e, int times) {
    auto record = p->Encode(e);
    EXPECT_TRUE(record.ok()) << record.status();
    std::promise<absl::StatusOr<kafka::DeliveryReport>> promise;
    Peer::AcknowledgedWithoutOffset(
        *p, *std::move(record), [&](absl::StatusOr<kafka::DeliveryReport> r) { promise.set_value(std::move(r)); },
        times);
    return promise.get_future().get();
  };
  // Once: sent again, and reported with the offset the broker gave the second copy.
  v1::Envelope again = Goldens().at(0);
  auto r = settle(again, 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->event_id, again.id());
  EXPECT_GE(r->offset, 0);
  EXPECT_EQ(r->partition, kafka::PartitionForKey(again.tenant_id(), 12));
  // After the limit: an error for the caller to act on, never a success it cannot trust.
  v1::Envelope given_up = Goldens().at(1);
  auto failed = settle(given_up, 3);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(failed.status().message()), ::testing::HasSubstr("4 times without an offset"));
  ASSERT_TRUE(p->Flush(absl::Seconds(5)).ok());  // the callback runs just before the count drops
  EXPECT_EQ(p->InFlight(), 0);

  // The copy sent again is the record as encoded: key, value and headers intact; the
  // other was never written.
  std::vector<std::string> topics = {r->topic};
  const std::string other = catalog_->Find(given_up.type())->topic;
  if (other != r->topic) topics.push_back(other);
  auto c = MakeConsumer("unconfirmed", topics);
  auto got = Collect(*c, 1, absl::Seconds(15));
  const auto more = Collect(*c, 1, absl::Seconds(2));
  got.insert(got.end(), more.begin(), more.end());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].offset, r->offset);
  EXPECT_EQ(got[0].key, again.tenant_id());
  EXPECT_TRUE(MessageDifferencer::Equals(got[0].envelope, again));
  EXPECT_EQ(got[0].headers, contracts::ToKafkaHeaders(again));

  // A producer that is closing fails such a record rather than send what it then purges.
  Peer::StartClosing(*p);
  auto closing = settle(Goldens().at(2), 0);
  ASSERT_FALSE(closing.ok());
  EXPECT_EQ(closing.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(closing.status().message()), ::testing::HasSubstr("while the producer closes"));
  ASSERT_TRUE(p->Flush(absl::Seconds(5)).ok());
}

TEST_F(KafkaRoundTrip, EnsureTopicsIsIdempotentAndUsesCatalogPartitions) {
  auto again = kafka::EnsureTopics(bootstrap_, *catalog_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->created.empty());
  EXPECT_EQ(again->existing.size(), 5u);
  EXPECT_TRUE(again->mismatched.empty());
  auto topics = kafka::ListTopics(bootstrap_);
  ASSERT_TRUE(topics.ok());
  for (const auto& t : catalog_->topics()) {
    ASSERT_TRUE(topics->contains(t.name())) << t.name();
    EXPECT_EQ(topics->at(t.name()), 12) << t.name();
  }
}

}  // namespace
}  // namespace sluice
