// sluice::triggers without the stack: the CloudEvent body, its signature, which triggers
// an event matches by tenant, type and source, the retry decisions and back-off, and
// which webhook URLs are called.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstdlib>

#include "consumers/triggers/delivery_store.h"
#include "consumers/triggers/trigger_set.h"
#include "consumers/triggers/webhook.h"
#include "contracts/test_util.h"

namespace sluice::triggers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

TEST(Webhook, HmacIsRfc4231) {
  // RFC 4231, test case 2.
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Webhook, SignatureCoversTimestampAndBody) {
  const std::string sig = Signature("k3y", 1764583200, "{}");
  EXPECT_EQ(sig, "t=1764583200,v1=" + HmacSha256Hex("k3y", "1764583200.{}"));
  EXPECT_NE(sig, Signature("k3y", 1764583201, "{}"));
  EXPECT_NE(sig, Signature("k3y", 1764583200, "{ }"));
  EXPECT_NE(sig, Signature("other", 1764583200, "{}"));
}

TEST(Webhook, CloudEventIsStructuredJsonWithTheTypedPayload) {
  const v1::Envelope e = contracts::testing::Golden("data.refreshed");
  auto payload = PayloadJson(e);
  ASSERT_TRUE(payload.ok()) << payload.status();
  const std::string body = CloudEventJson(e, *payload);
  google::protobuf::Struct doc;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(body, &doc).ok()) << body;
  const auto& f = doc.fields();
  EXPECT_EQ(f.at("specversion").string_value(), "1.0");
  EXPECT_EQ(f.at("id").string_value(), e.id());
  EXPECT_EQ(f.at("type").string_value(), "data.refreshed");
  EXPECT_EQ(f.at("source").string_value(), "etl.pipeline");
  EXPECT_EQ(f.at("time").string_value(), "2025-12-01T10:00:00.009Z");
  EXPECT_EQ(f.at("datacontenttype").string_value(), "application/json");
  EXPECT_EQ(f.at("tenantid").string_value(), "tenant-acme");
  EXPECT_EQ(f.at("correlationid").string_value(), e.correlation_id());
  EXPECT_EQ(f.at("traceparent").string_value(), e.traceparent());
  EXPECT_FALSE(f.contains("causationid")) << "only attributes that are set";
  EXPECT_EQ(f.at("data").struct_value().fields().at("entityUrn").string_value(), "sales.transactions");
}

TEST(TriggerSet, MatchesOnlyTheEventsTenantThenTypeAndSource) {
  TriggerSet set;
  set.SetForTesting({{.tenant_id = "tenant-acme", .id = "any"},
                     {.tenant_id = "tenant-acme", .id = "refreshes", .types = {"data.refreshed"}},
                     {.tenant_id = "tenant-acme", .id = "from-crm", .sources = {"crm.sync"}},
                     {.tenant_id = "tenant-b", .id = "b-any"}});
  v1::Envelope e = contracts::testing::Golden("data.refreshed");
  std::vector<Match> m;
  set.MatchTypeAndSource(e, 7, m);
  std::vector<std::string> ids;
  for (const auto& x : m) {
    EXPECT_EQ(x.event, 7u);
    ids.push_back(set.triggers()[x.trigger].id);
  }
  EXPECT_THAT(ids, ElementsAre("any", "refreshes")) << "neither another source's nor tenant-b's";
  e.set_tenant_id("tenant-c");
  m.clear();
  set.MatchTypeAndSource(e, 0, m);
  EXPECT_THAT(m, IsEmpty()) << "a tenant without triggers matches none";
}

TEST(TriggerSet, MatchesEachOfSeveralTypesInTriggerOrderAndNoDerivedEventFiresAPublishingTrigger) {
  TriggerSet set;
  set.SetForTesting(
      {{.tenant_id = "t", .id = "two", .types = {"data.refreshed", "metadata.profile.due"}},
       {.tenant_id = "t", .id = "any"},
       {.tenant_id = "t", .id = "due", .types = {"metadata.profile.due"}},
       {.tenant_id = "t", .id = "derive", .kind = TriggerKind::kPublish, .types = {"metadata.profile.due"}},
       {.tenant_id = "t", .id = "derive-any", .kind = TriggerKind::kPublish}});
  auto ids = [&](const v1::Envelope& e) {
    std::vector<Match> m;
    set.MatchTypeAndSource(e, 0, m);
    std::vector<std::string> out;
    for (const auto& x : m) out.push_back(set.triggers()[x.trigger].id);
    return out;
  };
  v1::Envelope refreshed = contracts::testing::Golden("data.refreshed");
  refreshed.set_tenant_id("t");
  EXPECT_THAT(ids(refreshed), ElementsAre("two", "any", "derive-any"));
  v1::Envelope due = contracts::testing::Golden("metadata.profile.due");
  due.set_tenant_id("t");
  EXPECT_THAT(ids(due), ElementsAre("two", "any", "due", "derive", "derive-any"));
  due.set_source("sluice.triggers");
  EXPECT_THAT(ids(due), ElementsAre("two", "any", "due")) << "a derived event: webhooks only";
}

TEST(Delivery, TwoHundredsDeliverRetryablesRetryUntilTheLastAttempt) {
  DeliveryPolicy p;
  p.max_attempts = 3;
  EXPECT_EQ(Decide({.status_code = 204}, 1, p), Outcome::kDelivered);
  for (int code : {0, 408, 429, 500, 503}) EXPECT_EQ(Decide({.status_code = code}, 2, p), Outcome::kRetry) << code;
  EXPECT_EQ(Decide({.status_code = 503}, 3, p), Outcome::kFailed) << "the last attempt allowed";
  for (int code : {301, 400, 401, 404, 410})
    EXPECT_EQ(Decide({.status_code = code}, 1, p), Outcome::kFailed) << code << " will not change by retrying";
}

