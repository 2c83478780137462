// The gateway's HTTP/JSON API (gateway/http_api.h) against the real local Kafka and
// PostgreSQL, through libcurl: the event log, one event with its chain, health, the live
// feed as Server-Sent Events, tenant isolation, and errors as JSON naming the field.
#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/strings.h"
#include "contracts/json.h"
#include "tests/events_fixture.h"
#include "tests/http_client.h"
#include "tests/subprocess.h"

namespace sluice {
namespace {

using common::Cat;
using testing::ErrorOf;
using testing::Escape;
using testing::FirstViolationField;
using ::testing::HasSubstr;
using testing::HttpReply;
using testing::kAcme;
using testing::kB;
using ::testing::Not;
using testing::Request;

class HttpApiTest : public testing::EventsTest {
 protected:
  HttpApiTest() {
    config_overrides_ = [base = config_overrides_](gateway::GatewayConfig& c) {
      base(c);
      c.http_listen = "127.0.0.1:0";
      c.http_threads = 4;  // two live feeds at most
    };
  }
  std::string Url(const std::string& path) const { return Cat("http://127.0.0.1:", gateway_->http_port(), path); }

  std::vector<std::string> IdsOf(const HttpReply& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    v1::ListEventsResponse list;
    EXPECT_TRUE(contracts::FromJson(r.body, list).ok()) << r.body;
    std::vector<std::string> ids;
    for (const auto& e : list.events()) ids.push_back(e.envelope().id());
    return ids;
  }
};

TEST_F(HttpApiTest, ListsGetsWithTheChainAndReportsHealthForTheCallersTenantsOnly) {
  ASSERT_GT(gateway_->http_port(), 0);
  v1::Envelope first = Make("data.refreshed", kAcme), second = Make("metadata.profile.failed", kAcme),
               other = Make("data.refreshed", kAcme), theirs = Make("data.refreshed", kB);
  first.set_correlation_id("chain-1");
  second.set_correlation_id("chain-1");
  *second.mutable_occurred_at() = testing::Ts(absl::Now());
  *first.mutable_occurred_at() = testing::Ts(absl::Now() - absl::Seconds(1));
  other.set_correlation_id("chain-2");
  theirs.set_correlation_id("chain-1");
  PublishAll({first, second, other, theirs});
  StoreAll(4);

  // The same answer as ListEvents over gRPC, in the protobuf JSON mapping's names.
  const HttpReply list =
      Request(Url("/v1/events?types=data.refreshed,metadata.profile.failed&limit=10"), testing::kTokenA);
  EXPECT_EQ(list.content_type, "application/json");
  EXPECT_THAT(list.body, HasSubstr("\"tenantId\":\"tenant-acme\""));
  EXPECT_THAT(list.body, Not(HasSubstr("tenant_id")));
  EXPECT_THAT(list.body, HasSubstr("\"severity\":\"EVENT_SEVERITY_ERROR\""));
  v1::EventFilter f;
  f.add_types("data.refreshed");
  f.add_types("metadata.profile.failed");
  EXPECT_EQ(IdsOf(list), ListAll(testing::kTokenA, f, 10));
  EXPECT_EQ(IdsOf(list).size(), 3u);
  // Repeated and comma-separated parameters mean the same; severities in either spelling.
  EXPECT_EQ(
      IdsOf(Request(Url("/v1/events?types=data.refreshed&types=metadata.profile.failed&limit=10"), testing::kTokenA)),
      IdsOf(list));
  EXPECT_EQ(IdsOf(Request(Url("/v1/events?severities=error"), testing::kTokenA)), std::vector{second.id()});
  EXPECT_EQ(IdsOf(Request(Url("/v1/events?severities=EVENT_SEVERITY_ERROR"), testing::kTokenA)),
            std::vector{second.id()});
  EXPECT_EQ(IdsOf(Request(Url(Cat("/v1/events?jsonPath=", Escape("$.rowsAffected ? (@.double() >= 0)"),
                                  "&correlationId=chain-1")),
                          testing::kTokenA)),
            std::vector{first.id()});
  // Paging by cursor.
  const HttpReply page1 = Request(Url("/v1/events?limit=2"), testing::kTokenA);
  v1::ListEventsResponse p1;
  ASSERT_TRUE(contracts::FromJson(page1.body, p1).ok()) << page1.body;
  ASSERT_TRUE(p1.has_more());
  const auto rest = IdsOf(Request(Url(Cat("/v1/events?limit=2&cursor=", Escape(p1.next_cursor()))), testing::kTokenA));
  EXPECT_EQ(p1.events_size() + rest.size(), 3u);

  // Tenant B sees its own event only, whatever it asks for.
  EXPECT_EQ(IdsOf(Request(Url("/v1/events"), testing::kTokenB)), std::vector{theirs.id()});
  EXPECT_EQ(Request(Url("/v1/events?tenantIds=tenant-acme"), testing::kTokenB).status, 403);

  // One event with its chain: the tenant's events of its correlation id, oldest first.
  const HttpReply one = Request(Url(Cat("/v1/events/", second.id())), testing::kTokenA);
  ASSERT_EQ(one.status, 200) << one.body;
  v1::GetEventResponse got;
  ASSERT_TRUE(contracts::FromJson(one.body, got).ok()) << one.body;
  EXPECT_EQ(got.event().envelope().id(), second.id());
  EXPECT_EQ(got.event().severity(), v1::EVENT_SEVERITY_ERROR);
  ASSERT_EQ(got.chain_size(), 2) << one.body;
  EXPECT_EQ(got.chain(0).envelope().id(), first.id());
  EXPECT_EQ(got.chain(1).envelope().id(), second.id());
  EXPECT_FALSE(got.chain_truncated());
  // Another tenant's id is not found, not forbidden: ids do not leak across tenants.
  const HttpReply hidden = Request(Url(Cat("/v1/events/", second.id())), testing::kTokenB);
  EXPECT_EQ(hidden.status, 404) << hidden.body;
  EXPECT_EQ(ErrorOf(hidden).fields().at("status").string_value(), "NOT_FOUND");
  // A token of every tenant names the tenant.
  const HttpReply ops = Request(Url(Cat("/v1/events/", second.id())), testing::kTokenOps);
  EXPECT_EQ(ops.status, 400);
  EXPECT_EQ(FirstViolationField(ops), "tenant_id");
  EXPECT_EQ(Request(Url(Cat("/v1/events/", second.id(), "?tenantId=tenant-acme")), testing::kTokenOps).status, 200);

  // Health: the caller's sources only.
  const HttpReply health = Request(Url("/v1/health"), testing::kTokenB);
  ASSERT_EQ(health.status, 200) << health.body;
  v1::GetEventHealthResponse h;
  ASSERT_TRUE(contracts::FromJson(health.body, h).ok()) << health.body;
  for (const auto& s : h.sources()) EXPECT_EQ(s.tenant_id(), kB);
}

TEST_F(HttpApiTest, ErrorsAreJsonNamingTheFieldAndNeverDatabaseText) {
  ASSERT_GT(gateway_->http_port(), 0);
  struct Case {
    const char* path;
    const char* token;
    long status;
    const char* code;
    const char* field;
  };
  const Case cases[] = {
      {"/v1/events", nullptr, 401, "UNAUTHENTICATED", ""},
      {"/v1/events", "not-a-token", 401, "UNAUTHENTICATED", ""},
      {"/v1/events?jsonPath=%24.%5B", testing::kTokenA, 400, "INVALID_ARGUMENT", "filter.json_path"},
      {"/v1/events?types=data.exploded", testing::kTokenA, 400, "INVALID_ARGUMENT", "filter.types[0]"},
      {"/v1/events?severities=info,loud", testing::kTokenA, 400, "INVALID_ARGUMENT", "filter.severities[1]"},
      {"/v1/events?limit=ten", testing::kTokenA, 400, "INVALID_ARGUMENT", "limit"},
      {"/v1/events?limit=500", testing::kTokenA, 400, "INVALID_ARGUMENT", "limit"},
      {"/v1/events?limit=1&limit=2", testing::kTokenA, 400, "INVALID_ARGUMENT", "limit"},
      {"/v1/events?tenant_ids=tenant-acme", testing::kTokenA, 400, "INVALID_ARGUMENT", "tenant_ids"},
      {"/v1/events?fromTime=yesterday", testing::kTokenA, 400, "INVALID_ARGUMENT", "filter.from_time"},
      {"/v1/events?cursor=forged", testing::kTokenA, 400, "INVALID_ARGUMENT", "cursor"},
      {"/v1/events/not-a-uuid", testing::kTokenA, 400, "INVALID_ARGUMENT", "id"},
      {"/v1/events/0193a5f2-7c00-7000-8000-00000000dead", testing::kTokenA, 404, "NOT_FOUND", ""},
      {"/v1/live?jsonPath=%24", testing::kTokenA, 400, "INVALID_ARGUMENT", "filter.json_path"},
      {"/v1/live?tenantIds=tenant-b", testing::kTokenA, 403, "PERMISSION_DENIED", ""},
      {"/v1/nothing", testing::kTokenA, 404, "NOT_FOUND", ""},
  };
  for (const auto& c : cases) {
    const HttpReply r = Request(Url(c.path), c.token);
    EXPECT_EQ(r.status, c.status) << c.path << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/json") << c.path;
    const auto error = ErrorOf(r);
    EXPECT_EQ(error.fields().at("status").string_value(), c.code) << c.path << ": " << r.body;
    EXPECT_EQ(error.fields().at("code").number_value(), static_cast<double>(c.status)) << c.path;
    EXPECT_EQ(FirstViolationField(r), c.field) << c.path << ": " << r.body;
    // PostgreSQL's words never reach a caller.
    EXPECT_THAT(r.body, Not(HasSubstr("syntax error"))) << c.path;
    EXPECT_THAT(r.body, Not(HasSubstr("jsonpath"))) << c.path;
  }
  // Only GET is served, and without a body (the library would leave it unread).
  EXPECT_NE(Request(Url("/v1/events"), testing::kTokenA, "DELETE").status, 200);
  const std::string smuggled = "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n";
  const HttpReply with_body = Request(Url("/v1/events"), testing::kTokenA, "GET", &smuggled);
  EXPECT_EQ(with_body.status, 400) << with_body.body;
  EXPECT_EQ(ErrorOf(with_body).fields().at("status").string_value(), "INVALID_ARGUMENT");
  // The library's own refusal (a request line over its limit) is JSON with its status.
  const HttpReply long_uri = Request(Url("/v1/events?types=" + std::string(20000, 'x')), testing::kTokenA);
  EXPECT_GE(long_uri.status, 400);
  EXPECT_EQ(ErrorOf(long_uri).fields().at("code").number_value(), static_cast<double>(long_uri.status))
      << long_uri.body;
}

TEST_F(HttpApiTest, AnswersMatchTheOpenApiDocument) {
  ASSERT_GT(gateway_->http_port(), 0);
  v1::Envelope failed = Make("metadata.profile.failed", kAcme), refreshed = Make("data.refreshed", kAcme);
  failed.set_correlation_id("openapi-chain");
  refreshed.set_correlation_id("openapi-chain");
  PublishAll({failed, refreshed});
  StoreAll(2);
  // One answer of each operation and status, as openapi_check.py reads them.
  testing::OpenApiSamples samples;
  samples.Keep("listEvents", Request(Url("/v1/events?limit=1"), testing::kTokenA));
  samples.Keep("listEvents", Request(Url("/v1/events?jsonPath=%24.%5B"), testing::kTokenA));
  samples.Keep("listEvents", Request(Url("/v1/events"), nullptr));
  samples.Keep("getEvent", Request(Url(Cat("/v1/events/", failed.id())), testing::kTokenA));
  samples.Keep("getEvent", Request(Url("/v1/events/0193a5f2-7c00-7000-8000-00000000dead"), testing::kTokenA));
  samples.Keep("getEventHealth", Request(Url("/v1/health"), testing::kTokenOps));
  samples.Keep("live", Request(Url("/v1/live?tenantIds=tenant-b"), testing::kTokenA));
  auto [rc, out] = samples.Check();
  EXPECT_EQ(rc, 0) << out;
  for (const char* sample : {"listEvents.200", "listEvents.400", "listEvents.401", "getEvent.200", "getEvent.404",
                             "getEventHealth.200", "live.403"})
    EXPECT_THAT(out, HasSubstr(Cat("ok: ", sample, ".json"))) << out;
}

// A GET /v1/live read on a thread of its own until Stop(); what arrived is in text().
class LiveReader {
 public:
  LiveReader(const std::string& url, const char* token) {
    thread_ = std::thread([this, url, header = Cat("Authorization: Bearer ", token)] {
      CURL* curl = curl_easy_init();
      curl_slist* headers = curl_slist_append(nullptr, header.c_str());
      curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnData);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, this);
      // Progress calls come at least once a second: how Stop() ends a quiet feed.
      curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
      curl_easy_setopt(curl, CURLOPT_XFERINFODATA, this);
      curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
      curl_easy_perform(curl);
      long status = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      status_ = status;
      curl_slist_free_all(headers);
      curl_easy_cleanup(curl);
      done_ = true;
    });
  }
  ~LiveReader() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::string text() {
    std::lock_guard lock(mu_);
    return text_;
  }
  bool WaitFor(const std::string& want, absl::Duration within) {
    for (const absl::Time deadline = absl::Now() + within; absl::Now() < deadline;
         absl::SleepFor(absl::Milliseconds(20)))
      if (text().find(want) != std::string::npos) return true;
    return false;
  }
  bool done() const { return done_; }
  long status() const { return status_; }

