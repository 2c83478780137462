#include "contracts/validate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

#include "contracts/envelope.h"
#include "contracts/test_util.h"

namespace sluice::contracts {
namespace {

using testing::Golden;

struct Case {
  const char* name;
  const char* golden;
  std::function<void(v1::Envelope&)> mutate;
  const char* path;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ValidateRule : public ::testing::TestWithParam<Case> {};

TEST_P(ValidateRule, NamesTheOffendingField) {
  const Case& c = GetParam();
  v1::Envelope env = Golden(c.golden);
  ASSERT_TRUE(Validate(env).ok()) << "golden " << c.golden << " must be valid";
  c.mutate(env);
  absl::Status s = Validate(env);
  ASSERT_FALSE(s.ok()) << c.name;
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldPathOf(s).value_or("<none>"), c.path) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::StartsWith(std::string(c.path) + ": "));
}

const Case kCases[] = {
    {"id_missing", "data.refreshed", [](auto& e) { e.clear_id(); }, "id"},
    {"id_not_uuid", "data.refreshed", [](auto& e) { e.set_id("evt-001"); }, "id"},
    {"type_missing", "data.refreshed", [](auto& e) { e.clear_type(); }, "type"},
    {"type_unknown", "data.refreshed", [](auto& e) { e.set_type("data.exploded"); }, "type"},
    {"version_missing", "data.refreshed", [](auto& e) { e.clear_version(); }, "version"},
    {"version_not_semver", "data.refreshed", [](auto& e) { e.set_version("1.0"); }, "version"},
    {"version_major_mismatch", "data.refreshed", [](auto& e) { e.set_version("2.0.0"); }, "version"},
    {"tenant_missing", "data.refreshed", [](auto& e) { e.clear_tenant_id(); }, "tenant_id"},
    {"tenant_uppercase", "data.refreshed", [](auto& e) { e.set_tenant_id("Tenant-A"); }, "tenant_id"},
    {"tenant_leading_dash", "data.refreshed", [](auto& e) { e.set_tenant_id("-a"); }, "tenant_id"},
    {"tenant_too_long", "data.refreshed", [](auto& e) { e.set_tenant_id(std::string(65, 'a')); }, "tenant_id"},
    {"source_missing", "data.refreshed", [](auto& e) { e.clear_source(); }, "source"},
    {"source_unknown", "data.refreshed", [](auto& e) { e.set_source("etl.unknown"); }, "source"},
    {"occurred_at_missing", "data.refreshed", [](auto& e) { e.clear_occurred_at(); }, "occurred_at"},
    {"occurred_at_future", "data.refreshed",
     [](auto& e) { e.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(absl::Now() + absl::Hours(1))); },
     "occurred_at"},
    {"occurred_at_ancient", "data.refreshed", [](auto& e) { e.mutable_occurred_at()->set_seconds(86400); },
     "occurred_at"},
    {"ttl_negative", "data.refreshed", [](auto& e) { e.set_ttl_ms(-1); }, "ttl_ms"},
    {"traceparent_malformed", "data.refreshed", [](auto& e) { e.set_traceparent("00-abc-def-01"); }, "traceparent"},
    {"traceparent_zero_trace", "data.refreshed",
     [](auto& e) { e.set_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"); }, "traceparent"},
    {"metadata_too_big", "data.refreshed",
     [](auto& e) { (*e.mutable_metadata())["blob"] = std::string(kMaxMetadataBytes, 'x'); }, "metadata"},
    {"metadata_empty_key", "data.refreshed", [](auto& e) { (*e.mutable_metadata())[""] = "v"; }, "metadata"},
    {"payload_missing", "data.refreshed", [](auto& e) { e.clear_payload(); }, "payload"},
    {"payload_case_mismatch", "data.refreshed",
     [](auto& e) { *e.mutable_kpi_approved() = Golden("kpi.approved").kpi_approved(); }, "kpi_approved"},
    {"payload_too_big", "approval.created",
     [](auto& e) {
       (*e.mutable_approval_created()->mutable_payload()->mutable_fields())["blob"].set_string_value(
           std::string(kMaxPayloadBytes, 'x'));
     },
     "approval_created"},
    {"required_string", "data.refreshed", [](auto& e) { e.mutable_data_refreshed()->clear_entity_urn(); },
     "data_refreshed.entity_urn"},
    {"required_enum", "data.refreshed",
     [](auto& e) { e.mutable_data_refreshed()->set_refresh_type(v1::REFRESH_TYPE_UNSPECIFIED); },
     "data_refreshed.refresh_type"},
    {"required_message", "data.refreshed", [](auto& e) { e.mutable_data_refreshed()->clear_service(); },
     "data_refreshed.service"},
    {"required_nested", "data.refreshed",
     [](auto& e) { e.mutable_data_refreshed()->mutable_triggered_by()->clear_actor_id(); },
     "data_refreshed.triggered_by.actor_id"},
    {"payload_timestamp_future", "data.refreshed",
     [](auto& e) {
       e.mutable_data_refreshed()->mutable_completed_at()->set_seconds(
           absl::ToUnixSeconds(absl::Now() + absl::Hours(24)));
     },
     "data_refreshed.completed_at"},
    {"payload_timestamp_bad_nanos", "metadata.profile.due",
     [](auto& e) { e.mutable_profile_due()->mutable_last_profiled_at()->set_nanos(-1); },
     "profile_due.last_profiled_at"},
    {"negative_duration", "metadata.profile.completed",
     [](auto& e) { e.mutable_profile_completed()->mutable_duration()->set_seconds(-3); },
     "profile_completed.duration"},
    {"rejection_needs_reason", "approval.rejected", [](auto& e) { e.mutable_approval_rejected()->clear_reason(); },
     "approval_rejected.reason"},
};

INSTANTIATE_TEST_SUITE_P(Rules, ValidateRule, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Validate, AcceptsEveryGoldenVectorAndLimitsAtTheBoundary) {
  auto vectors = LoadVectors(testing::VectorsDir());
  ASSERT_TRUE(vectors.ok());
  ASSERT_EQ(vectors->size(), 13u);
  for (const auto& v : *vectors) EXPECT_TRUE(Validate(v.envelope).ok()) << v.type << ": " << Validate(v.envelope);

  v1::Envelope env = Golden("data.refreshed");
  env.clear_metadata();
  (*env.mutable_metadata())["k"] = std::string(kMaxMetadataBytes - 1, 'x');  // exactly 2 KiB with the key
  EXPECT_TRUE(Validate(env).ok());
  env.set_tenant_id(std::string(64, 'a'));
  EXPECT_TRUE(Validate(env).ok());
  env.set_tenant_id("0193a5f2-7c00-7000-8000-00000000c0de");  // UUID tenants are fine
  EXPECT_TRUE(Validate(env).ok());
  env.set_version("1.4.2");  // same major, newer minor
  EXPECT_TRUE(Validate(env).ok());
}

TEST(Validate, OtherStatusesCarryNoFieldPath) {
  EXPECT_FALSE(FieldPathOf(absl::InternalError("x")).has_value());
}

}  // namespace
}  // namespace sluice::contracts
