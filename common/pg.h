#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <libpq-fe.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/handle.h"

namespace sluice::common {

using PgConnHandle = Handle<PGconn, PQfinish>;
using PgResultHandle = Handle<PGresult, PQclear>;

// A query result. Move-only; frees the PGresult on destruction.
class PgResult {
 public:
  explicit PgResult(PgResultHandle r) : r_(std::move(r)) {}
  int rows() const { return PQntuples(r_.get()); }
  int cols() const { return PQnfields(r_.get()); }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  // Text value of a cell ("" for NULL; use IsNull to tell them apart).
  std::string_view Get(int row, int col) const {
    return {PQgetvalue(r_.get(), row, col), static_cast<size_t>(PQgetlength(r_.get(), row, col))};
  }
  // Rows touched by INSERT/UPDATE/DELETE.
  int64_t affected() const;
  PGresult* raw() const { return r_.get(); }

 private:
  PgResultHandle r_;
};

// Maps a failed result or connection to a Status carrying the SQLSTATE. Connection
// loss, admin shutdown, serialization failures, deadlocks and lock timeouts are
// kUnavailable (retry); unique violations kAlreadyExists; other integrity violations
// kFailedPrecondition; syntax and undefined objects kInvalidArgument; else kInternal.
// The SQLSTATE travels as the status payload kSqlStatePayload; SqlState reads it back.
absl::Status PgStatus(const PGresult* result, const PGconn* conn, std::string_view context);
inline constexpr char kSqlStatePayload[] = "sluice.dev/sqlstate";
// Every status made from libpq's own message (PgStatus, a failed connect) carries this
// payload too, SQLSTATE or not: its text can name hosts, users, databases and rows, so
// no caller may read it (IsPgError).
inline constexpr char kPgErrorPayload[] = "sluice.dev/pg-error";
// The SQLSTATE of a status made by PgStatus ("" when it has none).
std::string SqlState(const absl::Status& status);
// True for a status whose message is libpq's or PostgreSQL's text.
bool IsPgError(const absl::Status& status);
// PgStatus's mapping of a SQLSTATE to a status code (exposed for tests).
absl::Status MapSqlState(const std::string& code, const std::string& text, bool connection_bad);

// A PostgreSQL text[] literal ({"a","b\"c"}) of `values` (any range of strings), each
// element double-quoted and escaped so no value is misread. Pass it as a parameter and
// cast it: `col = ANY($1::text[])`.
template <typename Range>
std::string PgTextArray(const Range& values) {
  std::string out = "{";
  for (const auto& v : values) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char c : v) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// One libpq connection. Not thread-safe: use one per thread (or a pool).
// Move-only; the destructor closes the connection.
class PgConnection {
 public:
  // Connects; kUnavailable when the server cannot be reached within `timeout`. `dsn` is
  // a libpq key=value string or a postgresql:// URI, passed on whole (sslmode,
  // sslrootcert, sslcert, sslkey and the rest reach libpq unchanged).
  static absl::StatusOr<PgConnection> Connect(const std::string& dsn, absl::Duration timeout = absl::Seconds(10));

  // One statement with text parameters ($1, $2 ...; nullopt is NULL). Parameters are
  // sent separately from the SQL, never spliced into it.
  absl::StatusOr<PgResult> Exec(std::string_view sql, const std::vector<std::optional<std::string>>& params = {});
  // Several statements without parameters (migrations, set-up scripts).
  absl::Status ExecScript(std::string_view sql);
  // COPY ... FROM STDIN with `data` in COPY's text format (rows end in '\n', fields
  // separated by '\t', each escaped with AppendCopyField). Returns the rows copied.
  absl::StatusOr<int64_t> CopyIn(std::string_view copy_sql, std::string_view data);
  // SET search_path TO the (quoted) schema; nothing when `schema` is empty.
  absl::Status SetSearchPath(std::string_view schema);
  // Quotes an identifier with libpq's escaping ("my table" -> "\"my table\"").
  absl::StatusOr<std::string> QuoteIdentifier(std::string_view name);

  PGconn* raw() const { return conn_.get(); }

 private:
  explicit PgConnection(PgConnHandle c) : conn_(std::move(c)) {}
  PgConnHandle conn_;
};

// Connects and sets the search_path to `schema` (nothing when empty) and the session's
// statement_timeout to DefaultStatementTimeout() (nothing when zero): how every service
// reaches its tables.
absl::StatusOr<PgConnection> Connect(const std::string& dsn, std::string_view schema,
                                     absl::Duration timeout = absl::Seconds(10));

// The statement_timeout Connect gives each connection it opens; zero (the initial value)
// leaves the server's. A service sets it once at start-up from --pg-statement-timeout-ms,
// so no statement of its own (a lock wait included) can hold it up for longer.
void SetDefaultStatementTimeout(absl::Duration timeout);
absl::Duration DefaultStatementTimeout();

// One transaction on one connection that rolls back unless Commit() succeeded, so no
// early return or error path can leave a connection inside a transaction.
//   auto tx = PgTransaction::Begin(conn);
//   if (!tx.ok()) return tx.status();
//   ... tx->conn().Exec(...) ...
//   return tx->Commit();
class PgTransaction {
 public:
  // `begin_sql` may carry an isolation level or SET LOCAL statements after the BEGIN.
  static absl::StatusOr<PgTransaction> Begin(PgConnection& conn, std::string_view begin_sql = "BEGIN");
  PgTransaction(PgTransaction&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
  PgTransaction& operator=(PgTransaction&& other) noexcept {
    if (this != &other) {
      (void)Rollback();
      conn_ = std::exchange(other.conn_, nullptr);
    }
    return *this;
  }
  PgTransaction(const PgTransaction&) = delete;
  ~PgTransaction() { (void)Rollback(); }

  PgConnection& conn() const { return *conn_; }
  // COMMIT; afterwards the transaction is closed whatever the outcome (a failed COMMIT
  // has rolled back on the server).
  absl::Status Commit();
  // ROLLBACK if still open; a no-op after Commit or Rollback.
  absl::Status Rollback();

 private:
  explicit PgTransaction(PgConnection& conn) : conn_(&conn) {}
  PgConnection* conn_;  // nullptr once closed
};

// Appends one field in COPY text format: backslash, tab, newline and carriage return
// escaped; nullopt is NULL (\N).
void AppendCopyField(std::string& out, const std::optional<std::string_view>& value);

struct MigrationReport {
  std::vector<std::string> applied;   // newly applied, in order
  std::vector<std::string> existing;  // applied before
};

// Applies every `NNNN_name.sql` file of `dir` not yet recorded in schema_migrations (in
// the connection's search_path), in order, each in its own transaction with its record.
// Holds an advisory lock so concurrent runs apply each file once. A file changed after
// it was applied (checksum differs) or a badly named file is an error naming the file.
// With `schema`, the schema is created when missing and the migrations go into it (its
// creation under the same lock, so concurrent migrators of a new schema are safe).
absl::StatusOr<MigrationReport> Migrate(PgConnection& conn, const std::string& dir, std::string_view schema = "");

}  // namespace sluice::common
