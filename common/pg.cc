#include "common/pg.h"

#include <absl/strings/cord.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/strings.h"

namespace sluice::common {
namespace {

bool Starts(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

int64_t PgResult::affected() const {
  const char* n = PQcmdTuples(r_.get());
  return (n == nullptr || *n == '\0') ? 0 : std::strtoll(n, nullptr, 10);
}

absl::Status PgStatus(const PGresult* result, const PGconn* conn, std::string_view context) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = result ? PQresultErrorMessage(result) : "";
  if (msg.empty() && conn) msg = PQerrorMessage(conn);
  while (!msg.empty() && std::isspace(static_cast<unsigned char>(msg.back()))) msg.pop_back();
  std::string code = state ? state : "";
  std::string text = Cat(context, ": ", msg, code.empty() ? "" : Cat(" (SQLSTATE ", code, ")"));
  absl::Status s = MapSqlState(code, text, conn != nullptr && PQstatus(conn) == CONNECTION_BAD);
  if (!code.empty()) s.SetPayload(kSqlStatePayload, absl::Cord(code));
  s.SetPayload(kPgErrorPayload, absl::Cord("1"));
  return s;
}

bool IsPgError(const absl::Status& status) {
  return status.GetPayload(kPgErrorPayload).has_value() || status.GetPayload(kSqlStatePayload).has_value();
}

std::string SqlState(const absl::Status& status) {
  auto p = status.GetPayload(kSqlStatePayload);
  return p ? std::string(*p) : std::string();
}

absl::Status MapSqlState(const std::string& code, const std::string& text, bool connection_bad) {
  if (connection_bad) return absl::UnavailableError(text);
  if (code.empty()) return absl::InternalError(text);
  // Connection exceptions, admin shutdown, serialization failure, deadlock, lock timeout.
  if (Starts(code, "08") || Starts(code, "57P") || code == "40001" || code == "40P01" || code == "55P03")
    return absl::UnavailableError(text);
  if (code == "23505") return absl::AlreadyExistsError(text);
  if (Starts(code, "23")) return absl::FailedPreconditionError(text);
  if (Starts(code, "42") || Starts(code, "22")) return absl::InvalidArgumentError(text);
  // statement_timeout (or a cancel request): a short message of our own, since callers
  // see it; PostgreSQL's text adds nothing and the SQLSTATE travels as the payload.
  if (code == "57014") return absl::DeadlineExceededError("statement cancelled: it ran past statement_timeout");
  return absl::InternalError(text);
}

absl::StatusOr<PgConnection> PgConnection::Connect(const std::string& dsn, absl::Duration timeout) {
  // The DSN goes in as an expanded dbname rather than with " connect_timeout=N" appended:
  // appending only works for key=value strings and corrupts a postgresql:// URI (its last
  // query parameter, e.g. sslrootcert, would swallow the suffix). Later keywords win, so
  // the timeout still overrides one in the DSN.
  const std::string seconds = std::to_string(std::max<int64_t>(1, absl::ToInt64Seconds(timeout)));
  const char* const keywords[] = {"dbname", "connect_timeout", nullptr};
  const char* const values[] = {dsn.c_str(), seconds.c_str(), nullptr};
  PgConnHandle conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  if (conn == nullptr) return absl::ResourceExhaustedError("postgres: out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn.get());
    while (!msg.empty() && std::isspace(static_cast<unsigned char>(msg.back()))) msg.pop_back();
    absl::Status s = absl::UnavailableError(Cat("postgres connect: ", msg));
    s.SetPayload(kPgErrorPayload, absl::Cord("1"));
    return s;
  }
  // NOTICEs ("relation already exists, skipping") go to the debug log, not stderr.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char* msg) { spdlog::debug("postgres: {}", std::string_view(msg)); }, nullptr);
  return PgConnection(std::move(conn));
}

namespace {
std::atomic<int64_t> default_statement_timeout_ms{0};
}  // namespace

void SetDefaultStatementTimeout(absl::Duration timeout) {
  default_statement_timeout_ms.store(
      timeout > absl::ZeroDuration() ? std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout)) : 0);
}

absl::Duration DefaultStatementTimeout() { return absl::Milliseconds(default_statement_timeout_ms.load()); }

