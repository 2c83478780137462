// Unit tests of the binding allow-list: parsing (each bad entry named), matching (exact
// names, SCHEMA.*, the "*" tenant) and the schemas that are never allowed.
#include "consumers/profiler/bindings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "consumers/profiler/policy.h"

namespace sluice::profiler {
namespace {

using testing::HasSubstr;

BindingAllowList List(const std::vector<std::string>& entries) {
  auto l = BindingAllowList::Parse(entries);
  EXPECT_TRUE(l.ok()) << l.status();
  return l.ok() ? *l : BindingAllowList();
}

TEST(BindingAllowListTest, NothingIsAllowedByDefault) {
  auto l = List({});
  EXPECT_TRUE(l.empty());
  auto s = l.Check("acme", "demo", "orders");
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("binding: "));
}

TEST(BindingAllowListTest, BadEntriesAreRefusedNamingTheEntry) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"acme", "TENANT=SCHEMA.TABLE"},            // no '='
      {"acme=demo", "SCHEMA.TABLE"},              // no table
      {"acme=.orders", "SCHEMA.TABLE"},           // empty schema
      {"acme=demo.", "SCHEMA.TABLE"},             // empty table
      {"=demo.orders", "TENANT"},                 // empty tenant
      {"Acme=demo.orders", "TENANT"},             // not a tenant id
      {"acme,x=demo.orders", "TENANT"},           // not a tenant id
      {"acme=*.orders", "schema must be named"},  // wildcard schema
      {"acme=demo.sales_*", "not a pattern"},     // prefix wildcard
      {"acme=pg_catalog.*", "system schema"},
      {"acme=pg_catalog.pg_authid", "system schema"},
      {"*=information_schema.tables", "system schema"},
      {"acme=pg_toast.*", "system schema"},
      {"acme=pg_temp_3.t", "system schema"},
  };
  for (const auto& [entry, why] : bad) {
    auto l = BindingAllowList::Parse({"acme=demo.*", entry});
    ASSERT_FALSE(l.ok()) << entry;
    EXPECT_TRUE(absl::IsInvalidArgument(l.status())) << entry;
    EXPECT_THAT(l.status().message(), HasSubstr("\"" + entry + "\"")) << entry;
    EXPECT_THAT(l.status().message(), HasSubstr(why)) << entry;
  }
}

TEST(BindingAllowListTest, SchemaWildcardTableNamesAndTenantsMatchExactly) {
  auto l = List({"acme=demo.*", " globex=sales.orders ", "", "*=shared.rates"});
  EXPECT_EQ(l.Describe(), (std::vector<std::string>{"acme=demo.*", "globex=sales.orders", "*=shared.rates"}));
  EXPECT_TRUE(l.Check("acme", "demo", "sales_orders_1").ok());
  EXPECT_TRUE(l.Check("acme", "demo", "anything").ok());
  EXPECT_TRUE(l.Check("globex", "sales", "orders").ok());
  EXPECT_TRUE(l.Check("acme", "shared", "rates").ok());  // "*": every tenant
  EXPECT_TRUE(l.Check("initech", "shared", "rates").ok());

  EXPECT_FALSE(l.Check("globex", "demo", "sales_orders_1").ok());   // acme's schema, not globex's
  EXPECT_FALSE(l.Check("acme", "sales", "orders").ok());            // globex's table, not acme's
  EXPECT_FALSE(l.Check("globex", "sales", "orders_archive").ok());  // a name, not a prefix
  EXPECT_FALSE(l.Check("initech", "shared", "rates2").ok());
  // Stored names compare as stored: a quoted "Demo" is another schema, as is "demo ".
  EXPECT_FALSE(l.Check("acme", "Demo", "orders").ok());
  EXPECT_FALSE(l.Check("acme", "demo ", "orders").ok());
  EXPECT_FALSE(l.Check("acme", "", "").ok());
  EXPECT_FALSE(l.Check("acme", "demo.x", "orders").ok());
  EXPECT_FALSE(l.Check("acme-2", "demo", "orders").ok());
}

TEST(BindingAllowListTest, SystemAndGovernanceSchemasAreNeverAllowed) {
  auto l = List({"*=demo.*", "acme=sales.*"});
  for (const char* schema : {"pg_catalog", "information_schema", "pg_toast", "pg_temp_1", "pg_toast_temp_1"}) {
    auto s = l.Check("acme", schema, "pg_authid");
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << schema;
    EXPECT_THAT(s.message(), HasSubstr("never profiled")) << schema;
  }
  ASSERT_TRUE(l.Protect("governance").ok());
  EXPECT_FALSE(l.Check("acme", "governance", "mdm_approval").ok());
  EXPECT_FALSE(l.Check("acme", "governance", "event_log").ok());
  EXPECT_TRUE(l.Check("acme", "demo", "orders").ok());

  // An entry naming the governance schema is a configuration mistake, reported at start.
  auto gov = List({"acme=demo.*", "*=public.*"});
  auto s = gov.Protect("public");
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("\"*=public.*\""));
  EXPECT_THAT(s.message(), HasSubstr("governance"));
  auto exact = List({"acme=public.orders"});
  EXPECT_FALSE(exact.Protect("public").ok());
}

TEST(BindingAllowListTest, PolicySkipsARefusedBindingBeforeTierAndCooldown) {
  EntityFacts refused{.found = true, .bound = true, .binding_refused = "binding: not allowed", .tier = v1::TIER_1};
  for (auto kind : {TriggerKind::kProfileDue, TriggerKind::kDataRefreshed, TriggerKind::kMetadataApproved}) {
    auto d = Decide(PolicyConfig{}, {.kind = kind, .reason = v1::PROFILE_REASON_MANUAL, .rows_affected = 1'000'000},
                    refused, std::nullopt, absl::Now());
    EXPECT_FALSE(d.profile);
    EXPECT_EQ(d.skip_reason, "binding_not_allowed");
    EXPECT_EQ(d.detail, "binding: not allowed");
  }
  refused.binding_refused.clear();
  EXPECT_TRUE(Decide(PolicyConfig{}, {.kind = TriggerKind::kProfileDue, .reason = v1::PROFILE_REASON_MANUAL}, refused,
                     std::nullopt, absl::Now())
                  .profile);
}

}  // namespace
}  // namespace sluice::profiler
