// The checks of saved views that need no database, and the arrival lag of SourceActivity.
#include "gateway/saved_views.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "contracts/validate.h"
#include "gateway/source_activity.h"

namespace sluice::gateway {
namespace {

using ::testing::ElementsAre;

v1::Principal Of(std::initializer_list<const char*> tenants) {
  v1::Principal p;
  p.set_name("analyst");
  for (const char* t : tenants) p.add_tenants(t);
  return p;
}

std::vector<std::string> Fields(const absl::Status& s) {
  std::vector<std::string> out;
  for (const auto& v : contracts::ViolationsOf(s)) out.push_back(v.field);
  return out;
}

class SavedViewCheckTest : public ::testing::Test {
 protected:
  absl::Status Check(const v1::CreateSavedViewRequest& req, const v1::Principal& who) const {
    return SavedViews::CheckCreate(catalog_, authz_, who, "tenant-acme", req);
  }
  const contracts::Catalog& catalog_ = contracts::Catalog::Default();
  contracts::Authorizer authz_{catalog_};
};

TEST_F(SavedViewCheckTest, TheTenantIsTheRequestsOrTheTokensOnly) {
  EXPECT_EQ(*SavedViews::TenantOf(authz_, Of({"tenant-acme"}), ""), "tenant-acme");
  EXPECT_EQ(*SavedViews::TenantOf(authz_, Of({"tenant-acme", "tenant-b"}), "tenant-b"), "tenant-b");
  auto several = SavedViews::TenantOf(authz_, Of({"tenant-acme", "tenant-b"}), "");
  EXPECT_EQ(contracts::FieldPathOf(several.status()).value_or(""), "tenant_id");
  EXPECT_EQ(contracts::FieldPathOf(SavedViews::TenantOf(authz_, Of({"*"}), "").status()).value_or(""), "tenant_id");
  EXPECT_EQ(SavedViews::TenantOf(authz_, Of({"tenant-acme"}), "tenant-b").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(SavedViews::TenantOf(authz_, Of({"*"}), std::string(65, 't')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SavedViewCheckTest, EveryWrongFieldIsNamedAtOnce) {
  v1::CreateSavedViewRequest ok;
  ok.set_name("Failures of tier 1 — ünïcode is fine");
  ok.set_description("line one\nline two\twith a tab");
  ok.mutable_filter()->add_types("metadata.profile.failed");
  ok.mutable_filter()->add_tenant_ids("tenant-acme");
  ok.mutable_filter()->add_severities(v1::EVENT_SEVERITY_ERROR);
  ok.set_visibility(v1::SAVED_VIEW_VISIBILITY_SHARED);
  EXPECT_TRUE(Check(ok, Of({"tenant-acme"})).ok()) << Check(ok, Of({"tenant-acme"}));

  v1::CreateSavedViewRequest bad;
  bad.set_name(std::string(101, 'x'));
  bad.set_description("bell\a");
  bad.set_visibility(static_cast<v1::SavedViewVisibility>(7));
  bad.mutable_filter()->add_tenant_ids("tenant-b");
  bad.mutable_filter()->set_json_path(std::string(SavedViews::kMaxJsonPathBytes + 1, '$'));
  EXPECT_THAT(Fields(Check(bad, Of({"tenant-acme", "tenant-b"}))),
              ElementsAre("name", "description", "visibility", "filter.tenant_ids[0]", "filter.json_path"));
  // 100 characters, not bytes: a name of 100 two-byte characters is fine.
  v1::CreateSavedViewRequest wide = ok;
  std::string name;
  for (int i = 0; i < 100; ++i) name += "é";
  wide.set_name(name);
  EXPECT_TRUE(Check(wide, Of({"tenant-acme"})).ok());
  wide.set_name(name + "é");
  EXPECT_THAT(Fields(Check(wide, Of({"tenant-acme"}))), ElementsAre("name"));
  // The filter as ListEvents checks it.
  v1::CreateSavedViewRequest unknown = ok;
  unknown.mutable_filter()->set_types(0, "data.exploded");
  EXPECT_EQ(contracts::FieldPathOf(Check(unknown, Of({"tenant-acme"}))).value_or(""), "filter.types[0]");
  v1::CreateSavedViewRequest blank = ok;
  blank.set_name("   ");
  EXPECT_THAT(Fields(Check(blank, Of({"tenant-acme"}))), ElementsAre("name"));
}

TEST(SourceActivityLagTest, LatestAverageAndMaxOverTheLastMinute) {
  SourceActivity a;
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  a.Published("acme", "etl.pipeline", t0, absl::Milliseconds(4000));
  a.Published("acme", "etl.pipeline", t0 + absl::Seconds(1), absl::Milliseconds(1000));
  a.Published("acme", "etl.pipeline", t0 + absl::Seconds(2), absl::Milliseconds(-500));  // a clock ahead
  auto s = a.Snapshots(t0 + absl::Seconds(3));
  ASSERT_EQ(s.size(), 1u);
  EXPECT_TRUE(s[0].recent);
  EXPECT_EQ(s[0].lag_latest, absl::Milliseconds(-500));
  EXPECT_EQ(s[0].lag_avg, absl::Milliseconds(1500));
  EXPECT_EQ(s[0].lag_max, absl::Milliseconds(4000));
  // A minute on, the first two have left the window.
  s = a.Snapshots(t0 + absl::Seconds(61));
  EXPECT_EQ(s[0].lag_avg, absl::Milliseconds(-500));
  EXPECT_EQ(s[0].lag_max, absl::Milliseconds(-500));
  // Nothing in the last minute: no figures.
  s = a.Snapshots(t0 + absl::Seconds(200));
  EXPECT_FALSE(s[0].recent);
  EXPECT_EQ(s[0].published, 3);
}

}  // namespace
}  // namespace sluice::gateway
