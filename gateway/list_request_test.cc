#include "gateway/list_request.h"

#include <absl/strings/escaping.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string_view>

#include "common/pg.h"
#include "contracts/validate.h"

namespace sluice::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kId[] = "0193a5f2-7c1e-7d3a-9b4f-2e8c1a6d5b90";

v1::Principal Acme() {
  v1::Principal p;
  p.set_name("analyst");
  p.add_tenants("tenant-acme");
  return p;
}

v1::EventFilter SomeFilter() {
  v1::EventFilter f;
  f.add_types("metadata.changed");
  f.add_tenant_ids("tenant-acme");
  return f;
}

// The field path the status carries, or "" (so a failure prints what was refused).
std::string FieldOf(const absl::Status& s) { return contracts::FieldPathOf(s).value_or(""); }

class ListRequestTest : public ::testing::Test {
 protected:
  absl::StatusOr<ListQuery> Check(const v1::ListEventsRequest& req, const v1::Principal& who = Acme()) const {
    return CheckListRequest(catalog_, authz_, who, req);
  }
  const contracts::Catalog& catalog_ = contracts::Catalog::Default();
  const contracts::Authorizer authz_{catalog_};
};

TEST(Cursor, RoundTrips) {
  const v1::EventFilter f = SomeFilter();
  for (int64_t micros : {int64_t{0}, int64_t{1764586800123456}, int64_t{253402300799999999}}) {
    auto c = DecodeCursor(EncodeCursor(micros, kId, f), f);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(*c, (Cursor{micros, kId}));
  }
}

TEST(Cursor, IssuedForAnotherFilterIsRefused) {
  v1::EventFilter other = SomeFilter();
  other.add_types("metadata.approved");
  auto c = DecodeCursor(EncodeCursor(1, kId, SomeFilter()), other);
  ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(c.status()), "cursor");
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("different filter"));
  // The empty filter is a filter too.
  EXPECT_FALSE(DecodeCursor(EncodeCursor(1, kId, SomeFilter()), v1::EventFilter()).ok());
}

TEST(Cursor, GarbageIsRefusedNamingCursor) {
  const v1::EventFilter f = SomeFilter();
  const std::string digest = FilterDigest(f);
  for (const std::string& text : {
           std::string("not base64!"),
           std::string("%%%%"),
           absl::WebSafeBase64Escape("1:" + std::string(kId)),                                    // two parts
           absl::WebSafeBase64Escape("1:" + std::string(kId) + ":" + digest + ":x"),              // four parts
           absl::WebSafeBase64Escape("x:" + std::string(kId) + ":" + digest),                     // micros not a number
           absl::WebSafeBase64Escape("99999999999999999999:" + std::string(kId) + ":" + digest),  // overflows
           absl::WebSafeBase64Escape("9223372036854775807:" + std::string(kId) + ":" + digest),   // past 9999
           absl::WebSafeBase64Escape("-1:" + std::string(kId) + ":" + digest),                    // before 1970
           absl::WebSafeBase64Escape("1:not-a-uuid:" + digest),
           absl::WebSafeBase64Escape("1:" + std::string(kId) + ":" + digest + "0"),  // digest too long
           absl::WebSafeBase64Escape("::"),
           std::string(),
       }) {
    auto c = DecodeCursor(text, f);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(FieldOf(c.status()), "cursor") << text;
  }
}

TEST_F(ListRequestTest, LimitBounds) {
  v1::ListEventsRequest req;
  for (int limit : {0, 1, 200}) {
    req.set_limit(limit);
    auto q = Check(req);
    ASSERT_TRUE(q.ok()) << limit << ": " << q.status();
    EXPECT_EQ(q->limit, limit == 0 ? 100 : limit);
  }
  for (int limit : {-1, 201, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()}) {
    req.set_limit(limit);
    auto q = Check(req);
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << limit;
    EXPECT_EQ(FieldOf(q.status()), "limit") << limit;
  }
}

TEST_F(ListRequestTest, LimitIsCheckedFirst) {
  v1::ListEventsRequest req;
  req.set_limit(500);
  req.mutable_filter()->add_tenant_ids("tenant-other");
  req.mutable_filter()->add_types("no.such.type");
  EXPECT_EQ(FieldOf(Check(req).status()), "limit");
}