absl::StatusOr<PgConnection> Connect(const std::string& dsn, std::string_view schema, absl::Duration timeout) {
  auto conn = PgConnection::Connect(dsn, timeout);
  if (!conn.ok()) return conn.status();
  if (auto s = conn->SetSearchPath(schema); !s.ok()) return s;
  if (const int64_t ms = default_statement_timeout_ms.load(); ms > 0)
    if (auto s = conn->ExecScript(Cat("SET statement_timeout = ", ms)); !s.ok()) return s;
  return conn;
}

absl::StatusOr<PgTransaction> PgTransaction::Begin(PgConnection& conn, std::string_view begin_sql) {
  if (auto s = conn.ExecScript(begin_sql); !s.ok()) {
    // A multi-statement begin (BEGIN; SET LOCAL ...) may have opened the transaction
    // before a later statement failed.
    if (PQtransactionStatus(conn.raw()) != PQTRANS_IDLE) (void)conn.ExecScript("ROLLBACK");
    return s;
  }
  return PgTransaction(conn);
}

absl::Status PgTransaction::Commit() {
  if (conn_ == nullptr) return absl::FailedPreconditionError("transaction already closed");
  PgConnection* c = std::exchange(conn_, nullptr);
  // COMMIT of a failed transaction "succeeds" as a ROLLBACK: say so instead.
  if (PQtransactionStatus(c->raw()) == PQTRANS_INERROR) {
    (void)c->ExecScript("ROLLBACK");
    return absl::AbortedError("transaction rolled back: a statement in it failed");
  }
  return c->ExecScript("COMMIT");
}

absl::Status PgTransaction::Rollback() {
  if (conn_ == nullptr) return absl::OkStatus();
  PgConnection* c = std::exchange(conn_, nullptr);
  // A broken connection has no transaction left to end; PQexec on it just fails.
  if (PQstatus(c->raw()) != CONNECTION_OK) return absl::OkStatus();
  return c->ExecScript("ROLLBACK");
}

absl::StatusOr<PgResult> PgConnection::Exec(std::string_view sql,
                                            const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResultHandle r(PQexecParams(conn_.get(), std::string(sql).c_str(), static_cast<int>(params.size()), nullptr,
                                values.data(), nullptr, nullptr, 0));
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return PgStatus(r.get(), conn_.get(), "query");
  return PgResult(std::move(r));
}

absl::StatusOr<int64_t> PgConnection::CopyIn(std::string_view copy_sql, std::string_view data) {
  PgResultHandle start(PQexec(conn_.get(), std::string(copy_sql).c_str()));
  if (!start || PQresultStatus(start.get()) != PGRES_COPY_IN) return PgStatus(start.get(), conn_.get(), "copy");
  constexpr size_t kChunk = 1 << 20;
  for (size_t at = 0; at < data.size(); at += kChunk) {
    const size_t n = std::min(kChunk, data.size() - at);
    if (PQputCopyData(conn_.get(), data.data() + at, static_cast<int>(n)) != 1) {
      (void)PQputCopyEnd(conn_.get(), "aborted");
      PgResultHandle drain(PQgetResult(conn_.get()));
      while (PgResultHandle more{PQgetResult(conn_.get())}) {
      }
      return PgStatus(nullptr, conn_.get(), "copy data");
    }
  }
  if (PQputCopyEnd(conn_.get(), nullptr) != 1) {
    absl::Status s = PgStatus(nullptr, conn_.get(), "copy end");
    while (PgResultHandle more{PQgetResult(conn_.get())}) {
    }
    return s;
  }
  PgResultHandle r(PQgetResult(conn_.get()));
  absl::Status status =
      (r && PQresultStatus(r.get()) == PGRES_COMMAND_OK) ? absl::OkStatus() : PgStatus(r.get(), conn_.get(), "copy");
  int64_t rows = status.ok() ? PgResult(std::move(r)).affected() : 0;
  while (PgResultHandle more{PQgetResult(conn_.get())}) {
  }  // the protocol ends with a null result
  if (!status.ok()) return status;
  return rows;
}

