#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "contracts/catalog.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::scheduler {

struct SchedulerConfig {
  std::string pg_dsn;
  std::string pg_schema;  // schema of the governance tables; empty = the search_path
  // How often each tier is profiled; tier4 and tier5 are never scheduled.
  absl::Duration tier1_cadence = absl::Hours(24);
  absl::Duration tier2_cadence = absl::Hours(24 * 3);
  absl::Duration tier3_cadence = absl::Hours(24 * 7);
  // A tier1 entity this long without a profile is due with CRITICAL priority.
  absl::Duration critical_age = absl::Hours(24 * 10);
  std::string source = "kernel.scheduler";
  // Most events per run (oldest first); the rest come due on the next run.
  int limit = 10000;
};

// One entity whose profile is due.
struct DueEntity {
  v1::Envelope event;                          // the metadata.profile.due to emit
  std::optional<absl::Time> last_profiled_at;  // absent when never profiled
  absl::Duration age;                          // since the last profile, or since the entity was created
  absl::Time window_start;                     // the cadence window the event id is derived from
};

struct RunReport {
  std::vector<DueEntity> due;  // every entity found due
  int emitted = 0;             // events written to the outbox by this run
  int already_emitted = 0;     // due, but this window's event was emitted by an earlier run
};

// The start of the cadence window holding `now` (windows are aligned to the Unix epoch).
absl::Time WindowStart(absl::Time now, absl::Duration cadence);
// The event id of an entity's profile.due in one window: a UUID (version 8) from the
// SHA-256 of tenant, entity and window, so every run in the window derives the same id.
std::string DueEventId(const std::string& tenant, const std::string& entity_id, v1::Tier tier, absl::Time window_start);
// tier1: HIGH, CRITICAL once critical_age old; other tiers NORMAL.
v1::Priority PriorityFor(v1::Tier tier, absl::Duration age, const SchedulerConfig& config);

// sluice-scheduler's engine: finds active, bound tier1-3 metadata entities whose last
// successful profile (or, when never profiled, their creation) is older than the tier's
// cadence, and emits metadata.profile.due through event_outbox (published by
// sluice-relay). The derived id is recorded in mdm_profile_schedule in the same
// transaction, so a second run in the same window emits nothing.
//
// Not thread-safe (one connection, reopened by Run when it was lost). Lifetime: owns it.
class Scheduler {
 public:
  static absl::StatusOr<Scheduler> Create(SchedulerConfig config,
                                          const contracts::Catalog& catalog = contracts::Catalog::Default());
  // Finds what is due at `now`; with dry_run nothing is written.
  absl::StatusOr<RunReport> Run(absl::Time now, bool dry_run);

 private:
  Scheduler(SchedulerConfig config, const contracts::Catalog& catalog, common::PgConnection conn)
      : config_(std::move(config)), catalog_(catalog), conn_(std::move(conn)) {}
  absl::StatusOr<std::vector<DueEntity>> FindDue(absl::Time now);
  static absl::StatusOr<common::PgConnection> Connect(const SchedulerConfig& config);

  SchedulerConfig config_;
  contracts::Catalog catalog_;
  common::PgConnection conn_;
};

}  // namespace sluice::scheduler