 private:
  static size_t OnData(char* data, size_t size, size_t n, void* self) {
    auto* r = static_cast<LiveReader*>(self);
    std::lock_guard lock(r->mu_);
    r->text_.append(data, size * n);
    return r->stop_ ? 0 : size * n;  // 0: abort the transfer
  }
  static int OnProgress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<LiveReader*>(self)->stop_ ? 1 : 0;
  }
  std::mutex mu_;
  std::string text_;
  std::atomic<bool> stop_{false}, done_{false};
  std::atomic<long> status_{0};
  std::thread thread_;
};

TEST_F(HttpApiTest, LiveFeedStreamsTheCallersNewEventsAsServerSentEvents) {
  ASSERT_GT(gateway_->http_port(), 0);
  LiveReader live(Url("/v1/live?types=data.refreshed"), testing::kTokenA);
  ASSERT_TRUE(live.WaitFor(": live\n\n", absl::Seconds(20))) << "the feed never went live: " << live.text();

  const v1::Envelope theirs = Make("data.refreshed", kB), other_type = Make("metadata.changed", kAcme),
                     mine = Make("data.refreshed", kAcme);
  const absl::Time sent = absl::Now();
  PublishAll({theirs, other_type, mine});
  EXPECT_TRUE(live.WaitFor(Cat("id: ", mine.id(), "\nevent: event\ndata: {"), absl::Seconds(2)))
      << "the caller's event did not arrive within 2 s: " << live.text();
  const absl::Duration took = absl::Now() - sent;
  live.Stop();
  EXPECT_EQ(live.status(), 200);
  const std::string received = live.text();
  EXPECT_THAT(received, Not(HasSubstr(theirs.id())));
  EXPECT_THAT(received, Not(HasSubstr(other_type.id())));
  // The data line is the StoredEvent in the protobuf JSON mapping.
  const size_t at = received.find(Cat("id: ", mine.id()));
  ASSERT_NE(at, std::string::npos);
  const size_t data = received.find("data: ", at) + 6;
  v1::StoredEvent e;
  ASSERT_TRUE(contracts::FromJson(received.substr(data, received.find('\n', data) - data), e).ok()) << received;
  EXPECT_EQ(e.envelope().id(), mine.id());
  EXPECT_EQ(e.severity(), v1::EVENT_SEVERITY_INFO);
  std::printf("live feed: event seen %s after publishing\n", absl::FormatDuration(took).c_str());
}