void AppendCopyField(std::string& out, const std::optional<std::string_view>& value) {
  if (!value) {
    out += "\\N";
    return;
  }
  for (char c : *value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
}

absl::Status PgConnection::ExecScript(std::string_view sql) {
  PgResultHandle r(PQexec(conn_.get(), std::string(sql).c_str()));
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return PgStatus(r.get(), conn_.get(), "script");
  return absl::OkStatus();
}

absl::Status PgConnection::SetSearchPath(std::string_view schema) {
  if (schema.empty()) return absl::OkStatus();
  auto q = QuoteIdentifier(schema);
  if (!q.ok()) return q.status();
  return ExecScript(Cat("SET search_path TO ", *q));
}

absl::StatusOr<std::string> PgConnection::QuoteIdentifier(std::string_view name) {
  char* q = PQescapeIdentifier(conn_.get(), name.data(), name.size());
  if (q == nullptr) return absl::InvalidArgumentError(Cat("identifier: ", PQerrorMessage(conn_.get())));
  std::string out = q;
  PQfreemem(q);
  return out;
}

absl::StatusOr<MigrationReport> Migrate(PgConnection& conn, const std::string& dir, std::string_view schema) {
  namespace fs = std::filesystem;
  std::map<int, fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".sql") continue;
    std::string name = e.path().filename().string();
    if (name.size() < 10 || name[4] != '_' ||
        !std::all_of(name.begin(), name.begin() + 4, [](char c) { return c >= '0' && c <= '9'; }))
      return absl::InvalidArgumentError(Cat("migration ", name, ": name must be NNNN_name.sql"));
    int version = std::stoi(name.substr(0, 4));
    if (!files.emplace(version, e.path()).second)
      return absl::InvalidArgumentError(Cat("migration ", name, ": version ", version, " used twice"));
  }
  if (ec) return absl::NotFoundError(Cat("migrations dir ", dir, ": ", ec.message()));

  // One migrator at a time per database; released when the session ends or below.
  if (auto r = conn.Exec("SELECT pg_advisory_lock(hashtext('sluice.schema_migrations'))"); !r.ok()) return r.status();
  auto unlock = [&] { (void)conn.Exec("SELECT pg_advisory_unlock(hashtext('sluice.schema_migrations'))"); };
  // The schema is created under the same lock: two migrators starting together would
  // otherwise race on CREATE SCHEMA IF NOT EXISTS (the loser fails on pg_namespace's
  // unique index).
  if (!schema.empty()) {
    auto q = conn.QuoteIdentifier(schema);
    absl::Status s = q.ok() ? conn.ExecScript(Cat("CREATE SCHEMA IF NOT EXISTS ", *q)) : q.status();
    if (s.ok()) s = conn.SetSearchPath(schema);
    if (!s.ok()) {
      unlock();
      return s;
    }
  }
  if (auto s = conn.ExecScript("CREATE TABLE IF NOT EXISTS schema_migrations ("
                               " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                               " applied_at timestamptz NOT NULL DEFAULT now())");
      !s.ok()) {
    unlock();
    return s;
  }

  MigrationReport report;
  for (const auto& [version, path] : files) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string sql = ss.str();
    const std::string name = path.filename().string();
    const std::string sum = fmt::format("fnv1a64:{:016x}", Fnv1a64(sql));
    auto have = conn.Exec("SELECT checksum FROM schema_migrations WHERE version = $1", {std::to_string(version)});
    if (!have.ok()) {
      unlock();
      return have.status();
    }
    if (have->rows() == 1) {
      if (have->Get(0, 0) != sum) {
        unlock();
        return absl::FailedPreconditionError(Cat("migration ", name, ": changed after it was applied (",
                                                 have->Get(0, 0), " recorded, ", sum,
                                                 " now); add a new migration instead"));
      }
      report.existing.push_back(name);
      continue;
    }
    // The migration and its record commit together or not at all.
    absl::Status s;
    if (auto tx = PgTransaction::Begin(conn, Cat("BEGIN;\n", sql, "\n;")); !tx.ok()) {
      s = tx.status();
    } else {
      auto rec = conn.Exec("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                           {std::to_string(version), name, sum});
      s = rec.ok() ? tx->Commit() : rec.status();
    }
    if (!s.ok()) {
      unlock();
      return absl::Status(s.code(), Cat("migration ", name, ": ", s.message()));
    }
    report.applied.push_back(name);
  }
  unlock();
  return report;
}

}  // namespace sluice::common
