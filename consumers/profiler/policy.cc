#include "consumers/profiler/policy.h"

#include "common/strings.h"

namespace sluice::profiler {
namespace {

Decision Skip(std::string reason, std::string detail) { return {false, std::move(reason), std::move(detail)}; }
Decision Run(std::string detail) { return {true, "", std::move(detail)}; }

std::string Ago(absl::Duration d) { return absl::FormatDuration(absl::Trunc(d, absl::Seconds(1))); }

}  // namespace

Decision Decide(const PolicyConfig& config, TriggerKind kind, v1::ProfileReason reason, const EntityFacts& entity,
                const std::optional<LastProfile>& last, int64_t rows_affected, absl::Time now) {
  using common::Cat;
  if (!entity.found) return Skip("entity_not_found", "no such entity for this tenant");
  if (!entity.bound) return Skip("no_binding", "the entity has no physical binding (schema and table)");
  if (!entity.binding_refused.empty()) return Skip("binding_not_allowed", entity.binding_refused);
  if (kind == TriggerKind::kMetadataApproved && entity.tier != v1::TIER_1 && entity.tier != v1::TIER_2)
    return Skip("tier_not_eligible",
                Cat("approvals trigger profiles for tier1 and tier2 only, not ", v1::Tier_Name(entity.tier)));
  if (kind == TriggerKind::kDataRefreshed) {
    if (!last) return Run("never profiled");
    if (now - last->profiled_at > config.refresh_max_age)
      return Run(Cat("last profile ", Ago(now - last->profiled_at), " ago"));
    const double threshold = config.refresh_rows_fraction * static_cast<double>(last->row_count);
    if (static_cast<double>(rows_affected) > threshold)
      return Run(Cat(rows_affected, " rows affected > ", config.refresh_rows_fraction * 100, "% of ", last->row_count));
    return Skip("refresh_below_threshold",
                Cat(rows_affected, " rows affected <= ", config.refresh_rows_fraction * 100, "% of ", last->row_count,
                    "; last profile ", Ago(now - last->profiled_at), " ago"));
  }
  const bool waived = reason == v1::PROFILE_REASON_QUALITY_DROP || reason == v1::PROFILE_REASON_MANUAL;
  if (!waived && last && now - last->profiled_at < config.cooldown)
    return Skip("cooldown",
                Cat("profiled ", Ago(now - last->profiled_at), " ago (cooldown ", Ago(config.cooldown), ")"));
  return Run(last ? Cat("last profile ", Ago(now - last->profiled_at), " ago") : std::string("never profiled"));
}

}  // namespace sluice::profiler
