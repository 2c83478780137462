// The gateway's HTTP/JSON API (gateway/http_api.h) against the real local Kafka and
// PostgreSQL, through libcurl: the event log, one event with its chain, health, the live
// feed as Server-Sent Events, tenant isolation, and errors as JSON naming the field.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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
  samples.Keep("getCatalog", Request(Url("/v1/catalog"), testing::kTokenA));
  const std::string view = R"({"name": "openapi", "description": "d", "visibility": "SAVED_VIEW_VISIBILITY_SHARED",
      "filter": {"types": ["metadata.profile.failed"], "severities": ["EVENT_SEVERITY_ERROR"], "jsonPath": "$.attempt"}})";
  const HttpReply created = Request(Url("/v1/views"), testing::kTokenA, "POST", &view);
  samples.Keep("createSavedView", created);
  samples.Keep("createSavedView", Request(Url("/v1/views"), testing::kTokenA, "POST", &view));
  v1::CreateSavedViewResponse made;
  ASSERT_TRUE(contracts::FromJson(created.body, made).ok()) << created.body;
  samples.Keep("useSavedView", Request(Url(Cat("/v1/views/", made.view().id(), "/use")), testing::kTokenA, "POST"));
  samples.Keep("listSavedViews", Request(Url("/v1/views"), testing::kTokenA));
  samples.Keep("deleteSavedView", Request(Url(Cat("/v1/views/", made.view().id())), testing::kTokenSteward, "DELETE"));
  samples.Keep("deleteSavedView", Request(Url(Cat("/v1/views/", made.view().id())), testing::kTokenA, "DELETE"));
  auto [rc, out] = samples.Check();
  EXPECT_EQ(rc, 0) << out;
  for (const char* sample :
       {"listEvents.200", "listEvents.400", "listEvents.401", "getEvent.200", "getEvent.404", "getEventHealth.200",
        "live.403", "getCatalog.200", "createSavedView.201", "createSavedView.409", "useSavedView.200",
        "listSavedViews.200", "deleteSavedView.403", "deleteSavedView.200"})
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

// A saved view from a reply, checked to parse.
v1::SavedView ViewOf(const HttpReply& r) {
  v1::CreateSavedViewResponse view;
  EXPECT_TRUE(contracts::FromJson(r.body, view).ok()) << r.body;
  return view.view();
}

std::vector<std::string> ViewNames(const HttpReply& r) {
  EXPECT_EQ(r.status, 200) << r.body;
  v1::ListSavedViewsResponse list;
  EXPECT_TRUE(contracts::FromJson(r.body, list).ok()) << r.body;
  std::vector<std::string> names;
  for (const auto& v : list.views()) names.push_back(v.name());
  return names;
}

