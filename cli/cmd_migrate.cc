// sluicectl migrate: applies sql/migrations to PostgreSQL.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/data_dirs.h"
#include "common/pg.h"

namespace sluice::cli {
namespace {

struct MigrateOptions {
  std::string dsn = common::DefaultPgDsn();
  std::string schema;  // empty: the search_path
  std::string dir;     // empty: MigrationsDir's lookup
};

int Migrate(const MigrateOptions& o) {
  // Named first, so a run against the wrong tree (installed vs. source) is visible even
  // when the connection fails.
  const std::string dir = MigrationsDir(o.dir);
  std::printf("migrations from %s\n", dir.c_str());
  auto conn = common::PgConnection::Connect(o.dsn);
  if (!conn.ok()) return Fail(conn.status());
  auto report = common::Migrate(*conn, dir, o.schema);
  if (!report.ok()) return Fail(report.status());
  for (const auto& m : report->applied) std::printf("applied  %s\n", m.c_str());
  std::printf("%zu applied, %zu already in place\n", report->applied.size(), report->existing.size());
  return 0;
}

}  // namespace

void AddMigrateCommand(CLI::App& app, Globals& g) {
  auto o = std::make_shared<MigrateOptions>();
  auto* migrate = app.add_subcommand("migrate", "Apply pending sql/migrations to PostgreSQL, in order, once each");
  migrate->add_option("--pg-dsn,--dsn", o->dsn, "libpq connection string (env SLUICE_PG_DSN; --dsn is the old name)")
      ->capture_default_str();
  migrate
      ->add_option("--pg-schema", o->schema,
                   "Schema to migrate, created when missing (env SLUICE_PG_SCHEMA; "
                   "default: the search_path)")
      ->envname("SLUICE_PG_SCHEMA");
  migrate->add_option("--dir", o->dir,
                      "Directory of NNNN_name.sql files (default: $SLUICE_MIGRATIONS_DIR, else "
                      "../share/sluice/migrations next to the sluicectl binary if it exists, else the source "
                      "tree's sql/migrations)");
  OnRun(migrate, g, [o] { return Migrate(*o); });
}

}  // namespace sluice::cli
