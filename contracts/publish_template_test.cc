#include "contracts/publish_template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "contracts/envelope.h"
#include "contracts/json.h"
#include "contracts/test_util.h"
#include "contracts/validate.h"

namespace sluice::contracts {
namespace {

using ::testing::ElementsAre;
using testing::Golden;
using ::testing::HasSubstr;

constexpr char kTrigger[] = "0190a0b0-0000-7000-8000-000000000001";

// Re-profile an entity whose quality dropped, from its data.quality.degraded.
constexpr char kReprofile[] = R"({
  "entityType": "{{payload.entityType}}", "entityId": "{{payload.entityId}}",
  "canonicalKey": "{{payload.canonicalKey}}", "tier": "{{payload.tier}}",
  "priority": "PRIORITY_HIGH", "reason": "PROFILE_REASON_QUALITY_DROP"})";

std::vector<std::string> Fields(const absl::Status& s) {
  std::vector<std::string> out;
  for (const auto& v : ViolationsOf(s)) out.push_back(v.field);
  return out;
}

TEST(PublishTemplate, OnlyProfileDueMayBeDerived) {
  EXPECT_THAT(PublishableTypes(Catalog::Default()), ElementsAre("metadata.profile.due"));
}

TEST(PublishTemplate, AcceptsATemplateOfTheType) {
  EXPECT_TRUE(CheckPublishAction(Catalog::Default(), "metadata.profile.due", kReprofile).ok());
  // Short spellings of closed sets, as everywhere else.
  EXPECT_TRUE(CheckPublishAction(Catalog::Default(), "metadata.profile.due",
                                 R"({"entityId": "{{event.id}}", "tier": "tier1", "priority": "high",
                                     "entity_type": "kpi", "canonicalKey": "{{event.correlation_id}}",
                                     "reason": "manual"})")
                  .ok());
}

TEST(PublishTemplate, RefusesTypesTheTriggerSourceMayNotEmit) {
  // A trigger must not forge governance decisions.
  for (const char* type : {"approval.approved", "metadata.approved", "data.refreshed", "nope", ""}) {
    auto s = CheckPublishAction(Catalog::Default(), type, R"({})");
    EXPECT_THAT(Fields(s), ElementsAre("publish.type")) << type << ": " << s;
  }
}

TEST(PublishTemplate, NamesWhatIsWrongWithATemplate) {
  const std::string big = std::string(R"({"canonicalKey": ")") + std::string(5000, 'k') + "\"}";
  for (const std::string& tmpl :
       {std::string(""), std::string("[1]"), std::string("{"), big, std::string(R"({"nope": 1})"),
        std::string(R"({"tier": "TIER_9"})"), std::string(R"({"entityId": "{{payload.}}"})"),
        std::string(R"({"entityId": "{{event.secret}}"})"), std::string(R"({"entityId": "{{payload.a-b}}"})"),
        std::string(R"({"entityId": "{{payload.a.b.c.d.e.f.g.h.i}}"})"), std::string(R"({"priority": 1.5})"),
        // Every match would fail: the required reason is neither a value nor a placeholder.
        std::string(R"({"entityType": "metadata", "entityId": "{{payload.entityId}}", "canonicalKey": "k",
                        "tier": "tier1", "priority": "high"})")}) {
    auto s = CheckPublishAction(Catalog::Default(), "metadata.profile.due", tmpl, "x.");
    EXPECT_THAT(Fields(s), ElementsAre("x.payload_template")) << tmpl.substr(0, 60) << ": " << s;
  }
}