TEST_F(ListRequestTest, TimesOutsideTheRangeAreRefused) {
  struct Case {
    int64_t seconds;
    int32_t nanos;
  };
  for (const char* field : {"filter.from_time", "filter.to_time"}) {
    for (Case c : {Case{-1, 0}, Case{253402300800, 0}, Case{0, -1}, Case{0, 1'000'000'000},
                   Case{std::numeric_limits<int64_t>::max(), 0}}) {
      v1::ListEventsRequest req;
      google::protobuf::Timestamp* t = std::string_view(field) == "filter.from_time"
                                           ? req.mutable_filter()->mutable_from_time()
                                           : req.mutable_filter()->mutable_to_time();
      t->set_seconds(c.seconds);
      t->set_nanos(c.nanos);
      auto q = Check(req);
      EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << field << " " << c.seconds;
      EXPECT_EQ(FieldOf(q.status()), field) << c.seconds << "s " << c.nanos << "ns";
    }
  }
  // The bounds themselves are fine.
  v1::ListEventsRequest req;
  req.mutable_filter()->mutable_from_time()->set_seconds(0);
  req.mutable_filter()->mutable_to_time()->set_seconds(253402300799);
  req.mutable_filter()->mutable_to_time()->set_nanos(999'999'999);
  EXPECT_TRUE(Check(req).ok()) << Check(req).status();
  // A range that ends before it starts.
  req.mutable_filter()->mutable_from_time()->set_seconds(100);
  req.mutable_filter()->mutable_to_time()->set_seconds(99);
  req.mutable_filter()->mutable_to_time()->set_nanos(0);
  EXPECT_EQ(FieldOf(Check(req).status()), "filter.to_time");
}

TEST_F(ListRequestTest, UnknownTypesAndSourcesAreRefused) {
  v1::ListEventsRequest req;
  req.mutable_filter()->add_types("metadata.changed");
  req.mutable_filter()->add_types("metadata.nope");
  auto q = Check(req);
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(q.status()), "filter.types[1]");
  EXPECT_THAT(std::string(q.status().message()), HasSubstr("unknown event type \"metadata.nope\""));

  req.mutable_filter()->clear_types();
  req.mutable_filter()->add_sources("etl.nope");
  EXPECT_EQ(FieldOf(Check(req).status()), "filter.sources[0]");
}

TEST_F(ListRequestTest, TenantsAreTheCallersOwn) {
  v1::ListEventsRequest req;
  auto q = Check(req);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_THAT(q->tenants, ElementsAre("tenant-acme"));
  EXPECT_THAT(q->branches, ElementsAre("tenant_id = $1"));
  EXPECT_EQ(q->where, "TRUE");
  EXPECT_THAT(q->params, ElementsAre(std::optional<std::string>("tenant-acme")));

  req.mutable_filter()->add_tenant_ids("tenant-other");
  q = Check(req);
  EXPECT_EQ(q.status().code(), absl::StatusCode::kPermissionDenied);
  // Authorizer decisions name their field at the start of the message.
  EXPECT_THAT(std::string(q.status().message()), ::testing::StartsWith("filter.tenant_ids[0]: "));

  // Only a "*" principal reads every tenant, and then the query has no tenant condition.
  v1::Principal all;
  all.add_tenants("*");
  q = Check(v1::ListEventsRequest(), all);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_TRUE(q->tenants.empty());
  EXPECT_THAT(q->branches, ElementsAre("TRUE"));
  EXPECT_EQ(q->where, "TRUE");
  EXPECT_TRUE(q->params.empty());
}

TEST_F(ListRequestTest, BuildsTheWhereClauseWithParameters) {
  v1::ListEventsRequest req;
  v1::EventFilter& f = *req.mutable_filter();
  f.add_types("metadata.changed");
  f.add_sources("metadata-studio.api");
  f.add_tenant_ids("tenant-acme");
  f.set_correlation_id("corr'); DROP TABLE event_log; --");
  f.mutable_from_time()->set_seconds(1764586800);
  f.mutable_to_time()->set_seconds(1764590400);
  f.mutable_to_time()->set_nanos(500'000'000);
  f.set_json_path("$.entityKey");
  req.set_limit(7);
  req.set_cursor(EncodeCursor(1764586800000001, kId, f));
  auto q = Check(req);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->limit, 7);
  ASSERT_TRUE(q->cursor.has_value());
  EXPECT_EQ(*q->cursor, (Cursor{1764586800000001, kId}));
  // With a JSONPath, the tenant also in the form the (ARRAY[tenant_id], payload) GIN index searches.
  EXPECT_THAT(q->branches,
              ElementsAre("tenant_id = $1 AND ARRAY[tenant_id] @> ARRAY[$1::text] AND type = $2 AND source = $3"));
  EXPECT_EQ(q->where,
            "TRUE AND correlation_id = $4 AND occurred_at >= $5::timestamptz AND occurred_at <= $6::timestamptz"
            " AND payload @? $7::jsonpath AND (occurred_at, id) > ($8::timestamptz, $9::uuid)");
  EXPECT_THAT(q->params, ElementsAre("tenant-acme", "metadata.changed", "metadata-studio.api",
                                     "corr'); DROP TABLE event_log; --", "2025-12-01T11:00:00.000000Z",
                                     "2025-12-01T12:00:00.500000Z", "$.entityKey", "2025-12-01T11:00:00.000001Z", kId));
  // One tenant, type and source: the walk first, the same conditions without the index form
  // and with the JSONPath outside the bounded, ordered read.
  EXPECT_EQ(ListWalkStatement(*q, "id"),
            "SELECT id FROM (SELECT * FROM event_log WHERE tenant_id = $1 AND type = $2 AND source = $3 AND TRUE AND"
            " correlation_id = $4 AND occurred_at >= $5::timestamptz AND occurred_at <= $6::timestamptz AND"
            " (occurred_at, id) > ($8::timestamptz, $9::uuid) ORDER BY occurred_at, id LIMIT 512) AS event_log"
            " WHERE payload @? $7::jsonpath ORDER BY occurred_at, id LIMIT 8");
}

