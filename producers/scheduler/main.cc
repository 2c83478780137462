// sluice-scheduler: emits metadata.profile.due for entities whose profile is older than
// their tier's cadence (see producers/scheduler/README.md).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "common/service.h"
#include "contracts/envelope.h"
#include "producers/scheduler/scheduler.h"

namespace {
absl::Status ParseDuration(const std::string& flag, const std::string& text, absl::Duration* out) {
  if (!absl::ParseDuration(text, out) || *out < absl::ZeroDuration())
    return absl::InvalidArgumentError(flag + ": '" + text + "' is not a duration like 90s, 30m, 24h");
  return absl::OkStatus();
}

std::string Describe(const sluice::scheduler::DueEntity& d) {
  const auto& p = d.event.profile_due();
  return fmt::format("{} {} {} {} {} last_profiled={} age={} id={}", d.event.tenant_id(), p.canonical_key(),
                     p.entity_id(), sluice::v1::Tier_Name(p.tier()), sluice::v1::Priority_Name(p.priority()),
                     d.last_profiled_at ? absl::FormatTime(absl::RFC3339_sec, *d.last_profiled_at, absl::UTCTimeZone())
                                        : std::string("never"),
                     absl::FormatDuration(absl::Trunc(d.age, absl::Minutes(1))), d.event.id());
}
}  // namespace

int main(int argc, char** argv) {
  sluice::common::Service service(
      "sluice-scheduler", "emit metadata.profile.due for entities whose last profile is older than their cadence");
  sluice::scheduler::SchedulerConfig sc;
  std::string every, tier1 = "24h", tier2 = "336h", tier3 = "720h", critical = "240h", window = "02:00/4h",
                     run_period = "15m";
  std::vector<std::string> tenant_windows;
  bool dry_run = false;
  service.AddPostgres(sc.pg_dsn, sc.pg_schema, "the governance tables");
  service.app()
      .add_option("--every", every, "Run in a loop with this period (e.g. 15m); default: one run, then exit")
      ->envname(service.EnvName("every"));
  service.app().add_flag("--dry-run", dry_run, "Print what would be emitted; write nothing");
  service.Flag("tier1-cadence", tier1, "Profile tier1 entities this often");
  service.Flag("tier2-cadence", tier2, "Profile tier2 entities this often");
  service.Flag("tier3-cadence", tier3, "Profile tier3 entities this often");
  service.Flag("critical-age", critical, "tier1 entities this long unprofiled are due with CRITICAL priority");
  service.Flag("run-period", run_period,
               "How often the scheduler is run (the CronJob's period; --every overrides it): every entity's slot is "
               "kept at least this far from the window's end");
  service.Flag("limit", sc.limit, "Most events per run (oldest first)")->check(CLI::PositiveNumber);
  auto valid = [](auto parse) {
    return [parse](const std::string& v) {
      auto r = parse(v);
      return r.ok() ? std::string() : std::string(r.status().message());
    };
  };
  service
      .Flag("window", window,
            "Off-peak window HH:MM/DURATION (UTC) in which NORMAL and LOW priority events are emitted, spread over it; "
            "HIGH and CRITICAL bypass it")
      ->check(valid(sluice::scheduler::ParseWindow));
  service
      .ListFlag(
          "tenant-window", tenant_windows,
          "TENANT=HH:MM/DURATION: that tenant's off-peak window instead of --window; repeatable or comma-separated")
      ->check(valid(sluice::scheduler::ParseTenantWindow));
  service.AddTracing();
  if (auto rc = service.Parse(argc, argv)) return *rc;
  if (auto s = service.StartTracing(); !s.ok()) {
    spdlog::critical("{}", std::string(s.message()));
    return 2;
  }

  sc.window = *sluice::scheduler::ParseWindow(window);  // checked by the flag
  for (const auto& tw : tenant_windows) {
    auto [tenant, w] = *sluice::scheduler::ParseTenantWindow(tw);
    if (!sc.tenant_windows.emplace(tenant, w).second) {
      spdlog::critical("--tenant-window: {} is given twice", tenant);
      return 2;
    }
  }
  absl::Duration period = absl::ZeroDuration();
  for (auto [flag, text, out] : {std::tuple{"--tier1-cadence", &tier1, &sc.tier1_cadence},
                                 std::tuple{"--tier2-cadence", &tier2, &sc.tier2_cadence},
                                 std::tuple{"--tier3-cadence", &tier3, &sc.tier3_cadence},
                                 std::tuple{"--critical-age", &critical, &sc.critical_age},
                                 std::tuple{"--run-period", &run_period, &sc.run_period}}) {
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
    sc.run_period = std::max(period, absl::Minutes(1));
  }
  if (sc.run_period < absl::Minutes(1)) {
    spdlog::critical("--run-period: '{}' is shorter than a minute", run_period);
    return 2;
  }
  auto scheduler = sluice::scheduler::Scheduler::Create(sc);
  if (!scheduler.ok()) {
    spdlog::critical("scheduler: {}", std::string(scheduler.status().message()));
    return 1;
  }
  int rc = 0;
  do {
    auto report = scheduler->Run(absl::Now(), dry_run);
    if (!report.ok()) {
      spdlog::error("scheduler: run failed: {}", std::string(report.status().message()));
      rc = 1;
    } else if (dry_run) {
      for (const auto& d : report->due) std::printf("would emit %s\n", Describe(d).c_str());
      for (const auto& d : report->waiting)
        std::printf("would wait until %s: %s\n",
                    absl::FormatTime(absl::RFC3339_sec, d.emit_at, absl::UTCTimeZone()).c_str(), Describe(d).c_str());
      std::printf("%zu due, %zu waiting for the off-peak window (dry run: nothing emitted)\n", report->due.size(),
                  report->waiting.size());
    } else {
      for (const auto& d : report->due) spdlog::info("due: {}", Describe(d));
      spdlog::info(
          "scheduler: {} due, {} emitted, {} already emitted in their window, {} waiting for the off-peak window "
          "(next at {})",
          report->due.size(), report->emitted, report->already_emitted, report->waiting.size(),
          report->waiting.empty()
              ? std::string("-")
              : absl::FormatTime(absl::RFC3339_sec,
                                 std::min_element(report->waiting.begin(), report->waiting.end(),
                                                  [](const auto& a, const auto& b) { return a.emit_at < b.emit_at; })
                                     ->emit_at,
                                 absl::UTCTimeZone()));
      rc = 0;
    }
    std::fflush(stdout);
  } while (period > absl::ZeroDuration() && !service.WaitForStop(period));
  return rc;
}
