#include "contracts/cloudevents.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include "contracts/test_util.h"

namespace sluice::contracts {
namespace {

using ::testing::HasSubstr;

TEST(CloudEvents, HeadersRoundTripForEveryVector) {
  auto vectors = LoadVectors(testing::VectorsDir());
  ASSERT_TRUE(vectors.ok());
  for (const auto& v : *vectors) {
    const v1::Envelope& e = v.envelope;
    Headers h = ToKafkaHeaders(e);
    EXPECT_EQ(FindHeader(h, "ce_specversion"), "1.0");
    EXPECT_EQ(FindHeader(h, "content-type"), "application/protobuf");
    auto a = FromKafkaHeaders(h);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->id, e.id());
    EXPECT_EQ(a->type, e.type());
    EXPECT_EQ(a->source, e.source());
    EXPECT_EQ(a->tenant_id, e.tenant_id());
    EXPECT_EQ(a->partition_key, e.tenant_id());
    EXPECT_EQ(a->traceparent, e.traceparent());
    EXPECT_EQ(a->time, absl::FromUnixSeconds(e.occurred_at().seconds()) + absl::Nanoseconds(e.occurred_at().nanos()))
        << v.type;
  }
}

TEST(CloudEvents, TimeIsRfc3339WithFractionalSeconds) {
  v1::Envelope e = testing::Golden("metadata.profile.completed");  // nanos 2,000,000
  EXPECT_EQ(FindHeader(ToKafkaHeaders(e), "ce_time"), "2025-12-01T10:00:00.002Z");
}

TEST(CloudEvents, TraceparentHeaderOnlyWhenSet) {
  v1::Envelope e = testing::Golden("kpi.changed");
  e.clear_traceparent();
  Headers h = ToKafkaHeaders(e);
  EXPECT_FALSE(FindHeader(h, "traceparent").has_value());
  auto a = FromKafkaHeaders(h);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->traceparent, "");
}

TEST(CloudEvents, MissingOrBadHeadersAreNamed) {
  Headers h = ToKafkaHeaders(testing::Golden("kpi.changed"));
  auto drop = [](Headers h, std::string_view key) {
    std::erase_if(h, [&](const Header& x) { return x.key == key; });
    return h;
  };
  for (const char* key : {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_tenantid"}) {
    EXPECT_THAT(FromKafkaHeaders(drop(h, key)).status().message(), HasSubstr(std::string("header ") + key)) << key;
  }
  Headers bad = drop(h, "ce_specversion");
  bad.push_back({"ce_specversion", "0.3"});
  EXPECT_THAT(FromKafkaHeaders(bad).status().message(), HasSubstr("is not 1.0"));
  bad = drop(h, "ce_time");
  bad.push_back({"ce_time", "yesterday"});
  EXPECT_THAT(FromKafkaHeaders(bad).status().message(), HasSubstr("ce_time"));
}

}  // namespace
}  // namespace sluice::contracts
