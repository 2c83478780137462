#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/v1/common.pb.h"

namespace sluice::profiler {

// When a trigger event leads to a profile run. Defaults are the documented policy
// (consumers/profiler/README.md, "Policy").
struct PolicyConfig {
  // A guard against repeated triggers: a tier1 high-priority profile.due or a
  // non-structural metadata.approved is skipped when the entity was profiled successfully
  // this recently. Never applies to a structural change, QUALITY_DROP or MANUAL.
  absl::Duration cooldown = absl::Hours(12);
  // Any other profile.due runs only once the last profile is older than its tier's stale
  // threshold: tier1 7 days, tier2 14, tier3 30, tier4 and tier5 90.
  std::array<absl::Duration, 5> stale = {absl::Hours(24 * 7), absl::Hours(24 * 14), absl::Hours(24 * 30),
                                         absl::Hours(24 * 90), absl::Hours(24 * 90)};
  // data.refreshed: profile when the last profile is older than this ...
  absl::Duration refresh_max_age = absl::Hours(24);
  // ... or when the load touched more than this share of the last profile's rows.
  double refresh_rows_fraction = 0.10;

  absl::Duration StaleAfter(v1::Tier tier) const;
};

// "7,14,30,90,90": the stale threshold in days of tier1 to tier5 (each > 0).
absl::StatusOr<std::array<absl::Duration, 5>> ParseStaleDays(std::string_view text);

enum class TriggerKind { kProfileDue, kDataRefreshed, kMetadataApproved };

// What the trigger event says.
struct Trigger {
  TriggerKind kind = TriggerKind::kProfileDue;
  v1::ProfileReason reason = v1::PROFILE_REASON_UNSPECIFIED;
  v1::Priority priority = v1::PRIORITY_UNSPECIFIED;  // profile.due only
  int64_t rows_affected = 0;                         // data.refreshed only
  // A publishing trigger's request (source sluice.triggers): its reason never bypasses the
  // cooldown, so a trigger cannot make profiles answer their own events.
  bool derived = false;
};

// What the policy needs to know about the entity.
struct EntityFacts {
  bool found = false;
  bool bound = false;  // has a physical binding (schema and table)
  // Why the binding is outside the profiler's allow-list (BindingAllowList::Check); empty
  // when it is allowed.
  std::string binding_refused;
  v1::Tier tier = v1::TIER_UNSPECIFIED;
  // The definition a profile measures: a digest of the binding and the column rules
  // (kDefinitionSql). A profile of another definition is out of date whatever its age.
  std::string definition;
};

struct LastProfile {
  absl::Time profiled_at;
  int64_t row_count = 0;
  std::string definition;  // the entity's definition when it was profiled; "" unknown
};

struct Decision {
  bool profile = false;
  // When skipped: entity_not_found | no_binding | binding_not_allowed | tier_not_eligible |
  // cooldown | not_stale | refresh_below_threshold (job_in_flight is decided by the job
  // table; source_not_allowed and not_a_trigger before the policy is asked).
  std::string skip_reason;
  std::string detail;  // a sentence for the log and mdm_profile_trigger.detail
};

// The policy, as a pure function, rule by rule in this order:
// 1. any trigger: skip when the entity is unknown, has no physical binding, or its binding
//    is outside the allow-list (so no job is queued for a table the tenant may not read);
// 2. metadata.approved: tier1 and tier2 only;
// 3. data.refreshed: profile when never profiled, when the last profile is older than
//    refresh_max_age, or when rows_affected exceeds refresh_rows_fraction of the last
//    profile's row count (no cooldown: fresh data is the point);
// 4. never profiled, or the definition (binding, column rules) changed since the last
//    profile: profile;
// 5. profile.due with reason QUALITY_DROP or MANUAL: profile;
// 6. metadata.approved (not structural) and tier1 profile.due of priority HIGH or
//    CRITICAL: profile unless within the cooldown;
// 7. any other profile.due: profile once the last profile is older than the tier's stale
//    threshold.
Decision Decide(const PolicyConfig& config, const Trigger& trigger, const EntityFacts& entity,
                const std::optional<LastProfile>& last, absl::Time now);

}  // namespace sluice::profiler
