// EventQueryService against the real local Kafka and PostgreSQL: ListEvents over what
// sluice-audit stored (filters, keyset paging, tenant isolation), Subscribe, Replay (RPC
// and sluicectl) by time window and into a target topic, and GetEventHealth.
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "common/pg.h"
#include "consumers/audit/audit_sink.h"
#include "contracts/derived.h"
#include "contracts/envelope.h"
#include "contracts/json.h"
#include "contracts/test_util.h"
#include "kafka/producer.h"
#include "kafka/replay.h"
#include "sluice/v1/event_query.grpc.pb.h"
#include "tests/events_fixture.h"
#include "tests/gateway_fixture.h"
#include "tests/pg_schema.h"
#include "tests/subprocess.h"

namespace sluice {
namespace {

using common::Cat;
using google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;

using testing::EventsTest;
using testing::kAcme;
using testing::kB;
using testing::Ts;

// An event as ListEvents orders them: occurred_at, then id.
struct Key {
  int64_t micros;
  std::string id;
  auto operator<=>(const Key&) const = default;
};

TEST_F(EventsTest, ListEventsFiltersAndPagesWithoutGapsOrRepeatsAndIsolatesTenants) {
  // 1,000 events of the 13 types; three share each occurred_at (the id breaks ties);
  // tenants 3:2; seven correlation ids; data.refreshed carries rows_affected = i.
  const absl::Time base = absl::FromUnixSeconds(1'790'000'000);
  const auto goldens = contracts::testing::Goldens();
  std::vector<v1::Envelope> events;
  for (int i = 0; i < 1000; ++i) {
    v1::Envelope e = goldens[i % goldens.size()];
    e.set_id(contracts::NewUuidV7());
    e.set_tenant_id(i % 5 < 3 ? kAcme : kB);
    *e.mutable_occurred_at() = Ts(base + absl::Milliseconds(i / 3));
    e.set_correlation_id(Cat("corr-", i % 7));
    if (e.has_data_refreshed()) e.mutable_data_refreshed()->set_rows_affected(i);
    contracts::FillDefaults(e, *catalog_);
    events.push_back(e);
  }
  PublishAll(events);
  StoreAll(events.size());

  auto expect = [&](const std::function<bool(const v1::Envelope&)>& keep) {
    std::vector<Key> keys;
    for (const auto& e : events)
      if (keep(e)) keys.push_back({TimeUtil::TimestampToMicroseconds(e.occurred_at()), e.id()});
    std::sort(keys.begin(), keys.end());
    std::vector<std::string> ids;
    for (const auto& k : keys) ids.push_back(k.id);
    return ids;
  };
  auto acme = [](const v1::Envelope& e) { return e.tenant_id() == kAcme; };

  // Tenant A's token, no tenant filter: exactly A's 600 events, in order, over 17 pages of 37.
  std::vector<v1::StoredEvent> stored;
  auto a_ids = ListAll(testing::kTokenA, {}, 37, &stored);
  EXPECT_EQ(a_ids.size(), 600u);
  EXPECT_THAT(a_ids, ElementsAreArray(expect(acme)));
  // Whole envelopes come back, equal to what was published.
  std::map<std::string, const v1::Envelope*> by_id;
  for (const auto& e : events) by_id[e.id()] = &e;
  for (const auto& s : stored) {
    ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(s.envelope(), *by_id.at(s.envelope().id())))
        << s.envelope().DebugString() << "\nvs published\n"
        << by_id.at(s.envelope().id())->DebugString();
    EXPECT_FALSE(s.topic().empty());
    EXPECT_GE(s.offset(), 0);
  }
  // Tenant B's token sees B's 400 and nothing of A's.
  EXPECT_THAT(ListAll(testing::kTokenB, {}, 200),
              ElementsAreArray(expect([](auto& e) { return e.tenant_id() == kB; })));
  // The operator's "*" token sees all 1,000 (default page size 100).
  EXPECT_THAT(ListAll(testing::kTokenOps, {}, 0), ElementsAreArray(expect([](auto&) { return true; })));

  // Types and sources.
  v1::EventFilter f;
  f.add_types("data.refreshed");
  f.add_types("metadata.approved");
  EXPECT_THAT(ListAll(testing::kTokenA, f, 7), ElementsAreArray(expect([&](const v1::Envelope& e) {
                return acme(e) && (e.type() == "data.refreshed" || e.type() == "metadata.approved");
              })));
  // Two tenants x two types (one named twice) are four ordered scans merged: every page
  // in order, no event twice across the page boundaries.
  f.add_types("data.refreshed");
  f.add_tenant_ids(kAcme);
  f.add_tenant_ids(kB);
  EXPECT_THAT(ListAll(testing::kTokenOps, f, 9), ElementsAreArray(expect([&](const v1::Envelope& e) {
                return e.type() == "data.refreshed" || e.type() == "metadata.approved";
              })));
  f.Clear();
  const std::string source = goldens[0].source();
  f.add_sources(source);
  EXPECT_THAT(ListAll(testing::kTokenA, f, 50),
              ElementsAreArray(expect([&](const v1::Envelope& e) { return acme(e) && e.source() == source; })));

  // Correlation id and an inclusive occurred_at window whose bounds are shared by three
  // events each.
  f.Clear();
  f.set_correlation_id("corr-3");
  *f.mutable_from_time() = Ts(base + absl::Milliseconds(100));
  *f.mutable_to_time() = Ts(base + absl::Milliseconds(200));
  auto window = expect([&](const v1::Envelope& e) {
    const int64_t ms = (TimeUtil::TimestampToMicroseconds(e.occurred_at()) - absl::ToUnixMicros(base)) / 1000;
    return acme(e) && e.correlation_id() == "corr-3" && ms >= 100 && ms <= 200;
  });
  EXPECT_FALSE(window.empty());
  EXPECT_THAT(ListAll(testing::kTokenA, f, 5), ElementsAreArray(window));
  f.clear_correlation_id();
  auto bounds = ListAll(testing::kTokenOps, f, 200);
  EXPECT_EQ(bounds.size(), 303u) << "occurred_at 100..200 ms inclusive, three events per ms";

  // A JSONPath over the payload (int64 is a string in protobuf JSON, hence .double()).
  f.Clear();
  f.add_types("data.refreshed");
  f.set_json_path("$.rowsAffected ? (@.double() > 500)");
  auto big = expect([&](const v1::Envelope& e) {
    return acme(e) && e.has_data_refreshed() && e.data_refreshed().rows_affected() > 500;
  });
  EXPECT_FALSE(big.empty());
  EXPECT_THAT(ListAll(testing::kTokenA, f, 10), ElementsAreArray(big));
  // A JSONPath on one tenant is first tried by a walk of the first (limit + 1) x 64 rows in
  // order. Pages of 1 (walks of 128 rows): a path that only late events match leaves the
  // early walks short, and the full statement must answer them; a path most events match
  // is answered by the walks. Every page in order either way.
  f.Clear();
  f.set_json_path("$.rowsAffected ? (@.double() > 900)");
  auto late = expect([&](const v1::Envelope& e) {
    return acme(e) && e.has_data_refreshed() && e.data_refreshed().rows_affected() > 900;
  });
  ASSERT_GE(late.size(), 3u);
  EXPECT_THAT(ListAll(testing::kTokenA, f, 1), ElementsAreArray(late));
  f.set_json_path("$.rowsAffected ? (@.double() >= 0)");
  auto refreshed = expect([&](const v1::Envelope& e) { return acme(e) && e.has_data_refreshed(); });
  EXPECT_THAT(ListAll(testing::kTokenA, f, 2), ElementsAreArray(refreshed));
  // Written with the database's spelling of a tier ("tier1", as the reference writes it),
  // it matches the enum name the payload JSON stores ("TIER_1"); the same with the enum name.
  auto tier1 = expect([&](const v1::Envelope& e) {
    if (!acme(e)) return false;
    const auto* field = e.GetDescriptor()->FindFieldByName(std::string(contracts::PayloadField(e)));
    if (field == nullptr) return false;
    const auto& payload = e.GetReflection()->GetMessage(e, field);
    const auto* tier = payload.GetDescriptor()->FindFieldByName("tier");
    return tier != nullptr && !tier->is_repeated() && payload.GetReflection()->GetEnumValue(payload, tier) == 1;
  });
  EXPECT_FALSE(tier1.empty());
  f.Clear();
  f.set_json_path(R"($.tier ? (@ == "tier1"))");
  EXPECT_THAT(ListAll(testing::kTokenA, f, 50), ElementsAreArray(tier1));
  f.set_json_path(R"($.tier ? (@ == "TIER_1"))");
  EXPECT_THAT(ListAll(testing::kTokenA, f, 50), ElementsAreArray(tier1));
  // ... and "not tier1" leaves out both spellings.
  auto other_tiers = expect([&](const v1::Envelope& e) {
    if (!acme(e)) return false;
    const auto* field = e.GetDescriptor()->FindFieldByName(std::string(contracts::PayloadField(e)));
    if (field == nullptr) return false;
    const auto& payload = e.GetReflection()->GetMessage(e, field);
    const auto* tier = payload.GetDescriptor()->FindFieldByName("tier");
    return tier != nullptr && !tier->is_repeated() && payload.GetReflection()->GetEnumValue(payload, tier) > 1;
  });
  f.set_json_path(R"($.tier ? (@ != "tier1"))");
  EXPECT_THAT(ListAll(testing::kTokenA, f, 50), ElementsAreArray(other_tiers));

  // Bad requests.
  v1::ListEventsRequest bad;
  std::string msg;
  bad.mutable_filter()->add_tenant_ids(kB);
  EXPECT_EQ(ListCode(testing::kTokenA, bad), grpc::StatusCode::PERMISSION_DENIED);
  bad.Clear();
  bad.set_limit(201);
  EXPECT_EQ(ListCode(testing::kTokenA, bad, &msg), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(msg, ::testing::HasSubstr("limit"));
  bad.Clear();
  bad.mutable_filter()->set_json_path("$.[");
  EXPECT_EQ(ListCode(testing::kTokenA, bad, &msg), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(msg, ::testing::HasSubstr("filter.json_path"));
  bad.Clear();
  bad.mutable_filter()->add_types("no.such.type");
  EXPECT_EQ(ListCode(testing::kTokenA, bad), grpc::StatusCode::INVALID_ARGUMENT);
  bad.Clear();
  bad.set_cursor("not-a-cursor");
  EXPECT_EQ(ListCode(testing::kTokenA, bad), grpc::StatusCode::INVALID_ARGUMENT);
  // A cursor only continues the filter it was issued for.
  v1::ListEventsRequest first;
  first.set_limit(3);
  v1::ListEventsResponse page;
  ASSERT_TRUE(query_->ListEvents(Ctx(testing::kTokenA).get(), first, &page).ok());
  ASSERT_TRUE(page.has_more());
  bad.Clear();
  bad.set_cursor(page.next_cursor());
  bad.mutable_filter()->add_types("data.refreshed");
  EXPECT_EQ(ListCode(testing::kTokenA, bad, &msg), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(msg, ::testing::HasSubstr("different filter"));
  EXPECT_EQ(ListCode(nullptr, first), grpc::StatusCode::UNAUTHENTICATED);
}

// The gateway watches the group StoreAll consumes with, as it watches sluice-audit.
class EventLogNoticeTest : public EventsTest {
 protected:
  EventLogNoticeTest() {
    config_overrides_ = [this, base = config_overrides_](gateway::GatewayConfig& c) {
      base(c);
      c.health_groups.push_back(Group("audit"));
      c.event_log_group = Group("audit");
    };
  }
  // The first page of ListEvents for tenant-acme's events of `type`.
  v1::ListEventsResponse FirstPage(const std::string& type, const std::string& cursor = "") {
    v1::ListEventsRequest req;
    req.mutable_filter()->add_types(type);
    req.set_cursor(cursor);
    v1::ListEventsResponse resp;
    auto s = query_->ListEvents(Ctx(testing::kTokenA).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  // The notice of an empty first page, once it contains `want` ("" = once it is empty):
  // offsets commit and the measurement refreshes (health_interval) on their own time.
  std::string NoticeOnceItSays(const std::string& type, const std::string& want) {
    std::string notice;
    for (const absl::Time deadline = absl::Now() + absl::Seconds(20); absl::Now() < deadline;
         absl::SleepFor(absl::Milliseconds(200))) {
      v1::ListEventsResponse r = FirstPage(type);
      EXPECT_EQ(r.events_size(), 0);
      notice = r.notice();
      if (want.empty() ? notice.empty() : notice.find(want) != std::string::npos) break;
    }
    return notice;
  }
};

TEST_F(EventLogNoticeTest, AnEmptyFirstPageSaysWhetherTheAuditSinkIsWriting) {
  // Nothing has consumed the topics yet.
  v1::ListEventsResponse r = FirstPage("data.refreshed");
  EXPECT_EQ(r.events_size(), 0);
  EXPECT_THAT(r.notice(), ::testing::HasSubstr("has not stored anything yet: is it running?"));
  EXPECT_THAT(r.notice(), ::testing::HasSubstr(Group("audit")));

  PublishAll({Make("data.refreshed", "tenant-acme")});
  StoreAll(1);
  // Up to date: a page with events and an empty page carry no notice (nothing matched).
  EXPECT_EQ(NoticeOnceItSays("kpi.changed", ""), "");
  r = FirstPage("data.refreshed");
  EXPECT_EQ(r.events_size(), 1);
  EXPECT_EQ(r.notice(), "");

  // Published (another tenant's event, on a topic the group reads), not yet stored: the
  // sink is behind. How far is not said: the lag mixes tenants.
  PublishAll({Make("data.refreshed", "tenant-b")});
  const std::string behind = NoticeOnceItSays("kpi.changed", "is behind the topics");
  EXPECT_THAT(behind, ::testing::HasSubstr("events published recently may not be in the event log yet"));
  EXPECT_THAT(behind, ::testing::Not(::testing::ContainsRegex("[0-9]+ events")));
}

TEST_F(EventsTest, SubscribeDeliversNewMatchingEventsOfTheCallersTenantsOnly) {
  v1::SubscribeRequest req;
  req.mutable_filter()->add_types("data.refreshed");
  auto ctx = Ctx(testing::kTokenA);
  auto stream = query_->Subscribe(ctx.get(), req);
  stream->WaitForInitialMetadata();  // the feed is live from here

  std::vector<v1::Envelope> wanted, others;
  for (int i = 0; i < 5; ++i) {
    wanted.push_back(Make("data.refreshed", kAcme));
    others.push_back(Make("data.refreshed", kB));
    others.push_back(Make("metadata.changed", kAcme));
  }
  std::vector<v1::Envelope> all = others;
  all.insert(all.end(), wanted.begin(), wanted.end());
  PublishAll(all);
  const v1::Envelope sentinel = Make("data.refreshed", kAcme);
  PublishAll({sentinel});

  std::vector<std::string> got, want;
  for (const auto& e : wanted) want.push_back(e.id());
  v1::SubscribeResponse r;
  while (got.size() < 6 && stream->Read(&r)) got.push_back(r.event().envelope().id());
  if (got.size() < 6) {
    auto s = stream->Finish();
    FAIL() << "stream ended after " << got.size() << " events: " << s.error_code() << " " << s.error_message();
  }
  EXPECT_EQ(got.back(), sentinel.id()) << "nothing else arrived before the sentinel";
  got.pop_back();
  EXPECT_THAT(got, UnorderedElementsAreArray(want));
  ctx->TryCancel();
  while (stream->Read(&r)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);

  // Another tenant, or a time range, is refused.
  v1::SubscribeRequest other;
  other.mutable_filter()->add_tenant_ids(kB);
  auto ctx2 = Ctx(testing::kTokenA);
  auto s2 = query_->Subscribe(ctx2.get(), other);
  while (s2->Read(&r)) {
  }
  EXPECT_EQ(s2->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::SubscribeRequest timed;
  *timed.mutable_filter()->mutable_from_time() = Ts(absl::Now());
  auto ctx3 = Ctx(testing::kTokenA);
  auto s3 = query_->Subscribe(ctx3.get(), timed);
  while (s3->Read(&r)) {
  }
  EXPECT_EQ(s3->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(EventsTest, SeverityAndLinksAreDerivedAndFilterListEventsAndSubscribe) {
  // Subscribed before publishing: only errors.
  v1::SubscribeRequest sub;
  sub.mutable_filter()->add_severities(v1::EVENT_SEVERITY_ERROR);
  auto ctx = Ctx(testing::kTokenA);
  auto stream = query_->Subscribe(ctx.get(), sub);
  stream->WaitForInitialMetadata();

  const v1::Envelope failed = Make("metadata.profile.failed", kAcme);
  const v1::Envelope degraded = Make("data.quality.degraded", kAcme);
  v1::Envelope grade_f = Make("metadata.profile.completed", kAcme);
  grade_f.mutable_profile_completed()->set_quality_grade(v1::QUALITY_GRADE_F);
  const v1::Envelope grade_a = Make("metadata.profile.completed", kAcme);
  const v1::Envelope refreshed = Make("data.refreshed", kAcme);
  const v1::Envelope other_tenant_failed = Make("metadata.profile.failed", kB);
  PublishAll({refreshed, grade_a, other_tenant_failed, grade_f, degraded, failed});
  StoreAll(6);

  v1::SubscribeResponse r;
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.event().envelope().id(), failed.id()) << "the first error of the caller's tenant";
  EXPECT_EQ(r.event().severity(), v1::EVENT_SEVERITY_ERROR);
  EXPECT_THAT(r.event().links(), Not(IsEmpty()));
  ctx->TryCancel();
  while (stream->Read(&r)) {
  }
  (void)stream->Finish();

  auto ids = [&](std::vector<v1::EventSeverity> severities, std::vector<std::string> types = {}) {
    v1::EventFilter f;
    for (auto s : severities) f.add_severities(s);
    for (auto& t : types) f.add_types(t);
    std::vector<v1::StoredEvent> events;
    auto got = ListAll(testing::kTokenA, f, 2, &events);
    for (const auto& e : events) {
      EXPECT_EQ(e.severity(), contracts::SeverityOf(e.envelope())) << e.envelope().type();
      const auto links = contracts::LinksOf(e.envelope());
      EXPECT_EQ(e.links_size(), static_cast<int>(links.size()));
      for (int i = 0; i < e.links_size() && i < static_cast<int>(links.size()); ++i) {
        EXPECT_EQ(e.links(i).kind(), links[i].kind());
        EXPECT_EQ(e.links(i).id(), links[i].id());
      }
    }
    return std::set<std::string>(got.begin(), got.end());
  };
  using S = std::set<std::string>;
  EXPECT_EQ(ids({v1::EVENT_SEVERITY_ERROR}), S({failed.id()}));
  EXPECT_EQ(ids({v1::EVENT_SEVERITY_WARNING}), S({degraded.id(), grade_f.id()}));
  EXPECT_EQ(ids({v1::EVENT_SEVERITY_INFO}), S({refreshed.id(), grade_a.id()}));
  EXPECT_EQ(ids({v1::EVENT_SEVERITY_ERROR, v1::EVENT_SEVERITY_WARNING}), S({failed.id(), degraded.id(), grade_f.id()}));
  EXPECT_EQ(ids({v1::EVENT_SEVERITY_WARNING}, {"metadata.profile.completed"}), S({grade_f.id()}));
  EXPECT_EQ(ids({v1::EVENT_SEVERITY_ERROR}, {"data.refreshed"}), S());
  EXPECT_EQ(ids({}).size(), 5u) << "no severity filter: every event of the caller's tenant";

  // A profile failure links its entity, key, job and correlation id.
  std::vector<v1::StoredEvent> events;
  v1::EventFilter only_failed;
  only_failed.add_severities(v1::EVENT_SEVERITY_ERROR);
  ListAll(testing::kTokenA, only_failed, 10, &events);
  ASSERT_EQ(events.size(), 1u);
  std::vector<std::string> kinds;
  for (const auto& l : events[0].links()) kinds.push_back(l.kind());
  EXPECT_THAT(kinds, ElementsAre("entity", "canonical_key", "job", "correlation"));

  // UNSPECIFIED and unknown numbers are refused, naming the entry.
  for (int bad : {0, 9}) {
    v1::ListEventsRequest req;
    req.mutable_filter()->add_severities(v1::EVENT_SEVERITY_ERROR);
    req.mutable_filter()->add_severities(static_cast<v1::EventSeverity>(bad));
    std::string message;
    EXPECT_EQ(ListCode(testing::kTokenA, req, &message), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(message, HasSubstr("filter.severities[1]"));
  }
}

TEST_F(EventsTest, ReplayByTimeWindowReturnsExactlyTheEventsInsideIt) {
  // Three bursts with quiet gaps; the window [t1, t2] holds exactly the middle one.
  auto burst = [&](int n) {
    std::vector<v1::Envelope> out;
    for (int i = 0; i < n; ++i) out.push_back(Make(i % 2 ? "data.refreshed" : "metadata.changed", i % 3 ? kAcme : kB));
    PublishAll(out);
    return out;
  };
  burst(20);
  absl::SleepFor(absl::Milliseconds(50));
  const absl::Time t1 = absl::Now();
  absl::SleepFor(absl::Milliseconds(50));
  const auto middle = burst(30);
  absl::SleepFor(absl::Milliseconds(50));
  const absl::Time t2 = absl::Now();
  absl::SleepFor(absl::Milliseconds(50));
  burst(20);

  std::vector<std::string> all_mid, acme_mid, b_mid;
  for (const auto& e : middle) {
    all_mid.push_back(e.id());
    (e.tenant_id() == kAcme ? acme_mid : b_mid).push_back(e.id());
  }

  auto replay = [&](const char* token, v1::ReplayRequest req, v1::ReplaySummary* summary,
                    std::vector<v1::ReplayResponse>* items = nullptr) {
    auto ctx = Ctx(token);
    auto stream = query_->Replay(ctx.get(), req);
    std::vector<std::string> ids;
    v1::ReplayResponse r;
    while (stream->Read(&r)) {
      if (r.has_summary()) {
        *summary = r.summary();
      } else {
        ids.push_back(r.event().envelope().id());
        if (items) items->push_back(r);
      }
    }
    auto s = stream->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return ids;
  };
  v1::ReplayRequest req;
  for (const auto& t : TopicNames()) req.add_topics(t);
  *req.mutable_from_time() = Ts(t1);
  *req.mutable_to_time() = Ts(t2);
  v1::ReplaySummary summary;
  EXPECT_THAT(replay(testing::kTokenOps, req, &summary), UnorderedElementsAreArray(all_mid));
  EXPECT_EQ(summary.matched(), 30);
  // Tenant A's token gets A's part of the window only.
  EXPECT_THAT(replay(testing::kTokenA, req, &summary), UnorderedElementsAreArray(acme_mid));
  EXPECT_EQ(summary.filtered_out(), static_cast<int64_t>(b_mid.size()));

  // sluicectl replay, same window, tenant B, as JSON lines.
  const std::string out = Cat(::testing::TempDir(), "/replay-", prefix_, "jsonl");
  // The global flags after the subcommand, and catalog topics named without the prefix
  // (--topic applies --topic-prefix, as --type does).
  std::vector<std::string> args = {"replay",
                                   "--topic-prefix",
                                   prefix_,
                                   "--bootstrap",
                                   bootstrap_,
                                   "--tenant",
                                   kB,
                                   "--from",
                                   absl::FormatTime(absl::RFC3339_full, t1, absl::UTCTimeZone()),
                                   "--to",
                                   absl::FormatTime(absl::RFC3339_full, t2, absl::UTCTimeZone()),
                                   "--output",
                                   out};
  for (const auto& t : TopicNames()) {
    ASSERT_TRUE(t.starts_with(prefix_)) << t;
    args.push_back("--topic");
    args.push_back(t.substr(prefix_.size()));
  }
  pid_t pid = testing::Spawn(SLUICECTL, args, out + ".log");
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "see " << out << ".log";
  std::ifstream lines(out);
  std::vector<std::string> cli_ids;
  for (std::string line; std::getline(lines, line);) {
    google::protobuf::Struct obj;
    ASSERT_TRUE(contracts::FromJson(line, obj).ok()) << line;
    cli_ids.push_back(obj.fields().at("envelope").struct_value().fields().at("id").string_value());
  }
  EXPECT_THAT(cli_ids, UnorderedElementsAreArray(b_mid));

  // Re-publishing into a target topic: operator role only, never a source, ids kept.
  const std::string target = Cat(prefix_, "replay-target");
  v1::TopicSpec spec;
  spec.set_name(target);
  spec.set_partitions(3);
  ASSERT_TRUE(kafka::EnsureTopics(bootstrap_, std::vector<v1::TopicSpec>{spec}).ok());
  req.set_target_topic(target);
  {
    auto ctx = Ctx(testing::kTokenA);
    auto stream = query_->Replay(ctx.get(), req);
    v1::ReplayResponse r;
    while (stream->Read(&r)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    v1::ReplayRequest self = req;
    self.set_target_topic(req.topics(0));
    auto ctx = Ctx(testing::kTokenOps);
    auto stream = query_->Replay(ctx.get(), self);
    v1::ReplayResponse r;
    while (stream->Read(&r)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  std::vector<v1::ReplayResponse> items;
  EXPECT_THAT(replay(testing::kTokenOps, req, &summary, &items), UnorderedElementsAreArray(all_mid));
  EXPECT_EQ(summary.republished(), 30);
  for (const auto& it : items) EXPECT_EQ(it.republished().topic(), target);
  auto copies = ReadAll(target);
  std::vector<std::string> copy_ids;
  for (const auto& c : copies) {
    copy_ids.push_back(c.envelope.id());
    auto h = contracts::FindHeader(c.headers, kafka::kReplayHeader);
    ASSERT_TRUE(h.has_value());
    EXPECT_THAT(std::string(*h), ::testing::StartsWith(prefix_));
    EXPECT_EQ(c.key, c.envelope.tenant_id());
  }
  EXPECT_THAT(copy_ids, UnorderedElementsAreArray(all_mid));
  EXPECT_TRUE(kafka::DeleteTopics(bootstrap_, {target}).ok());
}

TEST_F(EventsTest, EventHealthReportsLagSourcesAndPausedSources) {
  // The group "lagger" reads 4 of 10 events of one partition and commits.
  std::vector<v1::Envelope> tenfold;
  for (int i = 0; i < 10; ++i) tenfold.push_back(Make("data.refreshed", kAcme));
  PublishAll(tenfold);
  const std::string topic = catalog_->Find("data.refreshed")->topic;
  {
    auto c = kafka::Consumer::Create(
        {.bootstrap_servers = bootstrap_, .group_id = Group("lagger"), .topics = {topic}, .max_batch = 4});
    ASSERT_TRUE(c.ok());
    size_t got = 0;
    for (int i = 0; i < 100 && got == 0; ++i) {
      auto n = (*c)->PollOnce([](const std::vector<kafka::Record>&) { return absl::OkStatus(); });
      ASSERT_TRUE(n.ok());
      got = *n;
    }
    ASSERT_EQ(got, 4u);
    ASSERT_TRUE((*c)->Close().ok());
  }
  // Two events through the gateway from one source; finance.service is paused at its 4th
  // (for tenant-acme only: limits count per tenant and source).
  for (int i = 0; i < 2; ++i) {
    v1::PublishRequest req;
    *req.mutable_envelope() = Make("data.refreshed", kAcme);
    v1::PublishResponse resp;
    ASSERT_TRUE(events_->Publish(Ctx(testing::kTokenA).get(), req, &resp).ok());
  }
  int refused = 0;
  for (int i = 0; i < 4; ++i) {
    v1::PublishRequest req;
    *req.mutable_envelope() = Make("data.refreshed", kAcme);
    req.mutable_envelope()->set_source("finance.service");
    v1::PublishResponse resp;
    if (events_->Publish(Ctx(testing::kTokenA).get(), req, &resp).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)
      ++refused;
  }
  ASSERT_EQ(refused, 1);
  {  // Tenant B's finance.service is not paused by tenant-acme's burst.
    v1::PublishRequest req;
    *req.mutable_envelope() = Make("data.refreshed", kB);
    req.mutable_envelope()->set_source("finance.service");
    v1::PublishResponse resp;
    EXPECT_TRUE(events_->Publish(Ctx(testing::kTokenB).get(), req, &resp).ok());
  }

  // A tenant's token sees its own tenant's sources, and no consumer lag (partitions mix
  // tenants); tenant B's token sees nothing of tenant-acme's.
  {
    v1::GetEventHealthResponse mine;
    ASSERT_TRUE(query_->GetEventHealth(Ctx(testing::kTokenA).get(), {}, &mine).ok());
    EXPECT_EQ(mine.consumer_lag_size(), 0);
    ASSERT_GT(mine.sources_size(), 0);
    for (const auto& s : mine.sources()) EXPECT_EQ(s.tenant_id(), kAcme) << s.source();
    v1::GetEventHealthResponse theirs;
    ASSERT_TRUE(query_->GetEventHealth(Ctx(testing::kTokenB).get(), {}, &theirs).ok());
    ASSERT_EQ(theirs.sources_size(), 1);
    EXPECT_EQ(theirs.sources(0).tenant_id(), kB);
    EXPECT_EQ(theirs.sources(0).published_total(), 1);
    EXPECT_FALSE(theirs.sources(0).has_paused_until());
  }

  v1::GetEventHealthResponse h;
  ASSERT_TRUE(query_->GetEventHealth(Ctx(testing::kTokenOps).get(), {}, &h).ok());
  const int32_t partition = kafka::PartitionForKey(kAcme, catalog_->Find("data.refreshed")->partitions);
  bool found = false;
  for (const auto& l : h.consumer_lag()) {
    EXPECT_EQ(l.group(), Group("lagger"));
    EXPECT_EQ(l.topic(), topic) << "only the topic the group read";
    if (l.partition() == partition) {
      found = true;
      EXPECT_EQ(l.committed_offset(), 4);
      // 10 published directly, 2 + 3 through the gateway, and tenant B's one if it hashes here.
      const int64_t b_here = kafka::PartitionForKey(kB, catalog_->Find("data.refreshed")->partitions) == partition;
      EXPECT_EQ(l.end_offset(), 15 + b_here);
      EXPECT_EQ(l.lag(), 11 + b_here);
    } else {  // tenant B's event, where the group never committed
      const int32_t b_partition = kafka::PartitionForKey(kB, catalog_->Find("data.refreshed")->partitions);
      EXPECT_EQ(l.lag(), l.partition() == b_partition ? 1 : 0);
    }
  }
  EXPECT_TRUE(found);
  std::map<std::string, v1::SourceActivity> sources;  // tenant-acme's, by source
  for (const auto& s : h.sources())
    if (s.tenant_id() == kAcme) sources[s.source()] = s;
  const std::string refresh_source = Make("data.refreshed", kAcme).source();
  ASSERT_TRUE(sources.contains(refresh_source));
  EXPECT_EQ(sources[refresh_source].published_total(), 2);
  EXPECT_TRUE(sources[refresh_source].has_last_seen());
  EXPECT_NEAR(sources[refresh_source].publish_rate_per_s(), 2.0 / 60, 1e-9);
  EXPECT_FALSE(sources[refresh_source].has_paused_until());
  ASSERT_TRUE(sources.contains("finance.service"));
  EXPECT_EQ(sources["finance.service"].published_total(), 3);
  EXPECT_EQ(sources["finance.service"].rate_limited_total(), 1);
  EXPECT_TRUE(sources["finance.service"].has_paused_until());

  // The same figures as gauges, refreshed in the background, and the approvals waiting.
  ASSERT_TRUE(conn_
                  ->ExecScript("INSERT INTO mdm_approval (tenant_id, entity_type, entity_key, tier, lane, payload,"
                               " requested_by, required_role) VALUES ('tenant-acme', 'kpi', 'k', 'tier2', 'governed',"
                               " '{}', 'a', 'kpi_owner')")
                  .ok());
  std::string text;
  for (int i = 0; i < 50; ++i) {
    text = prometheus::TextSerializer().Serialize(registry_.Collect());
    if (text.find(Cat("sluice_consumer_lag{group=\"", Group("lagger"))) != std::string::npos &&
        text.find("sluice_source_paused{source=\"finance.service\"} 1") != std::string::npos &&
        text.find("metadata_approvals_pending{tenant_id=\"tenant-acme\"} 1") != std::string::npos)
      break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  const int64_t b_here = kafka::PartitionForKey(kB, catalog_->Find("data.refreshed")->partitions) == partition;
  EXPECT_THAT(text, ::testing::HasSubstr(Cat("sluice_consumer_lag{group=\"", Group("lagger"), "\",partition=\"",
                                             partition, "\",topic=\"", topic, "\"} ", 11 + b_here)));
  EXPECT_THAT(text, ::testing::HasSubstr("sluice_source_paused{source=\"finance.service\"} 1"));
  EXPECT_THAT(text, ::testing::HasSubstr("metadata_approvals_pending{tenant_id=\"tenant-acme\"} 1"));

  // A caller inventing tenants cannot grow the gauge without bound: the 1,000 tenants with
  // the most pending approvals are reported (tenant-acme, with two, among them).
  ASSERT_TRUE(conn_
                  ->ExecScript("INSERT INTO mdm_approval (tenant_id, entity_type, entity_key, tier, lane, payload,"
                               " requested_by, required_role) SELECT 't' || g, 'kpi', 'k', 'tier2', 'governed', '{}',"
                               " 'a', 'kpi_owner' FROM generate_series(1, 1500) g;"
                               " INSERT INTO mdm_approval (tenant_id, entity_type, entity_key, tier, lane, payload,"
                               " requested_by, required_role) VALUES ('tenant-acme', 'kpi', 'k2', 'tier2', 'governed',"
                               " '{}', 'a', 'kpi_owner')")
                  .ok());
  auto series = [&] {
    size_t n = 0;
    for (const auto& f : registry_.Collect())
      if (f.name == "metadata_approvals_pending") n = f.metric.size();
    return n;
  };
  for (int i = 0; i < 50; ++i) {
    text = prometheus::TextSerializer().Serialize(registry_.Collect());
    if (text.find("metadata_approvals_pending{tenant_id=\"tenant-acme\"} 2") != std::string::npos && series() >= 1000)
      break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_THAT(text, ::testing::HasSubstr("metadata_approvals_pending{tenant_id=\"tenant-acme\"} 2"));
  EXPECT_EQ(series(), 1000u);
}

}  // namespace
}  // namespace sluice
