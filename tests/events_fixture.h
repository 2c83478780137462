#pragma once
// EventsTest: a gateway with the event log (PostgreSQL schema of its own), a producer,
// and the audit sink on demand (StoreAll), for the tests of the read APIs.
#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "consumers/audit/audit_sink.h"
#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "kafka/reader.h"
#include "sluice/v1/event_query.grpc.pb.h"
#include "tests/gateway_fixture.h"
#include "tests/pg_schema.h"

namespace sluice::testing {

inline constexpr char kAcme[] = "tenant-acme";
inline constexpr char kB[] = "tenant-b";

inline google::protobuf::Timestamp Ts(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

class EventsTest : public GatewayTest {
 protected:
  EventsTest() {
    config_overrides_ = [this](gateway::GatewayConfig& c) {
      c.pg_dsn = common::DefaultPgDsn();
      c.pg_schema = schema_;
      c.health_groups = {Group("lagger")};
      c.health_interval = absl::Milliseconds(300);
    };
  }
  void SetUp() override {
    auto c = MigratedSchema("it_events_", schema_);
    ASSERT_TRUE(c.ok()) << c.status();
    conn_.emplace(*std::move(c));
    GatewayTest::SetUp();
    if (HasFatalFailure()) return;
    query_ = v1::EventQueryService::NewStub(channel_);
    auto p = kafka::Producer::Create({.bootstrap_servers = bootstrap_}, *catalog_);
    ASSERT_TRUE(p.ok()) << p.status();
    producer_ = *std::move(p);
  }
  void TearDown() override {
    producer_.reset();
    query_.reset();
    GatewayTest::TearDown();
    if (conn_) {
      EXPECT_TRUE(DropSchema(*conn_, schema_).ok());
    }
  }

  std::vector<std::string> TopicNames() const {
    std::vector<std::string> t;
    for (const auto& topic : catalog_->topics()) t.push_back(topic.name());
    return t;
  }

  // A golden event of `type` with a fresh id, for `tenant`, defaults filled as producers do.
  v1::Envelope Make(const std::string& type, const std::string& tenant) {
    v1::Envelope e = contracts::testing::Golden(type);
    e.set_id(contracts::NewUuidV7());
    e.set_tenant_id(tenant);
    return e;
  }

  void PublishAll(const std::vector<v1::Envelope>& events) {
    for (const auto& e : events)
      producer_->Send(e, [](absl::StatusOr<kafka::DeliveryReport> r) { EXPECT_TRUE(r.ok()) << r.status(); });
    ASSERT_TRUE(producer_->Flush(absl::Seconds(60)).ok());
  }

  // Runs the audit sink over every topic until `want` events are in event_log.
  void StoreAll(size_t want) {
    auto sink = audit::AuditSink::Create({.pg_dsn = common::DefaultPgDsn(), .pg_schema = schema_});
    ASSERT_TRUE(sink.ok()) << sink.status();
    auto c = kafka::Consumer::Create(
        {.bootstrap_servers = bootstrap_, .group_id = Group("audit"), .topics = TopicNames(), .max_batch = 2000});
    ASSERT_TRUE(c.ok()) << c.status();
    size_t stored = 0;
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (stored < want && absl::Now() < deadline) {
      auto n = (*c)->PollOnce([&](const std::vector<kafka::Record>& batch) -> absl::Status {
        auto r = (*sink)->Write(batch);
        if (!r.ok()) return r.status();
        stored += static_cast<size_t>(r->stored);
        return absl::OkStatus();
      });
      ASSERT_TRUE(n.ok()) << n.status();
    }
    ASSERT_EQ(stored, want);
  }

  // Every page of ListEvents for `filter`, following cursors; ids in the order returned.
  std::vector<std::string> ListAll(const char* token, const v1::EventFilter& filter, int limit,
                                   std::vector<v1::StoredEvent>* events = nullptr) {
    std::vector<std::string> ids;
    std::string cursor;
    for (int page = 0; page < 1000; ++page) {
      v1::ListEventsRequest req;
      *req.mutable_filter() = filter;
      req.set_limit(limit);
      req.set_cursor(cursor);
      v1::ListEventsResponse resp;
      auto s = query_->ListEvents(Ctx(token).get(), req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      EXPECT_LE(resp.events_size(), limit == 0 ? 100 : limit);
      for (const auto& e : resp.events()) {
        ids.push_back(e.envelope().id());
        if (events) events->push_back(e);
      }
      EXPECT_EQ(resp.has_more(), !resp.next_cursor().empty());
      if (!resp.has_more()) break;
      EXPECT_EQ(resp.events_size(), limit == 0 ? 100 : limit) << "a page before the last is full";
      cursor = resp.next_cursor();
    }
    return ids;
  }

  grpc::StatusCode ListCode(const char* token, const v1::ListEventsRequest& req, std::string* message = nullptr) {
    v1::ListEventsResponse resp;
    auto s = query_->ListEvents(Ctx(token).get(), req, &resp);
    if (message) *message = s.error_message();
    return s.error_code();
  }

  // Every record now in `topic`, read by position.
  std::vector<kafka::Record> ReadAll(const std::string& topic) {
    auto r = kafka::TopicReader::OpenRange({.bootstrap_servers = bootstrap_}, {topic}, {});
    EXPECT_TRUE(r.ok()) << r.status();
    std::vector<kafka::Record> out;
    while (r.ok() && !(*r)->done()) {
      auto batch = (*r)->Next(1000, absl::Seconds(1));
      EXPECT_TRUE(batch.ok()) << batch.status();
      if (!batch.ok()) break;
      out.insert(out.end(), batch->begin(), batch->end());
    }
    return out;
  }

  std::string schema_;
  std::optional<common::PgConnection> conn_;
  std::unique_ptr<v1::EventQueryService::Stub> query_;
  std::unique_ptr<kafka::Producer> producer_;
};

}  // namespace sluice::testing
