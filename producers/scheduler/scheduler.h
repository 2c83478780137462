#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg.h"
#include "contracts/catalog.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::scheduler {

// A daily off-peak window: opens `start` after midnight UTC and stays open `length`.
struct OffPeakWindow {
  absl::Duration start = absl::Hours(2);
  absl::Duration length = absl::Hours(4);
};

struct SchedulerConfig {
  std::string pg_dsn;
  std::string pg_schema;  // schema of the governance tables; empty = the search_path
  // How often each tier is profiled; tier4 and tier5 are never scheduled. tier2 and tier3
  // match the profiler's stale thresholds; tier1 runs daily so its 7-day compliance holds
  // even when a run fails.
  absl::Duration tier1_cadence = absl::Hours(24);
  absl::Duration tier2_cadence = absl::Hours(24 * 14);
  absl::Duration tier3_cadence = absl::Hours(24 * 30);
  // NORMAL and LOW priority events are emitted only inside the off-peak window, each
  // entity at its own offset into it; HIGH and CRITICAL at once.
  OffPeakWindow window;
  std::map<std::string, OffPeakWindow> tenant_windows;  // per-tenant overrides
  // How often the scheduler runs (the CronJob's period, or --every). Offsets stay at least
  // this far from the window's end, so some run falls between each entity's slot and the
  // end of the window.
  absl::Duration run_period = absl::Minutes(15);
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
  absl::Time window_start;                     // the window the event id is derived from (EmissionKey)
  absl::Time emit_at;                          // when it may be emitted (now, or its slot in the off-peak window)
};

struct RunReport {
  std::vector<DueEntity> due;      // every entity found due and emitted now (or already emitted)
  std::vector<DueEntity> waiting;  // due, NORMAL or LOW, waiting for its slot in the off-peak window
  int emitted = 0;                 // events written to the outbox by this run
  int already_emitted = 0;         // due, but this window's event was emitted by an earlier run
};

// "HH:MM/DURATION", e.g. "02:00/4h" (UTC; the length at least 1 minute, at most 24h).
absl::StatusOr<OffPeakWindow> ParseWindow(std::string_view text);
// "TENANT=HH:MM/DURATION".
absl::StatusOr<std::pair<std::string, OffPeakWindow>> ParseTenantWindow(std::string_view text);
// The latest opening of the window at or before `now`.
absl::Time SlotStart(absl::Time now, const OffPeakWindow& window);
// An entity's offset into the window, in whole minutes in [0, length - run_period) (at
// least [0, 1 minute)): derived from tenant and entity, so the scans of a tenant spread
// over the window instead of starting at once, and a run every run_period always finds
// each entity's slot open.
absl::Duration SpreadOffset(const std::string& tenant, const std::string& entity_id, const OffPeakWindow& window,
                            absl::Duration run_period);
// When a due entity of this priority may be emitted: `now` for HIGH and CRITICAL; for
// others `now` when inside the open window past the entity's offset, else the entity's
// slot in the next opening.
absl::Time EmitAt(absl::Time now, v1::Priority priority, const std::string& tenant, const std::string& entity_id,
                  const OffPeakWindow& window, absl::Duration run_period);
// What an event id is derived from: the cadence window for cadences under a day, else the
// window's latest opening. An entity still due (its job failed, or never ran) is emitted
// again in the next window, not only in the next cadence period.
absl::Time EmissionKey(absl::Time now, absl::Duration cadence, const OffPeakWindow& window);

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
  const OffPeakWindow& WindowFor(const std::string& tenant) const;
  static absl::StatusOr<common::PgConnection> Connect(const SchedulerConfig& config);

  SchedulerConfig config_;
  contracts::Catalog catalog_;
  common::PgConnection conn_;
};

}  // namespace sluice::scheduler
