// sluicectl audit verify: flags of the check; the check itself is in verify.cc.
#include <memory>

#include "cli/commands.h"
#include "cli/verify.h"
#include "common/env.h"

namespace sluice::cli {

void AddAuditCommand(CLI::App& app, Globals& g) {
  auto vo = std::make_shared<VerifyOptions>();
  vo->pg_dsn = common::DefaultPgDsn();
  auto* audit = app.add_subcommand("audit", "Check the database against the event log");
  audit->require_subcommand(1);
  auto* verify = audit->add_subcommand(
      "verify",
      "Rebuild the approval state from the approval topic (each approval's final status, each entity's latest approved "
      "payload) and compare it with PostgreSQL; prints every mismatch. Exit 0: consistent, 1: mismatches, 2: error");
  verify->add_option("--pg-dsn", vo->pg_dsn, "libpq connection string (env SLUICE_PG_DSN)")->capture_default_str();
  verify->add_option("--pg-schema", vo->pg_schema, "Schema of the governance tables (default: the search_path)")
      ->envname("SLUICE_PG_SCHEMA");
  verify->add_option("--tenant", vo->tenants, "Only this tenant (repeatable; default: all)");
  OnRun(verify, g, [&g, vo] {
    vo->bootstrap = g.bootstrap;
    vo->topic_prefix = g.topic_prefix;
    return RunVerify(*vo);
  });
}

}  // namespace sluice::cli
