// sluicectl audit verify: flags of the check; the check itself is in verify.cc.
// sluicectl audit retention: drops event_log's expired monthly partitions (consumers/audit/retention.h).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/verify.h"
#include "common/pg.h"
#include "consumers/audit/retention.h"

namespace sluice::cli {

void AddAuditCommand(CLI::App& app, Globals& g) {
  auto vo = std::make_shared<VerifyOptions>();
  auto* audit = app.add_subcommand("audit", "Check the database against the event log; event_log retention");
  audit->require_subcommand(1);
  auto* verify = audit->add_subcommand(
      "verify",
      "Rebuild the approval state from the approval topic (each approval's final status, each entity's latest approved "
      "payload) and compare it with PostgreSQL; prints every mismatch. Exit 0: consistent, 1: mismatches, 2: error");
  AddPgFlags(*verify, vo->pg_dsn, vo->pg_schema, "Schema of the governance tables");
  verify->add_option("--tenant", vo->tenants, "Only this tenant (repeatable; default: all)");
  OnRun(verify, g, [&g, vo] {
    vo->bootstrap = g.bootstrap;
    vo->librdkafka = g.kafka;
    vo->topic_prefix = g.topic_prefix;
    return RunVerify(*vo);
  });

  struct RetentionOptions {
    std::string pg_dsn, pg_schema;
    int days = 0;
    bool dry_run = false;
  };
  auto ro = std::make_shared<RetentionOptions>();
  auto* retention = audit->add_subcommand(
      "retention",
      "Drop event_log's monthly partitions whose every row occurred more than --days ago (what sluice-audit "
      "--retention-days does every --retention-interval-s); prints each one dropped");
  AddPgFlags(*retention, ro->pg_dsn, ro->pg_schema, "Schema of event_log");
  retention->add_option("--days", ro->days, "Keep rows younger than this many days")
      ->required()
      ->check(CLI::Range(1, 100000));
  retention->add_flag("--dry-run", ro->dry_run, "Only print what would be dropped");
  OnRun(retention, g, [ro] {
    auto conn = common::Connect(ro->pg_dsn, ro->pg_schema);
    if (!conn.ok()) return Fail(conn.status());
    const absl::Time horizon = absl::Now() - absl::Hours(24) * ro->days;
    auto parts = audit::DropExpiredPartitions(*conn, horizon, ro->dry_run);
    if (!parts.ok()) return Fail(parts.status());
    for (const auto& p : *parts) std::printf("%s %s\n", ro->dry_run ? "would drop" : "dropped", p.c_str());
    std::printf("%zu partition(s) %s, horizon %s\n", parts->size(), ro->dry_run ? "would be dropped" : "dropped",
                absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", horizon, absl::UTCTimeZone()).c_str());
    return 0;
  });
}

}  // namespace sluice::cli