TEST_F(HttpApiTest, SavedViewsArePrivateOrSharedWithinTheirTenantAndCountTheirUse) {
  ASSERT_GT(gateway_->http_port(), 0);
  v1::Envelope failed = Make("metadata.profile.failed", kAcme), refreshed = Make("data.refreshed", kAcme),
               theirs = Make("metadata.profile.failed", kB);
  *failed.mutable_occurred_at() = testing::Ts(absl::Now());
  *refreshed.mutable_occurred_at() = testing::Ts(absl::Now());
  *theirs.mutable_occurred_at() = testing::Ts(absl::Now());
  PublishAll({failed, refreshed, theirs});
  StoreAll(3);

  // "a" saves a private view and a shared one; a token of one tenant need not name it.
  const std::string mine = R"({"name": "failures", "description": "profiles that failed",
      "filter": {"types": ["metadata.profile.failed", "data.refreshed"], "severities": ["EVENT_SEVERITY_ERROR"]}})";
  const HttpReply created = Request(Url("/v1/views"), testing::kTokenA, "POST", &mine);
  ASSERT_EQ(created.status, 201) << created.body;
  const v1::SavedView view = ViewOf(created);
  EXPECT_EQ(view.tenant_id(), kAcme);
  EXPECT_EQ(view.owner(), "a");
  EXPECT_EQ(view.visibility(), v1::SAVED_VIEW_VISIBILITY_PRIVATE);
  EXPECT_EQ(view.filter().types_size(), 2);
  // Its last 15 minutes: the one failed profile of acme (the refresh is not an error, and
  // tenant-b's failure is another tenant's).
  EXPECT_EQ(view.recent().events(), 1) << created.body;
  EXPECT_EQ(view.recent().errors(), 1);
  EXPECT_DOUBLE_EQ(view.recent().error_ratio(), 1.0);
  EXPECT_DOUBLE_EQ(view.recent().events_per_minute(), 1.0 / 15);
  const std::string shared =
      R"({"tenantId": "tenant-acme", "name": "everything", "visibility": "SAVED_VIEW_VISIBILITY_SHARED"})";
  const HttpReply created_shared = Request(Url("/v1/views"), testing::kTokenA, "POST", &shared);
  ASSERT_EQ(created_shared.status, 201) << created_shared.body;
  const v1::SavedView everything = ViewOf(created_shared);
  EXPECT_EQ(everything.recent().events(), 2) << created_shared.body;
  EXPECT_EQ(everything.recent().errors(), 1);
  EXPECT_DOUBLE_EQ(everything.recent().error_ratio(), 0.5);

  // The owner sees both; another caller of the tenant the shared one only; another tenant
  // neither, and cannot ask for acme's.
  EXPECT_EQ(ViewNames(Request(Url("/v1/views"), testing::kTokenA)),
            (std::vector<std::string>{"everything", "failures"}));
  EXPECT_EQ(ViewNames(Request(Url("/v1/views"), testing::kTokenSteward)), std::vector<std::string>{"everything"});
  EXPECT_EQ(ViewNames(Request(Url("/v1/views"), testing::kTokenB)), std::vector<std::string>{});
  EXPECT_EQ(Request(Url("/v1/views?tenantId=tenant-acme"), testing::kTokenB).status, 403);
  EXPECT_EQ(Request(Url(Cat("/v1/views/", view.id(), "/use?tenantId=tenant-acme")), testing::kTokenB, "POST").status,
            403);
  // b's own tenant has no such view: not found, as for an id that never existed.
  EXPECT_EQ(Request(Url(Cat("/v1/views/", view.id(), "/use")), testing::kTokenB, "POST").status, 404);
  // The steward cannot use a's private view, nor delete the shared one; a token of every
  // tenant names the tenant.
  EXPECT_EQ(Request(Url(Cat("/v1/views/", view.id(), "/use")), testing::kTokenSteward, "POST").status, 404);
  const HttpReply not_owner = Request(Url(Cat("/v1/views/", everything.id())), testing::kTokenSteward, "DELETE");
  EXPECT_EQ(not_owner.status, 403) << not_owner.body;
  EXPECT_EQ(FirstViolationField(Request(Url("/v1/views"), testing::kTokenOps)), "tenant_id");

  // Using a view counts, whoever may see it.
  const HttpReply used = Request(Url(Cat("/v1/views/", everything.id(), "/use")), testing::kTokenSteward, "POST");
  ASSERT_EQ(used.status, 200) << used.body;
  EXPECT_EQ(ViewOf(used).use_count(), 1);
  EXPECT_TRUE(ViewOf(used).has_last_used_at());
  EXPECT_EQ(ViewOf(Request(Url(Cat("/v1/views/", everything.id(), "/use")), testing::kTokenA, "POST")).use_count(), 2);

  // The same name twice for one owner is refused; another owner may use it.
  const HttpReply again = Request(Url("/v1/views"), testing::kTokenA, "POST", &mine);
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_EQ(Request(Url("/v1/views"), testing::kTokenSteward, "POST", &mine).status, 201);

  // The owner deletes; then it is gone for everyone.
  EXPECT_EQ(Request(Url(Cat("/v1/views/", everything.id())), testing::kTokenA, "DELETE").status, 200);
  EXPECT_EQ(ViewNames(Request(Url("/v1/views"), testing::kTokenSteward)), std::vector<std::string>{"failures"});
  EXPECT_EQ(Request(Url(Cat("/v1/views/", everything.id())), testing::kTokenA, "DELETE").status, 404);

  // The same calls over gRPC.
  v1::ListSavedViewsResponse listed;
  ASSERT_TRUE(query_->ListSavedViews(Ctx(testing::kTokenA).get(), {}, &listed).ok());
  ASSERT_EQ(listed.views_size(), 1);
  EXPECT_EQ(listed.views(0).id(), view.id());
  v1::DeleteSavedViewRequest del;
  del.set_id(view.id());
  v1::DeleteSavedViewResponse deleted;
  EXPECT_EQ(query_->DeleteSavedView(Ctx(testing::kTokenSteward).get(), del, &deleted).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(query_->DeleteSavedView(Ctx(testing::kTokenA).get(), del, &deleted).ok());
}

