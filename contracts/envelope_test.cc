#include "contracts/envelope.h"

#include <gtest/gtest.h>

#include <set>

#include "contracts/validate.h"

namespace sluice::contracts {
namespace {

TEST(UuidV7, HasVersionVariantAndTimeOrder) {
  absl::Time t = absl::FromUnixMillis(1764583200123);
  std::string a = NewUuidV7(t);
  ASSERT_TRUE(IsUuid(a)) << a;
  EXPECT_EQ(a.substr(0, 8), "019ad95a");  // 0x019ad95ad57b = 1764583200123 ms
  EXPECT_EQ(a.substr(9, 4), "d57b");
  EXPECT_EQ(a[14], '7');
  EXPECT_TRUE(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b') << a;
  EXPECT_LT(a, NewUuidV7(t + absl::Milliseconds(1)));
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(NewUuidV7(t));
  EXPECT_EQ(seen.size(), 10000u);
  EXPECT_FALSE(IsUuid("0193a5f2-7c00-7000-8000-00000000c0d"));
  EXPECT_FALSE(IsUuid("0193a5f2x7c00-7000-8000-00000000c0de"));
}

TEST(FillDefaults, AssignsWhatIsAbsentAndKeepsWhatIsPresent) {
  v1::Envelope e;
  e.set_tenant_id("tenant-a");
  e.set_source("etl.pipeline");
  auto* p = e.mutable_data_refreshed();
  p->set_entity_urn("sales.transactions");
  p->mutable_service()->set_schema("public");
  p->mutable_service()->set_table("sales");
  p->set_refresh_type(v1::REFRESH_TYPE_FULL);
  p->mutable_completed_at()->set_seconds(1764583200);
  p->mutable_triggered_by()->set_actor_id("etl-nightly");
  p->mutable_triggered_by()->set_actor_type(v1::ACTOR_TYPE_SYSTEM);

  absl::Time now = absl::FromUnixSeconds(1764583300);
  FillDefaults(e, Catalog::Default(), now);
  EXPECT_TRUE(IsUuid(e.id()));
  EXPECT_EQ(e.type(), "data.refreshed");
  EXPECT_EQ(e.version(), "1.0.0");
  EXPECT_EQ(e.occurred_at().seconds(), 1764583300);
  EXPECT_TRUE(Validate(e, Catalog::Default(), now).ok()) << Validate(e, Catalog::Default(), now);

  v1::Envelope f = e;
  f.set_type("kpi.changed");
  f.set_id("keep-me");
  FillDefaults(f);
  EXPECT_EQ(f.type(), "kpi.changed");
  EXPECT_EQ(f.id(), "keep-me");
  EXPECT_EQ(f.occurred_at().seconds(), 1764583300);
}

TEST(TraceparentTest, ChildrenKeepTheTraceAndFlagsWithANewSpan) {
  const std::string root = NewTraceparent();
  ASSERT_TRUE(IsValidTraceparent(root)) << root;
  EXPECT_EQ(root.substr(53), "01");
  EXPECT_NE(NewTraceparent().substr(3, 32), root.substr(3, 32));
  const std::string parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
  std::set<std::string> spans;
  for (int i = 0; i < 100; ++i) {
    const std::string child = ChildTraceparent(parent);
    ASSERT_TRUE(IsValidTraceparent(child)) << child;
    EXPECT_EQ(child.substr(0, 36), parent.substr(0, 36));  // version and trace id
    EXPECT_EQ(child.substr(52), parent.substr(52));        // flags
    EXPECT_NE(child.substr(36, 16), parent.substr(36, 16));
    spans.insert(child.substr(36, 16));
  }
  EXPECT_EQ(spans.size(), 100u);
  for (const char* bad : {"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}) {
    EXPECT_EQ(ChildTraceparent(bad), "") << bad;
  }
}

}  // namespace
}  // namespace sluice::contracts
