#pragma once

#include <absl/time/time.h>

#include <cstdint>
#include <optional>
#include <string>

#include "sluice/v1/common.pb.h"

namespace sluice::profiler {

// When a trigger event leads to a profile run. Defaults are the documented policy.
struct PolicyConfig {
  // profile.due and metadata.approved: skip when profiled successfully this recently,
  // unless the reason is QUALITY_DROP or MANUAL.
  absl::Duration cooldown = absl::Hours(12);
  // data.refreshed: profile when the last profile is older than this ...
  absl::Duration refresh_max_age = absl::Hours(24);
  // ... or when the load touched more than this share of the last profile's rows.
  double refresh_rows_fraction = 0.10;
};

enum class TriggerKind { kProfileDue, kDataRefreshed, kMetadataApproved };

// What the policy needs to know about the entity.
struct EntityFacts {
  bool found = false;
  bool bound = false;  // has a physical binding (schema and table)
  // Why the binding is outside the profiler's allow-list (BindingAllowList::Check); empty
  // when it is allowed.
  std::string binding_refused;
  v1::Tier tier = v1::TIER_UNSPECIFIED;
};

struct LastProfile {
  absl::Time profiled_at;
  int64_t row_count = 0;
};

struct Decision {
  bool profile = false;
  // When skipped: entity_not_found | no_binding | binding_not_allowed | tier_not_eligible |
  // cooldown | refresh_below_threshold (job_in_flight is decided by the job table;
  // source_not_allowed and not_a_trigger before the policy is asked).
  std::string skip_reason;
  std::string detail;  // a sentence for the log and mdm_profile_trigger.detail
};

// The policy, as a pure function:
// - any trigger: skip when the entity is unknown, has no physical binding, or its binding
//   is outside the allow-list (so no job is queued for a table the tenant may not read);
// - metadata.approved: tier1 and tier2 only, then the cooldown;
// - metadata.profile.due: the cooldown, waived for QUALITY_DROP and MANUAL;
// - data.refreshed (no cooldown: fresh data is the point): profile when never profiled,
//   when the last profile is older than refresh_max_age, or when rows_affected exceeds
//   refresh_rows_fraction of the last profile's row count.
Decision Decide(const PolicyConfig& config, TriggerKind kind, v1::ProfileReason reason, const EntityFacts& entity,
                const std::optional<LastProfile>& last, int64_t rows_affected, absl::Time now);

}  // namespace sluice::profiler
