#include "contracts/notification.h"

#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <string>

#include "contracts/test_util.h"

namespace sluice::contracts {
namespace {

using ::testing::ElementsAre;
using testing::Golden;
using ::testing::HasSubstr;
using ::testing::Not;

v1::Envelope Completed(v1::Tier tier, double score) {
  v1::Envelope e = Golden("metadata.profile.completed");
  e.mutable_profile_completed()->set_tier(tier);
  e.mutable_profile_completed()->set_quality_score(score);
  return e;
}

google::protobuf::Struct Parse(const std::string& json) {
  google::protobuf::Struct doc;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &doc).ok()) << json;
  return doc;
}

TEST(QualityNotification, BelowTheThresholdWarnsAtItNothing) {
  EXPECT_FALSE(QualityNotification(Completed(v1::TIER_2, 70), 70));
  EXPECT_FALSE(QualityNotification(Completed(v1::TIER_2, 99), 70));
  auto n = QualityNotification(Completed(v1::TIER_2, 69.99), 70);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->severity, "warning");
  EXPECT_THAT(n->reasons, ElementsAre("below_threshold"));
  EXPECT_EQ(n->threshold, 70);
  EXPECT_EQ(n->tier, "tier2");
  // A sink's own threshold.
  EXPECT_FALSE(QualityNotification(Completed(v1::TIER_2, 60), 50));
}

TEST(QualityNotification, Tier1Below95IsCriticalWhateverTheThreshold) {
  EXPECT_FALSE(QualityNotification(Completed(v1::TIER_1, 95), 70));
  auto n = QualityNotification(Completed(v1::TIER_1, 94.99), 70);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->severity, "critical");
  EXPECT_THAT(n->reasons, ElementsAre("tier1_below_95"));
  n = QualityNotification(Completed(v1::TIER_1, 40), 70);
  ASSERT_TRUE(n);
  EXPECT_THAT(n->reasons, ElementsAre("below_threshold", "tier1_below_95"));
  // tier2 at 94: not critical, and above the threshold.
  EXPECT_FALSE(QualityNotification(Completed(v1::TIER_2, 94), 70));
}

TEST(QualityNotification, AProfileAndItsDegradationAreOneNotification) {
  v1::Envelope completed = Completed(v1::TIER_1, 60);
  v1::Envelope degraded = Golden("data.quality.degraded");
  degraded.mutable_data_quality_degraded()->set_profile_id(completed.profile_completed().profile_id());
  auto a = QualityNotification(completed, 70);
  auto b = QualityNotification(degraded, 70);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->id, b->id);
  EXPECT_EQ(a->id, "quality-" + completed.profile_completed().profile_id());
  EXPECT_EQ(b->reasons.front(), "degraded");
  EXPECT_TRUE(b->previous_score.has_value());
  // Other types do not notify on quality.
  EXPECT_FALSE(QualityNotification(Golden("data.refreshed"), 70));
  EXPECT_FALSE(QualityNotification(Golden("metadata.profile.failed"), 70));
}

TEST(NotificationJson, CarriesSeverityEntityScoreGradeAndCorrelation) {
  v1::Envelope e = Completed(v1::TIER_1, 60);
  e.set_correlation_id("corr \"1\"");
  auto doc = Parse(NotificationJson(*QualityNotification(e, 70)));
  EXPECT_EQ(doc.fields().at("severity").string_value(), "critical");
  EXPECT_EQ(doc.fields().at("entity_key").string_value(), e.profile_completed().canonical_key());
  EXPECT_EQ(doc.fields().at("score").number_value(), 60);
  EXPECT_EQ(doc.fields().at("grade").string_value(), "A");
  EXPECT_EQ(doc.fields().at("correlation_id").string_value(), "corr \"1\"");
  EXPECT_EQ(doc.fields().at("event_id").string_value(), e.id());
  EXPECT_EQ(doc.fields().at("reasons").list_value().values_size(), 2);
  EXPECT_FALSE(doc.fields().contains("audience"));
}

