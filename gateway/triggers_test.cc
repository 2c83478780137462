// TriggerService's checks that need no database: URLs, secrets, predicates, every wrong
// field named at once.
#include "gateway/triggers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "contracts/validate.h"

namespace sluice::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Fields(const absl::Status& s) {
  std::vector<std::string> out;
  for (const auto& v : contracts::ViolationsOf(s)) out.push_back(v.field);
  return out;
}

TEST(TriggerUrlTest, HttpsOnlyHttpToLoopbackWhenAllowed) {
  for (const char* ok : {"https://hooks.example.com/sluice", "https://hooks.example.com:8443/a?b=c",
                         "https://[2001:db8::1]:443/x", "HTTPS://EXAMPLE.COM"})
    EXPECT_EQ(TriggerServiceImpl::UrlProblem(ok, false), "") << ok;
  EXPECT_EQ(TriggerServiceImpl::UrlProblem("http://127.0.0.1:8080/hook", true), "");
  EXPECT_EQ(TriggerServiceImpl::UrlProblem("http://[::1]:8080/hook", true), "");
  EXPECT_EQ(TriggerServiceImpl::UrlProblem("http://localhost/hook", true), "");
  EXPECT_THAT(TriggerServiceImpl::UrlProblem("http://127.0.0.1:8080/hook", false), HasSubstr("https://"));
  EXPECT_THAT(TriggerServiceImpl::UrlProblem("http://example.com/hook", true), HasSubstr("https://"));
  EXPECT_THAT(TriggerServiceImpl::UrlProblem("http://127.0.0.1.example.com/", true), HasSubstr("https://"));
  EXPECT_EQ(TriggerServiceImpl::UrlProblem("", false), "required");
  EXPECT_THAT(TriggerServiceImpl::UrlProblem("ftp://example.com/", false), HasSubstr("https://"));
  EXPECT_THAT(TriggerServiceImpl::UrlProblem("https://user:pw@example.com/", false), HasSubstr("user info"));
  EXPECT_THAT(TriggerServiceImpl::UrlProblem("https:///path", false), HasSubstr("no host"));
  EXPECT_THAT(TriggerServiceImpl::UrlProblem("https://example.com:0/", false), HasSubstr("port"));
  EXPECT_THAT(TriggerServiceImpl::UrlProblem("https://example.com:99999/", false), HasSubstr("port"));
  EXPECT_THAT(TriggerServiceImpl::UrlProblem("https://exa mple.com/", false), HasSubstr("space"));
  EXPECT_THAT(TriggerServiceImpl::UrlProblem("https://[::1/", false), HasSubstr("unclosed"));
  EXPECT_THAT(TriggerServiceImpl::UrlProblem("https://example.com/" + std::string(3000, 'a'), false),
              HasSubstr("longer"));
}

TEST(TriggerFieldsTest, EveryWrongFieldIsNamed) {
  const auto& catalog = contracts::Catalog::Default();
  v1::TriggerPredicate p;
  p.add_types("metadata.profile.failed");
  p.add_sources("agent.profiler");
  p.set_json_path("$.attempt ? (@ > 1)");
  v1::WebhookAction w;
  w.set_url("https://hooks.example.com/sluice");
  w.set_secret(std::string(32, 's'));
  EXPECT_TRUE(TriggerServiceImpl::CheckFields(catalog, {}, "failures", "", p, w, true).ok());

  v1::TriggerPredicate bad_p;
  bad_p.add_types("data.exploded");
  bad_p.add_sources("nobody");
  v1::WebhookAction bad_w;
  bad_w.set_url("http://hooks.example.com/");
  bad_w.set_secret("short");
  bad_w.set_timeout_ms(50);
  EXPECT_THAT(Fields(TriggerServiceImpl::CheckFields(catalog, {}, "", "bell\a", bad_p, bad_w, true)),
              ElementsAre("name", "description", "predicate.types[0]", "predicate.sources[0]", "webhook.url",
                          "webhook.secret", "webhook.timeout_ms"));
  // A secret is required at creation, may be left out of an update, and must be printable.
  v1::WebhookAction no_secret = w;
  no_secret.clear_secret();
  EXPECT_THAT(Fields(TriggerServiceImpl::CheckFields(catalog, {}, "n", "", p, no_secret, true)),
              ElementsAre("webhook.secret"));
  EXPECT_TRUE(TriggerServiceImpl::CheckFields(catalog, {}, "n", "", p, no_secret, false).ok());
  v1::WebhookAction spaced = w;
  spaced.set_secret(std::string(20, 'a') + " " + std::string(20, 'b'));
  EXPECT_THAT(Fields(TriggerServiceImpl::CheckFields(catalog, {}, "n", "", p, spaced, true)),
              ElementsAre("webhook.secret"));
  v1::WebhookAction huge = w;
  huge.set_secret(std::string(257, 's'));
  EXPECT_THAT(Fields(TriggerServiceImpl::CheckFields(catalog, {}, "n", "", p, huge, true)),
              ElementsAre("webhook.secret"));
  // The secret's value never appears in the error.
  EXPECT_THAT(std::string(TriggerServiceImpl::CheckFields(catalog, {}, "n", "", p, spaced, true).message()),
              ::testing::Not(HasSubstr("aaaaaaaaaa")));
}

}  // namespace
}  // namespace sluice::gateway
