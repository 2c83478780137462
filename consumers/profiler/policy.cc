#include "consumers/profiler/policy.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>

#include <vector>

#include "common/strings.h"
#include "contracts/governance.h"

namespace sluice::profiler {
namespace {

using common::Cat;

Decision Skip(std::string reason, std::string detail) { return {false, std::move(reason), std::move(detail)}; }
Decision Run(std::string detail) { return {true, "", std::move(detail)}; }

std::string Ago(absl::Duration d) { return absl::FormatDuration(absl::Trunc(d, absl::Seconds(1))); }
std::string Days(absl::Duration d) { return Cat(absl::ToDoubleHours(d) / 24, " days"); }

}  // namespace

absl::Duration PolicyConfig::StaleAfter(v1::Tier tier) const {
  const int i = static_cast<int>(tier) - static_cast<int>(v1::TIER_1);
  return i >= 0 && i < static_cast<int>(stale.size()) ? stale[i] : stale.back();
}

absl::StatusOr<std::array<absl::Duration, 5>> ParseStaleDays(std::string_view text) {
  const std::vector<std::string> parts = absl::StrSplit(std::string(text), ',');
  if (parts.size() != 5)
    return absl::InvalidArgumentError(
        Cat("expected five comma-separated day counts (tier1 to tier5), got \"", text, "\""));
  std::array<absl::Duration, 5> out;
  for (size_t i = 0; i < parts.size(); ++i) {
    double days = 0;
    if (!absl::SimpleAtod(parts[i], &days) || !(days > 0) || days > 3650)
      return absl::InvalidArgumentError(Cat("tier", i + 1, " \"", parts[i], "\" is not a number of days in (0, 3650]"));
    out[i] = absl::Seconds(days * 86400);
  }
  return out;
}

Decision Decide(const PolicyConfig& config, const Trigger& trigger, const EntityFacts& entity,
                const std::optional<LastProfile>& last, absl::Time now) {
  if (!entity.found) return Skip("entity_not_found", "no such entity for this tenant");
  if (!entity.bound) return Skip("no_binding", "the entity has no physical binding (schema and table)");
  if (!entity.binding_refused.empty()) return Skip("binding_not_allowed", entity.binding_refused);
  // Below tier2 an approval profiles only when it changed what a profile measures (the
  // binding or the column rules): a structural change always profiles, whatever the tier.
  if (trigger.kind == TriggerKind::kMetadataApproved && entity.tier != v1::TIER_1 && entity.tier != v1::TIER_2) {
    if (last && (last->definition.empty() || last->definition != entity.definition))
      return Run(
          Cat("the binding or column rules changed since the last profile (", Ago(now - last->profiled_at), " ago)"));
    return Skip("tier_not_eligible", Cat("approvals of ", v1::Tier_Name(entity.tier),
                                         " entries profile only when they change the binding or column rules"));
  }
  if (trigger.kind == TriggerKind::kDataRefreshed) {
    if (!last) return Run("never profiled");
    if (now - last->profiled_at > config.refresh_max_age)
      return Run(Cat("last profile ", Ago(now - last->profiled_at), " ago"));
    const double threshold = config.refresh_rows_fraction * static_cast<double>(last->row_count);
    if (static_cast<double>(trigger.rows_affected) > threshold)
      return Run(Cat(trigger.rows_affected, " rows affected > ", config.refresh_rows_fraction * 100, "% of ",
                     last->row_count));
    return Skip("refresh_below_threshold",
                Cat(trigger.rows_affected, " rows affected <= ", config.refresh_rows_fraction * 100, "% of ",
                    last->row_count, "; last profile ", Ago(now - last->profiled_at), " ago"));
  }
  if (!last) return Run("never profiled");
  const absl::Duration age = now - last->profiled_at;
  if (last->definition.empty() || last->definition != entity.definition)
    return Run(Cat("the binding or column rules changed since the last profile (", Ago(age), " ago)"));
  if (trigger.kind == TriggerKind::kProfileDue && !trigger.derived &&
      (trigger.reason == v1::PROFILE_REASON_QUALITY_DROP || trigger.reason == v1::PROFILE_REASON_MANUAL))
    return Run(Cat(v1::ProfileReason_Name(trigger.reason), "; last profile ", Ago(age), " ago"));
  const bool guarded = trigger.kind == TriggerKind::kMetadataApproved ||
                       (entity.tier == v1::TIER_1 &&
                        (trigger.priority == v1::PRIORITY_HIGH || trigger.priority == v1::PRIORITY_CRITICAL));
  if (guarded) {
    if (age < config.cooldown)
      return Skip("cooldown", Cat("profiled ", Ago(age), " ago (cooldown ", Ago(config.cooldown), ")"));
    return Run(Cat("last profile ", Ago(age), " ago"));
  }
  const absl::Duration stale = config.StaleAfter(entity.tier);
  if (age < stale)
    return Skip("not_stale",
                Cat("profiled ", Ago(age), " ago; ", contracts::TierDb(entity.tier), " is stale after ", Days(stale)));
  return Run(Cat("last profile ", Ago(age), " ago, stale after ", Days(stale)));
}

}  // namespace sluice::profiler