TEST(ApprovalNotification, RequestsGoToApproversDecisionsToTheRequester) {
  auto created = ApprovalNotification(Golden("approval.created"), {"ann", "bob"});
  ASSERT_TRUE(created);
  EXPECT_EQ(created->audience, "approvers");
  EXPECT_EQ(created->required_role, "metadata_steward");
  EXPECT_EQ(created->approval_status, "pending");
  EXPECT_THAT(created->title, HasSubstr("test-user"));
  auto doc = Parse(NotificationJson(*created));
  EXPECT_EQ(doc.fields().at("recipients").list_value().values(1).string_value(), "bob");
  auto rejected = ApprovalNotification(Golden("approval.rejected"), {"test-user"});
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->audience, "requester");
  EXPECT_EQ(rejected->approval_status, "rejected");
  EXPECT_FALSE(rejected->decision_reason.empty());
  auto approved = ApprovalNotification(Golden("approval.approved"), {});
  ASSERT_TRUE(approved);
  EXPECT_EQ(approved->approval_status, "approved");
  EXPECT_EQ(Parse(NotificationJson(*approved)).fields().at("recipients").list_value().values_size(), 0);
  EXPECT_FALSE(ApprovalNotification(Golden("kpi.changed"), {}));
}

TEST(SlackJson, IsTextAndBlocksWithSlacksControlCharactersEscaped) {
  v1::Envelope e = Completed(v1::TIER_1, 60);
  e.mutable_profile_completed()->set_canonical_key("a<b>&c");
  const std::string body = SlackJson(*QualityNotification(e, 70));
  auto doc = Parse(body);
  EXPECT_THAT(doc.fields().at("text").string_value(), HasSubstr("[critical]"));
  EXPECT_THAT(doc.fields().at("text").string_value(), HasSubstr("a&lt;b&gt;&amp;c"));
  EXPECT_THAT(body, Not(HasSubstr("a<b>")));
  ASSERT_EQ(doc.fields().at("blocks").list_value().values_size(), 2);
  EXPECT_THAT(body, HasSubstr("Score 60.00"));
}

TEST(Notifications, AreBoundedWhateverTheEventCarries) {
  v1::Envelope e = Golden("approval.rejected");
  e.mutable_approval_rejected()->set_reason(std::string(16000, 'r') + "é");
  e.mutable_approval_rejected()->set_entity_key(std::string(16000, 'k'));
  std::vector<std::string> many(80, std::string(500, 'p'));
  auto n = ApprovalNotification(e, many);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->recipients.size(), kMaxRecipients);
  EXPECT_EQ(n->more_recipients, 30u);
  EXPECT_LE(n->decision_reason.size(), kMaxReasonBytes + 3);
  EXPECT_LE(n->title.size(), 2 * kMaxTextBytes + kMaxReasonBytes + 100) << "the title copies the clipped reason";
  EXPECT_LE(NotificationJson(*n).size(), 40000u);
  auto doc = Parse(SlackJson(*n));
  EXPECT_LE(doc.fields().at("text").string_value().size(), 3000u);
  EXPECT_LE(doc.fields()
                .at("blocks")
                .list_value()
                .values(0)
                .struct_value()
                .fields()
                .at("text")
                .struct_value()
                .fields()
                .at("text")
                .string_value()
                .size(),
            3000u);
  EXPECT_THAT(NotificationJson(*n), HasSubstr("\"more_recipients\":30"));
  // A profile id that is not a UUID never becomes a notification id (a header).
  v1::Envelope odd = Completed(v1::TIER_1, 10);
  odd.mutable_profile_completed()->set_profile_id("x\r\nX-Injected: 1");
  EXPECT_FALSE(QualityNotification(odd, 70));
  // One profile is one id however its events spell the UUID.
  v1::Envelope upper = Completed(v1::TIER_1, 10);
  upper.mutable_profile_completed()->set_profile_id("0193A5F2-8000-7000-8000-0000000000B1");
  EXPECT_EQ(QualityNotification(upper, 70)->id, "quality-0193a5f2-8000-7000-8000-0000000000b1");
}

}  // namespace
}  // namespace sluice::contracts
