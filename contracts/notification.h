#pragma once
// The notifications a tenant's sinks receive (TriggerService's NotificationSink), made
// from events alone, and their two wire forms: Sluice's JSON and a Slack-compatible
// incoming-webhook message. Pure functions: sluice-triggers and the gateway (test
// notifications) share them.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/v1/envelope.pb.h"

namespace sluice::contracts {

// A tier1 entity profiled below this notifies (severity "critical").
inline constexpr double kTier1QualityFloor = 95;
// A sink's threshold when none is given.
inline constexpr int kDefaultQualityThreshold = 70;
// Bounds of what a notification copies from an event (bytes, cut at a character
// boundary), of its recipients, and of a Slack text object (Slack refuses more).
inline constexpr size_t kMaxTextBytes = 200, kMaxReasonBytes = 1000, kMaxRecipients = 50, kMaxSlackText = 2900;

// The catalog types that can notify.
const std::vector<std::string>& NotificationTypes();

struct Notification {
  // The receiver's idempotency key: "quality-<profile id>" (one per profile, whichever
  // of its events comes first), the approval event's id, or "test-<uuid>".
  std::string id;
  std::string tenant_id;
  std::string category;  // "quality", "approval" or "test"
  std::string severity;  // "critical", "warning" or "info"
  std::string title;     // one line for people
  // The event that caused it.
  std::string event_id, event_type, correlation_id, occurred_at;
  // Quality.
  std::string entity_key, tier, grade, profile_id;
  std::optional<double> score, previous_score;
  int threshold = 0;
  std::vector<std::string> reasons;  // "below_threshold", "tier1_below_95", "degraded"
  // Approvals.
  std::string approval_id, approval_status, entity_type, required_role, decided_by, decision_reason;
  // Who it is for: the approvers of required_role, or the requester.
  std::string audience;                 // "approvers", "requester" or "" (the tenant)
  std::vector<std::string> recipients;  // at most kMaxRecipients
  size_t more_recipients = 0;           // those left out
};

// A quality notification when `e` calls for one: metadata.profile.completed scoring
// below `threshold` or (tier1) below kTier1QualityFloor; data.quality.degraded. nullopt
// for anything else, and for a profile id that is not a UUID (the id goes into a header).
std::optional<Notification> QualityNotification(const v1::Envelope& e, int threshold);

// An approval notification for approval.created (`recipients`: its approvers) or
// approval.approved / approval.rejected (`recipients`: its requester); nullopt for other
// types. An empty `recipients` still notifies (the tenant's sink decides who reads it).
std::optional<Notification> ApprovalNotification(const v1::Envelope& e, std::vector<std::string> recipients);

// What TestNotificationSink sends to the sink named `sink_name`.
Notification TestNotification(std::string tenant_id, std::string id, std::string_view sink_name);

// The JSON body of a notify_webhook sink (one object; stable field names).
std::string NotificationJson(const Notification& n);
// The body of a notify_slack sink: {"text": ..., "blocks": [...]} (Slack's mrkdwn,
// with &, < and > escaped as Slack requires).
std::string SlackJson(const Notification& n);

}  // namespace sluice::contracts