TEST(Delivery, BackoffDoublesUpToTheMaximumWithAFifthOfJitter) {
  DeliveryPolicy p;
  p.retry_base = absl::Seconds(1);
  p.retry_max = absl::Seconds(10);
  EXPECT_EQ(Backoff(1, p, 0), absl::Seconds(1));
  EXPECT_EQ(Backoff(2, p, 0), absl::Seconds(2));
  EXPECT_EQ(Backoff(4, p, 0), absl::Seconds(8));
  EXPECT_EQ(Backoff(5, p, 0), absl::Seconds(10));
  EXPECT_EQ(Backoff(60, p, 0), absl::Seconds(10)) << "no overflow";
  EXPECT_EQ(Backoff(2, p, 0.5), absl::Milliseconds(1800));
}

TEST(Webhook, OnlyHttpsOrLoopbackHttpWhenAllowed) {
  WebhookClient strict(false), loose(true);
  EXPECT_EQ(strict.UrlProblem("https://hooks.example.com/x"), "");
  EXPECT_THAT(strict.UrlProblem("http://127.0.0.1:8080/x"), HasSubstr("--allow-http-loopback"));
  EXPECT_EQ(loose.UrlProblem("http://127.0.0.1:8080/x"), "");
  EXPECT_EQ(loose.UrlProblem("http://[::1]:8080/x"), "");
  EXPECT_THAT(loose.UrlProblem("http://10.0.0.1/x"), HasSubstr("only on loopback"));
  EXPECT_THAT(loose.UrlProblem("ftp://127.0.0.1/x"), HasSubstr("only https"));
  EXPECT_EQ(loose.UrlProblem("not a url"), "not a URL");
}

TEST(Webhook, ARefusedUrlIsNotCalled) {
  WebhookClient strict(false);
  auto r = strict.Post({.url = "http://127.0.0.1:9/x", .secret = "s", .body = "{}", .event_id = "e"});
  EXPECT_EQ(r.status_code, 0);
  EXPECT_THAT(r.error, HasSubstr("refused URL"));
  EXPECT_FALSE(r.delivered());
}

sockaddr_storage Addr(const char* text) {
  sockaddr_storage out{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, text, &v6->sin6_addr), 1) << text;
    v6->sin6_family = AF_INET6;
  }
  return out;
}

TEST(Webhook, PrivateLoopbackAndLinkLocalAddressesAreRefused) {
  for (const char* a : {"10.0.0.1",
                        "10.255.255.255",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.1",
                        "169.254.169.254",
                        "100.64.0.1",
                        "0.0.0.0",
                        "224.0.0.1",
                        "255.255.255.255",
                        "127.0.0.1",
                        "127.9.9.9",
                        "::1",
                        "::",
                        "fd00::1",
                        "fc00::1",
                        "fe80::1",
                        "ff02::1",
                        "::ffff:10.0.0.1",
                        "::ffff:169.254.169.254",
                        "::ffff:127.0.0.1",
                        "64:ff9b::a00:1",
                        "64:ff9b:1::8.8.8.8"}) {
    const auto addr = Addr(a);
    EXPECT_TRUE(IsPrivateAddress(reinterpret_cast<const sockaddr*>(&addr), false)) << a;
  }
  for (const char* a : {"8.8.8.8", "172.15.255.255", "172.32.0.1", "192.169.0.1", "100.128.0.1", "169.253.0.1",
                        "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808"}) {
    const auto addr = Addr(a);
    EXPECT_FALSE(IsPrivateAddress(reinterpret_cast<const sockaddr*>(&addr), false)) << a;
  }
  // Loopback only when the caller allows it (local development and tests), nothing else.
  for (const char* a : {"127.0.0.1", "::1", "::ffff:127.0.0.1"}) {
    const auto addr = Addr(a);
    EXPECT_FALSE(IsPrivateAddress(reinterpret_cast<const sockaddr*>(&addr), true)) << a;
  }
  const auto ten = Addr("10.0.0.1");
  EXPECT_TRUE(IsPrivateAddress(reinterpret_cast<const sockaddr*>(&ten), true));
}

TEST(Webhook, APostToAPrivateAddressIsNeverSentAndNotRetried) {
  // A proxy would be the address checked.
  for (const char* v : {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "http_proxy"}) unsetenv(v);
  // Refused before connecting: nothing listens there, and nothing needs to.
  WebhookClient client(/*allow_http_loopback=*/true);
  for (const char* url : {"https://169.254.169.254/latest/meta-data", "https://10.1.2.3:8443/hook",
                          "https://[fd00::1]/hook", "https://[::ffff:192.168.0.1]/hook"}) {
    const WebhookResult r = client.Post({.url = url, .secret = "s", .timeout = absl::Seconds(2), .body = "{}"});
    EXPECT_EQ(r.status_code, 0) << url;
    EXPECT_THAT(r.error, HasSubstr("private")) << url;
    EXPECT_FALSE(r.retryable()) << url;
    EXPECT_LT(r.latency, absl::Seconds(1)) << url;
  }
  // Allowed: the address is tried (and, with nothing there, not reached).
  WebhookClient allowed(/*allow_http_loopback=*/false, /*allow_private=*/true);
  const WebhookResult r = allowed.Post(
      {.url = "https://[::ffff:127.0.0.1]:9/hook", .secret = "s", .timeout = absl::Seconds(2), .body = "{}"});
  EXPECT_THAT(r.error, Not(HasSubstr("private")));
  EXPECT_TRUE(r.retryable());
}

}  // namespace
}  // namespace sluice::triggers
