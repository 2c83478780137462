#pragma once

#include <absl/status/statusor.h>

#include <random>
#include <string>

#include "common/env.h"
#include "common/pg.h"
#include "common/strings.h"

namespace sluice::testing {

// A fresh schema "<prefix><random>" on the local PostgreSQL with every migration applied;
// the connection's search_path points at it. Drop it with DropSchema.
inline absl::StatusOr<common::PgConnection> MigratedSchema(std::string_view prefix, std::string& schema) {
  schema = common::Cat(prefix, std::random_device{}());
  auto c = common::PgConnection::Connect(common::DefaultPgDsn());
  if (!c.ok()) return c.status();
  if (auto s = c->ExecScript(common::Cat("CREATE SCHEMA ", schema, "; SET search_path TO ", schema)); !s.ok()) return s;
  auto m = common::Migrate(*c, std::string(SLUICE_SOURCE_DIR) + "/sql/migrations");
  if (!m.ok()) return m.status();
  return c;
}

inline absl::Status DropSchema(common::PgConnection& conn, const std::string& schema) {
  return conn.ExecScript(common::Cat("DROP SCHEMA IF EXISTS ", schema, " CASCADE"));
}

}  // namespace sluice::testing
