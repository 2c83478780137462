#include "contracts/notification.h"

#include <google/protobuf/util/time_util.h>

#include <cctype>
#include <cmath>

#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/governance.h"

namespace sluice::contracts {
namespace {

using common::Cat;
using common::JsonQuote;
using google::protobuf::util::TimeUtil;

std::string GradeLetter(v1::QualityGrade g) {
  const std::string& name = v1::QualityGrade_Name(g);
  constexpr std::string_view kPrefix = "QUALITY_GRADE_";
  if (g == v1::QUALITY_GRADE_UNSPECIFIED || name.rfind(kPrefix, 0) != 0) return "";
  return name.substr(kPrefix.size());
}

// At most `max` bytes of `s`, cut at a character boundary, "…" marking a cut: events'
// strings may be 16 KiB, and a Slack text block takes at most 3,000 characters.
std::string Clip(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return Cat(s.substr(0, end), "…");
}

// A notification id made of a UUID: lower-case, so one profile is one id however its
// events spell it.
std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Score(double v) { return std::isfinite(v) ? fmt::format("{:.2f}", v) : "?"; }

Notification FromEvent(const v1::Envelope& e, std::string category) {
  Notification n;
  n.tenant_id = e.tenant_id();
  n.category = std::move(category);
  n.event_id = e.id();
  n.event_type = e.type();
  n.correlation_id = Clip(e.correlation_id(), kMaxTextBytes);
  if (e.has_occurred_at()) n.occurred_at = TimeUtil::ToString(e.occurred_at());
  return n;
}

void AddQualityReasons(Notification& n, double score, v1::Tier tier, int threshold) {
  if (score < threshold) n.reasons.push_back("below_threshold");
  if (tier == v1::TIER_1 && score < kTier1QualityFloor) n.reasons.push_back("tier1_below_95");
  n.severity = tier == v1::TIER_1 && score < kTier1QualityFloor ? "critical" : "warning";
}

// A JSON number, or null for what JSON cannot hold.
std::string JsonNumber(double v) { return std::isfinite(v) ? fmt::format("{}", v) : "null"; }

std::string JsonStrings(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += Cat(i ? "," : "", JsonQuote(v[i]));
  return out + "]";
}

// Slack's mrkdwn: &, < and > are control characters there.
std::string SlackEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

}  // namespace

const std::vector<std::string>& NotificationTypes() {
  static const std::vector<std::string> kTypes = {"metadata.profile.completed", "data.quality.degraded",
                                                  "approval.created", "approval.approved", "approval.rejected"};
  return kTypes;
}

std::optional<Notification> QualityNotification(const v1::Envelope& e, int threshold) {
  if (e.has_profile_completed()) {
    const auto& p = e.profile_completed();
    if (!IsUuid(p.profile_id())) return std::nullopt;
    Notification n = FromEvent(e, "quality");
    AddQualityReasons(n, p.quality_score(), p.tier(), threshold);
    if (n.reasons.empty()) return std::nullopt;
    n.id = Cat("quality-", Lower(p.profile_id()));
    n.entity_key = Clip(p.canonical_key(), kMaxTextBytes);
    n.tier = TierDb(p.tier());
    n.grade = GradeLetter(p.quality_grade());
    n.profile_id = p.profile_id();
    n.score = p.quality_score();
    n.threshold = threshold;
    n.title = Cat("Quality ", n.severity, ": ", n.entity_key, " (", n.tier, ") scored ", Score(p.quality_score()),
                  ", grade ", n.grade);
    return n;
  }
  if (e.has_data_quality_degraded()) {
    const auto& d = e.data_quality_degraded();
    if (!IsUuid(d.profile_id())) return std::nullopt;
    Notification n = FromEvent(e, "quality");
    n.reasons.push_back("degraded");
    AddQualityReasons(n, d.current_score(), d.tier(), threshold);
    n.id = Cat("quality-", Lower(d.profile_id()));
    n.entity_key = Clip(d.canonical_key(), kMaxTextBytes);
    n.tier = TierDb(d.tier());
    n.grade = GradeLetter(d.current_grade());
    n.profile_id = d.profile_id();
    n.score = d.current_score();
    n.previous_score = d.previous_score();
    n.threshold = threshold;
    n.title = Cat("Quality ", n.severity, ": ", n.entity_key, " (", n.tier, ") fell from ", Score(d.previous_score()),
                  " to ", Score(d.current_score()), ", grade ", n.grade);
    return n;
  }
  return std::nullopt;
}

std::optional<Notification> ApprovalNotification(const v1::Envelope& e, std::vector<std::string> recipients) {
  Notification n = FromEvent(e, "approval");
  n.id = Lower(e.id());
  n.severity = "info";
  if (recipients.size() > kMaxRecipients) {
    n.more_recipients = recipients.size() - kMaxRecipients;
    recipients.resize(kMaxRecipients);
  }
  for (auto& r : recipients) r = Clip(r, kMaxTextBytes);
  n.recipients = std::move(recipients);
  if (e.has_approval_created()) {
    const auto& c = e.approval_created();
    n.approval_id = Clip(c.approval_id(), kMaxTextBytes);
    n.approval_status = "pending";
    n.entity_type = EntityTypeDb(c.entity_type());
    n.entity_key = Clip(c.entity_key(), kMaxTextBytes);
    n.tier = TierDb(c.tier());
    n.required_role = Clip(c.required_role(), kMaxTextBytes);
    n.audience = "approvers";
    n.title = Cat("Approval requested by ", Clip(c.requested_by().actor_id(), kMaxTextBytes), ": ", n.entity_type, " ",
                  n.entity_key, " (", n.tier, ") needs a ", n.required_role);
    return n;
  }
  if (e.has_approval_approved()) {
    const auto& a = e.approval_approved();
    n.approval_id = Clip(a.approval_id(), kMaxTextBytes);
    n.approval_status = "approved";
    n.entity_type = EntityTypeDb(a.entity_type());
    n.entity_key = Clip(a.entity_key(), kMaxTextBytes);
    n.tier = TierDb(a.tier());
    n.decided_by = Clip(a.approved_by().actor_id(), kMaxTextBytes);
    n.audience = "requester";
    n.title = Cat("Approved by ", n.decided_by, ": ", n.entity_type, " ", n.entity_key, " (", n.tier, ")");
    return n;
  }
  if (e.has_approval_rejected()) {
    const auto& r = e.approval_rejected();
    n.approval_id = Clip(r.approval_id(), kMaxTextBytes);
    n.approval_status = "rejected";
    n.entity_type = EntityTypeDb(r.entity_type());
    n.entity_key = Clip(r.entity_key(), kMaxTextBytes);
    n.tier = TierDb(r.tier());
    n.decided_by = Clip(r.rejected_by().actor_id(), kMaxTextBytes);
    n.decision_reason = Clip(r.reason(), kMaxReasonBytes);
    n.audience = "requester";
    n.title = Cat("Rejected by ", n.decided_by, ": ", n.entity_type, " ", n.entity_key, " (", n.tier,
                  "): ", n.decision_reason);
    return n;
  }
  return std::nullopt;
}

Notification TestNotification(std::string tenant_id, std::string id, std::string_view sink_name) {
  Notification n;
  n.id = std::move(id);
  n.tenant_id = std::move(tenant_id);
  n.category = "test";
  n.severity = "info";
  n.title = Cat("Test notification from Sluice to the sink \"", Clip(sink_name, kMaxTextBytes), "\"");
  return n;
}

std::string NotificationJson(const Notification& n) {
  std::string out =
      Cat(R"({"id":)", JsonQuote(n.id), R"(,"tenant_id":)", JsonQuote(n.tenant_id), R"(,"category":)",
          JsonQuote(n.category), R"(,"severity":)", JsonQuote(n.severity), R"(,"title":)", JsonQuote(n.title));
  auto field = [&out](std::string_view name, const std::string& v) {
    if (!v.empty()) out += Cat(",", JsonQuote(name), ":", JsonQuote(v));
  };
  field("entity_key", n.entity_key);
  field("entity_type", n.entity_type);
  field("tier", n.tier);
  if (n.score) out += Cat(R"(,"score":)", JsonNumber(*n.score));
  if (n.previous_score) out += Cat(R"(,"previous_score":)", JsonNumber(*n.previous_score));
  field("grade", n.grade);
  field("profile_id", n.profile_id);
  if (n.category == "quality") out += Cat(R"(,"threshold":)", n.threshold, R"(,"reasons":)", JsonStrings(n.reasons));
  field("approval_id", n.approval_id);
  field("approval_status", n.approval_status);
  field("required_role", n.required_role);
  field("decided_by", n.decided_by);
  field("decision_reason", n.decision_reason);
  field("correlation_id", n.correlation_id);
  field("event_id", n.event_id);
  field("event_type", n.event_type);
  field("occurred_at", n.occurred_at);
  field("audience", n.audience);
  if (!n.audience.empty()) out += Cat(R"(,"recipients":)", JsonStrings(n.recipients));
  if (n.more_recipients > 0) out += Cat(R"(,"more_recipients":)", n.more_recipients);
  return out + "}";
}

std::string SlackJson(const Notification& n) {
  static constexpr std::string_view kMark[] = {":red_circle:", ":warning:", ":information_source:"};
  const std::string_view mark = n.severity == "critical" ? kMark[0] : n.severity == "warning" ? kMark[1] : kMark[2];
  std::string lines = Cat(mark, " *", SlackEscape(n.title), "*");
  if (n.score) {
    lines += Cat("\nScore ", Score(*n.score));
    if (n.previous_score) lines += Cat(" (was ", Score(*n.previous_score), ")");
    if (!n.grade.empty()) lines += Cat(", grade ", n.grade);
  }
  if (!n.audience.empty()) {
    lines += Cat("\nFor the ", n.audience, ": ");
    if (n.recipients.empty()) lines += n.audience == "approvers" ? Cat("role ", SlackEscape(n.required_role)) : "-";
    for (size_t i = 0; i < n.recipients.size(); ++i) lines += Cat(i ? ", " : "", SlackEscape(n.recipients[i]));
    if (n.more_recipients > 0) lines += Cat(" and ", n.more_recipients, " more");
  }
  std::string context = Cat("tenant ", SlackEscape(n.tenant_id));
  if (!n.correlation_id.empty()) context += Cat(" · correlation ", SlackEscape(n.correlation_id));
  if (!n.event_type.empty()) context += Cat(" · ", SlackEscape(n.event_type), " ", SlackEscape(n.event_id));
  const std::string text = Cat("[", n.severity, "] ", SlackEscape(n.title));
  // Slack refuses a text object over 3,000 characters (and a refusal is not retried).
  return Cat(R"({"text":)", JsonQuote(Clip(text, kMaxSlackText)),
             R"(,"blocks":[{"type":"section","text":{"type":"mrkdwn","text":)", JsonQuote(Clip(lines, kMaxSlackText)),
             R"(}},{"type":"context","elements":[{"type":"mrkdwn","text":)", JsonQuote(Clip(context, kMaxSlackText)),
             "}]}]}");
}

}  // namespace sluice::contracts