TEST_F(HttpApiTest, LiveFeedsAreCappedAndAClosedOneGivesItsPlaceBack) {
  ASSERT_GT(gateway_->http_port(), 0);
  // http_threads 4: two live feeds at once; a third is RESOURCE_EXHAUSTED (429) while
  // lists are still answered.
  auto a = std::make_unique<LiveReader>(Url("/v1/live"), testing::kTokenA);
  LiveReader b(Url("/v1/live"), testing::kTokenB);
  ASSERT_TRUE(a->WaitFor(": live", absl::Seconds(20)));
  ASSERT_TRUE(b.WaitFor(": live", absl::Seconds(20)));
  const HttpReply third = Request(Url("/v1/live"), testing::kTokenA);
  EXPECT_EQ(third.status, 429) << third.body;
  EXPECT_EQ(ErrorOf(third).fields().at("status").string_value(), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(Request(Url("/v1/health"), testing::kTokenA).status, 200) << "feeds leave threads for other requests";

  // A client that goes away: the gateway notices at its next keepalive and frees the place.
  a.reset();
  bool reopened = false;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(15); !reopened && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(250))) {
    LiveReader again(Url("/v1/live"), testing::kTokenA);
    reopened = again.WaitFor(": live", absl::Seconds(2));
  }
  EXPECT_TRUE(reopened) << "the closed feed's place never came back";
}

}  // namespace
}  // namespace sluice
