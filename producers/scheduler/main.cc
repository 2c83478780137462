// sluice-scheduler: emits metadata.profile.due for entities whose profile is older than
// their tier's cadence (see producers/scheduler/README.md).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include "common/env.h"
#include "common/log.h"
#include "contracts/envelope.h"
#include "producers/scheduler/scheduler.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

absl::Status ParseDuration(const std::string& flag, const std::string& text, absl::Duration* out) {
  if (!absl::ParseDuration(text, out) || *out < absl::ZeroDuration())
    return absl::InvalidArgumentError(flag + ": '" + text + "' is not a duration like 90s, 30m, 24h");
  return absl::OkStatus();
}

std::string Describe(const sluice::scheduler::DueEntity& d) {
  const auto& p = d.event.profile_due();
  return fmt::format("{} {} {} {} {} last_profiled={} age={} id={}", d.event.tenant_id(), p.canonical_key(), p.entity_id(),
                     sluice::v1::Tier_Name(p.tier()), sluice::v1::Priority_Name(p.priority()),
                     d.last_profiled_at ? absl::FormatTime(absl::RFC3339_sec, *d.last_profiled_at, absl::UTCTimeZone())
                                        : std::string("never"),
                     absl::FormatDuration(absl::Trunc(d.age, absl::Minutes(1))), d.event.id());
}
}  // namespace

int main(int argc, char** argv) {
  sluice::scheduler::SchedulerConfig sc;
  sc.pg_dsn = sluice::common::DefaultPgDsn();
  std::string every, tier1 = "24h", tier2 = "72h", tier3 = "168h", critical = "240h", log_level = "info";
  bool dry_run = false;
  CLI::App app{"sluice-scheduler: emit metadata.profile.due for entities whose last profile is older than their cadence"};
  app.add_option("--pg-dsn", sc.pg_dsn, "PostgreSQL with the governance tables")->envname("SLUICE_PG_DSN")->capture_default_str();
  app.add_option("--pg-schema", sc.pg_schema, "Schema of the governance tables (default: the search_path)")
      ->envname("SLUICE_PG_SCHEMA");
  app.add_option("--every", every, "Run in a loop with this period (e.g. 15m); default: one run, then exit")
      ->envname("SLUICE_SCHEDULER_EVERY");
  app.add_flag("--dry-run", dry_run, "Print what would be emitted; write nothing");
  app.add_option("--tier1-cadence", tier1, "Profile tier1 entities this often")->envname("SLUICE_SCHEDULER_TIER1_CADENCE")->capture_default_str();
  app.add_option("--tier2-cadence", tier2, "Profile tier2 entities this often")->envname("SLUICE_SCHEDULER_TIER2_CADENCE")->capture_default_str();
  app.add_option("--tier3-cadence", tier3, "Profile tier3 entities this often")->envname("SLUICE_SCHEDULER_TIER3_CADENCE")->capture_default_str();
  app.add_option("--critical-age", critical, "tier1 entities this long unprofiled are due with CRITICAL priority")
      ->envname("SLUICE_SCHEDULER_CRITICAL_AGE")->capture_default_str();
  app.add_option("--limit", sc.limit, "Most events per run (oldest first)")
      ->envname("SLUICE_SCHEDULER_LIMIT")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->envname("SLUICE_LOG_LEVEL")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  sluice::common::InitLogging("sluice-scheduler", log_level);

  absl::Duration period = absl::ZeroDuration();
  for (auto [flag, text, out] : {std::tuple{"--tier1-cadence", &tier1, &sc.tier1_cadence},
                                 std::tuple{"--tier2-cadence", &tier2, &sc.tier2_cadence},
                                 std::tuple{"--tier3-cadence", &tier3, &sc.tier3_cadence},
                                 std::tuple{"--critical-age", &critical, &sc.critical_age}}) {
    if (auto s = ParseDuration(flag, *text, out); !s.ok()) {
      spdlog::critical("{}", std::string(s.message()));
      return 2;
    }
  }
  if (!every.empty()) {
    if (auto s = ParseDuration("--every", every, &period); !s.ok() || period < absl::Seconds(1)) {
      spdlog::critical("--every: '{}' is not a duration of at least 1s (e.g. 15m)", every);
      return 2;
    }
  }
  auto scheduler = sluice::scheduler::Scheduler::Create(sc);
  if (!scheduler.ok()) {
    spdlog::critical("scheduler: {}", std::string(scheduler.status().message()));
    return 1;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  int rc = 0;
  do {
    auto report = scheduler->Run(absl::Now(), dry_run);
    if (!report.ok()) {
      spdlog::error("scheduler: run failed: {}", std::string(report.status().message()));
      rc = 1;
    } else if (dry_run) {
      for (const auto& d : report->due) std::printf("would emit %s\n", Describe(d).c_str());
      std::printf("%zu due (dry run: nothing emitted)\n", report->due.size());
    } else {
      for (const auto& d : report->due) spdlog::info("due: {}", Describe(d));
      spdlog::info("scheduler: {} due, {} emitted, {} already emitted in their window", report->due.size(),
                   report->emitted, report->already_emitted);
      rc = 0;
    }
    std::fflush(stdout);
    for (absl::Time until = absl::Now() + period; period > absl::ZeroDuration() && !g_stop.load() && absl::Now() < until;)
      absl::SleepFor(absl::Milliseconds(200));
  } while (period > absl::ZeroDuration() && !g_stop.load());
  return rc;
}