TEST_F(HttpApiTest, SavedViewsAreCheckedFieldByFieldAndBounded) {
  ASSERT_GT(gateway_->http_port(), 0);
  struct Case {
    std::string body;
    long status;
    const char* field;
  };
  const Case cases[] = {
      {R"({"name": ""})", 400, "name"},
      {Cat(R"({"name": ")", std::string(101, 'n'), R"("})"), 400, "name"},
      {R"({"name": "tab\there"})", 400, "name"},
      {Cat(R"({"name": "n", "description": ")", std::string(1001, 'd'), R"("})"), 400, "description"},
      {R"({"name": "n", "filter": {"types": ["data.exploded"]}})", 400, "filter.types[0]"},
      {R"({"name": "n", "filter": {"tenantIds": ["tenant-b"]}})", 400, "filter.tenant_ids[0]"},
      {R"({"name": "n", "filter": {"jsonPath": "$.["}})", 400, "filter.json_path"},
      {R"({"name": "n", "filter": {"fromTime": "2026-01-02T00:00:00Z", "toTime": "2026-01-01T00:00:00Z"}})", 400,
       "filter.to_time"},
      {R"({"tenantId": "tenant-b", "name": "n"})", 403, ""},
      {R"({"name": "n", "colour": "red"})", 400, "body"},
      {R"(not json)", 400, "body"},
  };
  for (const auto& c : cases) {
    const HttpReply r = Request(Url("/v1/views"), testing::kTokenA, "POST", &c.body);
    EXPECT_EQ(r.status, c.status) << c.body << ": " << r.body;
    EXPECT_EQ(FirstViolationField(r), c.field) << c.body << ": " << r.body;
    EXPECT_THAT(r.body, Not(HasSubstr("syntax error"))) << c.body;
  }
  // Every violation of one request in one answer.
  const std::string many = R"({"name": "", "filter": {"types": ["nope"], "tenantIds": ["tenant-b"]}})";
  const HttpReply all = Request(Url("/v1/views"), testing::kTokenA, "POST", &many);
  EXPECT_EQ(all.status, 400);
  EXPECT_THAT(all.body, HasSubstr("\"field\":\"name\""));
  EXPECT_THAT(all.body, HasSubstr("\"field\":\"filter.tenant_ids[0]\""));
  // A body only as JSON, on the one route that takes one, and not past 32 KiB.
  const std::string body = R"({"name": "n"})";
  EXPECT_EQ(Request(Url("/v1/views"), testing::kTokenA, "POST", &body, "text/plain").status, 400);
  EXPECT_EQ(Request(Url("/v1/views/0193a5f2-7c00-7000-8000-00000000dead/use"), testing::kTokenA, "POST", &body).status,
            400);
  const std::string huge = Cat(R"({"name": "n", "description": ")", std::string(40000, 'd'), R"("})");
  EXPECT_EQ(Request(Url("/v1/views"), testing::kTokenA, "POST", &huge).status, 413);
  EXPECT_EQ(Request(Url("/v1/views/not-a-uuid/use"), testing::kTokenA, "POST").status, 400);
  // A POST without a Content-Length is refused at once (411), not read until the client
  // closes: the connection stays open here while the answer comes.
  {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(gateway_->http_port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const std::string head = "POST /v1/views HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n{";
    ASSERT_EQ(send(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
    timeval two_s{.tv_sec = 2, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &two_s, sizeof(two_s));
    char buf[256] = {};
    const ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    ASSERT_GT(n, 0) << "no answer within 2 s: the server waits for the body to end";
    EXPECT_THAT(std::string(buf, static_cast<size_t>(n)), ::testing::StartsWith("HTTP/1.1 411"));
  }
  // At most 100 views per owner and tenant.
  for (int i = 0; i < 100; ++i) {
    const std::string v = Cat(R"({"name": "view )", i, R"("})");
    ASSERT_EQ(Request(Url("/v1/views"), testing::kTokenA, "POST", &v).status, 201) << i;
  }
  const std::string one_more = R"({"name": "one more"})";
  const HttpReply full = Request(Url("/v1/views"), testing::kTokenA, "POST", &one_more);
  EXPECT_EQ(full.status, 429) << full.body;
  EXPECT_EQ(Request(Url("/v1/views"), testing::kTokenSteward, "POST", &one_more).status, 201)
      << "the limit is per owner";
}

TEST_F(HttpApiTest, HealthShowsTheRelayBacklogProfileJobsAndHowLateEventsArrive) {
  ASSERT_GT(gateway_->http_port(), 0);
  // Two unsent outbox rows of acme (one failed once), one of tenant-b, one sent; profile
  // jobs of acme: one pending, one waiting for its retry, one running, one done.
  auto ok = conn_->Exec(
      "INSERT INTO event_outbox (event_id, tenant_id, event_type, envelope, created_at, attempts, sent_at) VALUES"
      " (gen_random_uuid(), 'tenant-acme', 'approval.created', '\\x00', now() - interval '90 seconds', 1, NULL),"
      " (gen_random_uuid(), 'tenant-acme', 'approval.created', '\\x00', now() - interval '10 seconds', 0, NULL),"
      " (gen_random_uuid(), 'tenant-b', 'approval.created', '\\x00', now(), 0, NULL),"
      " (gen_random_uuid(), 'tenant-acme', 'approval.created', '\\x00', now() - interval '1 hour', 0, now())");
  ASSERT_TRUE(ok.ok()) << ok.status();
  const char* job =
      "INSERT INTO mdm_profile_job (tenant_id, entity_type, entity_id, canonical_key, tier, reason, priority, status,"
      " trigger_event_id, trigger_type, correlation_id, actor_id, actor_type, attempts, max_attempts, next_attempt_at,"
      " lease_token) VALUES ('tenant-acme', 'metadata', gen_random_uuid(), 'k', 'tier1', 'due', 'high', $1, 'e',"
      " 'metadata.profile.due', 'c', 'x', 'system', $2::int, 3, now() + interval '5 minutes',"
      " CASE WHEN $1 = 'running' THEN gen_random_uuid() END)";
  for (const auto& [status, attempts] : std::vector<std::pair<std::string, std::string>>{
           {"pending", "0"}, {"pending", "1"}, {"running", "1"}, {"succeeded", "1"}}) {
    auto r = conn_->Exec(job, {status, attempts});
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // Events through the gateway, one occurred 3 s before it was sent.
  v1::Envelope late = Make("data.refreshed", kAcme), prompt = Make("data.refreshed", kAcme);
  late.set_source("etl.pipeline");
  prompt.set_source("etl.pipeline");
  *late.mutable_occurred_at() = testing::Ts(absl::Now() - absl::Seconds(3));
  for (v1::Envelope* e : {&late, &prompt}) {
    if (e == &prompt) *prompt.mutable_occurred_at() = testing::Ts(absl::Now());
    v1::PublishRequest req;
    *req.mutable_envelope() = *e;
    v1::PublishResponse resp;
    ASSERT_TRUE(events_->Publish(Ctx(testing::kTokenA).get(), req, &resp).ok());
  }

  const HttpReply reply = Request(Url("/v1/health"), testing::kTokenA);
  ASSERT_EQ(reply.status, 200) << reply.body;
  v1::GetEventHealthResponse h;
  ASSERT_TRUE(contracts::FromJson(reply.body, h).ok()) << reply.body;
  ASSERT_EQ(h.outbox_size(), 1) << reply.body;  // acme's only
  EXPECT_EQ(h.outbox(0).tenant_id(), kAcme);
  EXPECT_EQ(h.outbox(0).unsent(), 2);
  EXPECT_EQ(h.outbox(0).retrying(), 1);
  const absl::Duration oldest =
      absl::Now() -
      absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(h.outbox(0).oldest_unsent()));
  EXPECT_GE(oldest, absl::Seconds(89));
  EXPECT_LT(oldest, absl::Seconds(150));
  ASSERT_EQ(h.profile_jobs_size(), 1) << reply.body;
  EXPECT_EQ(h.profile_jobs(0).pending(), 1);
  EXPECT_EQ(h.profile_jobs(0).waiting_retry(), 1);
  EXPECT_EQ(h.profile_jobs(0).running(), 1);
  EXPECT_TRUE(h.profile_jobs(0).has_next_retry());
  const v1::SourceActivity* etl = nullptr;
  for (const auto& s : h.sources())
    if (s.source() == "etl.pipeline") etl = &s;
  ASSERT_NE(etl, nullptr) << reply.body;
  using google::protobuf::util::TimeUtil;
  const int64_t max_ms = TimeUtil::DurationToMilliseconds(etl->lag_max());
  const int64_t avg_ms = TimeUtil::DurationToMilliseconds(etl->lag_avg());
  const int64_t latest_ms = TimeUtil::DurationToMilliseconds(etl->lag_latest());
  EXPECT_GE(max_ms, 3000) << reply.body;
  EXPECT_LT(max_ms, 10000) << reply.body;
  EXPECT_GE(avg_ms, 1500) << reply.body;  // (3 s + ~0) / 2
  EXPECT_LT(avg_ms, max_ms) << reply.body;
  EXPECT_LT(latest_ms, 1500) << reply.body;  // the prompt one, sent last

  // tenant-b sees its own backlog and none of acme's.
  v1::GetEventHealthResponse hb;
  ASSERT_TRUE(contracts::FromJson(Request(Url("/v1/health"), testing::kTokenB).body, hb).ok());
  ASSERT_EQ(hb.outbox_size(), 1);
  EXPECT_EQ(hb.outbox(0).tenant_id(), kB);
  EXPECT_EQ(hb.profile_jobs_size(), 0);
}

TEST_F(HttpApiTest, TheExplorerIsServedFromTheBinaryWithAStrictPolicy) {
  ASSERT_GT(gateway_->http_port(), 0);
  const HttpReply root = Request(Url("/"), nullptr);
  EXPECT_EQ(root.status, 302);
  EXPECT_EQ(root.location, Url("/explorer/"));
  const HttpReply page = Request(Url("/explorer/"), nullptr);  // no token needed for the files
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_THAT(page.body, HasSubstr("<script type=\"module\" src=\"app.js\"></script>"));
  EXPECT_THAT(page.headers, HasSubstr("Content-Security-Policy: default-src 'none'; script-src 'self'"));
  EXPECT_THAT(page.headers, HasSubstr("X-Frame-Options: DENY"));
  // Nothing from elsewhere: no absolute URL in the page or its script.
  const HttpReply script = Request(Url("/explorer/app.js"), nullptr);
  ASSERT_EQ(script.status, 200);
  EXPECT_EQ(script.content_type, "text/javascript; charset=utf-8");
  for (const auto* body : {&page.body, &script.body}) EXPECT_THAT(*body, Not(HasSubstr("https://")));
  EXPECT_EQ(Request(Url("/explorer/app.css"), nullptr).content_type, "text/css; charset=utf-8");
  EXPECT_EQ(Request(Url("/explorer/../openapi.yaml"), nullptr).status, 404);
  EXPECT_EQ(Request(Url("/explorer/nope.js"), nullptr).status, 404);
  // The data behind it still needs a token; the catalog lists what the filters take.
  EXPECT_EQ(Request(Url("/v1/catalog"), nullptr).status, 401);
  const HttpReply catalog = Request(Url("/v1/catalog"), testing::kTokenB);
  ASSERT_EQ(catalog.status, 200);
  v1::Catalog c;
  ASSERT_TRUE(contracts::FromJson(catalog.body, c).ok()) << catalog.body;
  EXPECT_EQ(static_cast<size_t>(c.event_types_size()), catalog_->routes().size());
  EXPECT_EQ(static_cast<size_t>(c.sources_size()), catalog_->sources().size());
}

}  // namespace
}  // namespace sluice