TEST(PublishTemplate, DerivesAProfileRequestFromADegradation) {
  v1::Envelope src = Golden("data.quality.degraded");
  src.mutable_data_quality_degraded()->set_tier(v1::TIER_1);
  const absl::Time now = absl::FromUnixSeconds(1800000000);
  auto d = DeriveEvent(Catalog::Default(), kTrigger, "metadata.profile.due", kReprofile, src, now);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->type(), "metadata.profile.due");
  EXPECT_EQ(d->source(), "sluice.triggers");
  EXPECT_EQ(d->tenant_id(), src.tenant_id());
  EXPECT_EQ(d->causation_id(), src.id());
  EXPECT_EQ(d->correlation_id(), src.correlation_id());
  EXPECT_EQ(d->profile_due().entity_id(), src.data_quality_degraded().entity_id());
  EXPECT_EQ(d->profile_due().canonical_key(), src.data_quality_degraded().canonical_key());
  EXPECT_EQ(d->profile_due().entity_type(), src.data_quality_degraded().entity_type());
  EXPECT_EQ(d->profile_due().tier(), v1::TIER_1);
  EXPECT_EQ(d->profile_due().priority(), v1::PRIORITY_HIGH);
  EXPECT_EQ(d->profile_due().reason(), v1::PROFILE_REASON_QUALITY_DROP);
  EXPECT_TRUE(Validate(*d, Catalog::Default(), now).ok());
  // The same id on every attempt, another one for another trigger or event.
  auto again =
      DeriveEvent(Catalog::Default(), kTrigger, "metadata.profile.due", kReprofile, src, now + absl::Minutes(5));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id(), d->id());
  EXPECT_TRUE(IsUuid(d->id()));
  EXPECT_EQ(d->id()[14], '7') << d->id();
  EXPECT_NE(std::string("89ab").find(d->id()[19]), std::string::npos) << "variant 10: " << d->id();
  EXPECT_NE(DerivedEventId("0190a0b0-0000-7000-8000-000000000002", src), d->id());
  v1::Envelope other = src;
  other.set_id(NewUuidV7());
  EXPECT_NE(DerivedEventId(kTrigger, other), d->id());
}

TEST(PublishTemplate, AFieldAtItsDefaultValueIsFound) {
  v1::Envelope src = Golden("data.quality.degraded");
  src.mutable_data_quality_degraded()->clear_previous_profile_id();  // "" is not in protobuf JSON
  auto d = DeriveEvent(Catalog::Default(), kTrigger, "metadata.profile.due",
                       R"({"entityType": "metadata", "entityId": "{{payload.entityId}}", "canonicalKey": "k",
                           "tier": "tier1", "priority": "high", "reason": "manual",
                           "standardPackId": "{{payload.previousProfileId}}"})",
                       src);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->profile_due().standard_pack_id(), "");
}

TEST(PublishTemplate, EventAttributesAndAMissingCorrelation) {
  v1::Envelope src = Golden("data.quality.degraded");
  src.clear_correlation_id();
  auto d = DeriveEvent(Catalog::Default(), kTrigger, "metadata.profile.due",
                       R"({"entityType": "metadata", "entityId": "{{payload.entityId}}", "canonicalKey": "{{event.id}}",
                           "tier": "tier2", "priority": "normal", "reason": "manual"})",
                       src);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->correlation_id(), src.id()) << "the cause's id when it has no correlation id";
  EXPECT_EQ(d->profile_due().canonical_key(), src.id());
}

TEST(PublishTemplate, APlaceholderThatFindsNothingOrABadValueFails) {
  v1::Envelope src = Golden("data.quality.degraded");
  auto missing = DeriveEvent(Catalog::Default(), kTrigger, "metadata.profile.due",
                             R"({"entityId": "{{payload.rowsAffected}}"})", src);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("has no rowsAffected"));
  // Without a required field: the catalog's checks refuse it.
  auto invalid = DeriveEvent(Catalog::Default(), kTrigger, "metadata.profile.due",
                             R"({"entityType": "metadata", "entityId": "{{payload.entityId}}",
                                 "canonicalKey": "k", "tier": "tier1", "priority": "high"})",
                             src);
  EXPECT_EQ(invalid.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(invalid.status().message(), HasSubstr("the derived event is invalid"));
  EXPECT_THAT(invalid.status().message(), HasSubstr("reason"));
  // A value of the wrong kind for its field.
  auto wrong =
      DeriveEvent(Catalog::Default(), kTrigger, "metadata.profile.due", R"({"tier": "{{payload.canonicalKey}}"})", src);
  EXPECT_THAT(wrong.status().message(), HasSubstr("the filled payload is not a sluice.v1.ProfileDue"));
  auto object =
      DeriveEvent(Catalog::Default(), kTrigger, "metadata.profile.due", R"({"entityId": "{{payload}}"})", src);
  EXPECT_FALSE(object.ok());
  // An object where one value belongs.
  v1::Envelope changed = Golden("metadata.changed");
  auto nested = DeriveEvent(Catalog::Default(), kTrigger, "metadata.profile.due",
                            R"({"entityId": "{{payload.changedBy}}"})", changed);
  EXPECT_THAT(nested.status().message(), HasSubstr("an object or a list, not one value"));
  auto forged = DeriveEvent(Catalog::Default(), kTrigger, "approval.approved", R"({})", src);
  EXPECT_EQ(forged.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::contracts