TEST_F(ListRequestTest, OnlyAJsonPathOnOneTenantAndOneValuePerDimensionIsWalked) {
  v1::ListEventsRequest req;
  v1::EventFilter& f = *req.mutable_filter();
  auto q = Check(req);  // no JSONPath
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(ListWalkStatement(*q, "id"), "");
  f.set_json_path("$.x");
  q = Check(req);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(ListWalkStatement(*q, "id"),
            "SELECT id FROM (SELECT * FROM event_log WHERE tenant_id = $1 AND TRUE ORDER BY occurred_at, id LIMIT"
            " 6464) AS event_log WHERE payload @? $2::jsonpath ORDER BY occurred_at, id LIMIT 101");
  f.add_types("metadata.changed");
  f.add_types("data.refreshed");  // two branches
  q = Check(req);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(ListWalkStatement(*q, "id"), "");
  v1::Principal two;  // two tenants
  two.add_tenants("tenant-acme");
  two.add_tenants("tenant-beta");
  f.clear_types();
  q = Check(req, two);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(ListWalkStatement(*q, "id"), "");
  v1::Principal all;  // every tenant: no tenant index to walk
  all.add_tenants("*");
  q = Check(req, all);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(ListWalkStatement(*q, "id"), "");
  // ... unless the filter names one tenant.
  f.add_tenant_ids("tenant-beta");
  q = Check(req, all);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_THAT(ListWalkStatement(*q, "id"), ::testing::StartsWith("SELECT id FROM (SELECT * FROM event_log WHERE "
                                                                 "tenant_id = $1 AND TRUE ORDER BY"));
}

TEST_F(ListRequestTest, SeveralValuesBecomeOneOrderedScanEach) {
  v1::Principal two;
  two.add_tenants("tenant-acme");
  two.add_tenants("tenant-beta");
  v1::ListEventsRequest req;
  v1::EventFilter& f = *req.mutable_filter();
  f.add_types("metadata.changed");
  f.add_types("data.refreshed");
  f.add_types("metadata.changed");  // a repeated value must not repeat its rows
  req.set_limit(5);
  auto q = Check(req, two);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_THAT(q->branches, ElementsAre("tenant_id = $1 AND type = $3", "tenant_id = $1 AND type = $4",
                                       "tenant_id = $2 AND type = $3", "tenant_id = $2 AND type = $4"));
  EXPECT_THAT(q->params, ElementsAre("tenant-acme", "tenant-beta", "metadata.changed", "data.refreshed"));
  EXPECT_EQ(ListStatement(*q, "id"),
            "SELECT id FROM ("
            "(SELECT * FROM event_log WHERE tenant_id = $1 AND type = $3 AND TRUE ORDER BY occurred_at, id LIMIT 6)"
            " UNION ALL (SELECT * FROM event_log WHERE tenant_id = $1 AND type = $4 AND TRUE ORDER BY occurred_at, id"
            " LIMIT 6) UNION ALL (SELECT * FROM event_log WHERE tenant_id = $2 AND type = $3 AND TRUE ORDER BY"
            " occurred_at, id LIMIT 6) UNION ALL (SELECT * FROM event_log WHERE tenant_id = $2 AND type = $4 AND TRUE"
            " ORDER BY occurred_at, id LIMIT 6)) AS event_log ORDER BY occurred_at, id LIMIT 6");

  // One branch: a plain ordered SELECT.
  q = Check(v1::ListEventsRequest());
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(ListStatement(*q, "id"),
            "SELECT id FROM event_log WHERE tenant_id = $1 AND TRUE ORDER BY occurred_at, id LIMIT 101");
}

TEST_F(ListRequestTest, TooManyCombinationsKeepTheLaterDimensionsAsArrays) {
  v1::ListEventsRequest req;
  v1::EventFilter& f = *req.mutable_filter();
  for (const auto& r : catalog_.routes()) f.add_types(r.type);  // 13
  for (const auto& s : catalog_.sources()) f.add_sources(s);    // 7
  ASSERT_GT(static_cast<size_t>(f.types_size() * f.sources_size()), kMaxListBranches);
  ASSERT_LE(static_cast<size_t>(f.types_size()), kMaxListBranches);
  auto q = Check(req);
  ASSERT_TRUE(q.ok()) << q.status();
  // One branch per type; types x sources would pass kMaxListBranches, so source stays an array.
  EXPECT_EQ(q->branches.size(), static_cast<size_t>(f.types_size()));
  for (const auto& b : q->branches)
    EXPECT_THAT(b, ::testing::MatchesRegex(
                       "tenant_id = \\$1 AND type = \\$[0-9]+ AND source = ANY\\(\\$[0-9]+::text\\[\\]\\)"));
  EXPECT_EQ(q->params.back(), common::PgTextArray(catalog_.sources()));
}

}  // namespace
}  // namespace sluice::gateway
