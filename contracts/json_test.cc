#include "contracts/json.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "contracts/envelope.h"
#include "contracts/test_util.h"

namespace sluice::contracts {
namespace {

using ::testing::HasSubstr;

TEST(Json, EveryVectorRoundTrips) {
  auto vectors = LoadVectors(testing::VectorsDir());
  ASSERT_TRUE(vectors.ok());
  for (const auto& v : *vectors) {
    auto json = ToJson(v.envelope);
    ASSERT_TRUE(json.ok()) << json.status();
    v1::Envelope back;
    ASSERT_TRUE(FromJson(*json, back).ok()) << *json;
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(v.envelope, back)) << v.type;
    EXPECT_EQ(SerializeDeterministic(back), SerializeDeterministic(v.envelope)) << v.type;
  }
}

TEST(Json, UsesProtobufJsonMapping) {
  auto json = ToJson(testing::Golden("data.refreshed"));
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, HasSubstr(R"("tenantId":"tenant-acme")"));
  EXPECT_THAT(*json, HasSubstr(R"("occurredAt":"2025-12-01T10:00:00.009Z")"));
  EXPECT_THAT(*json, HasSubstr(R"("refreshType":"REFRESH_TYPE_INCREMENTAL")"));
  EXPECT_THAT(*json, HasSubstr(R"("rowsAffected":"25000")"));  // int64 as string
}

TEST(Json, AcceptsProtoFieldNamesAndRejectsUnknownOrMalformed) {
  v1::Envelope e;
  ASSERT_TRUE(FromJson(R"({"tenant_id":"t1","dataRefreshed":{"entity_urn":"x"}})", e).ok());
  EXPECT_EQ(e.tenant_id(), "t1");
  EXPECT_EQ(e.data_refreshed().entity_urn(), "x");
  EXPECT_EQ(FromJson(R"({"tenantIdd":"t1"})", e).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FromJson(R"({"tenantId":)", e).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FromJson(R"({"dataRefreshed":{"refreshType":"SOMETIMES"}})", e).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::contracts
