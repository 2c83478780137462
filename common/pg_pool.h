#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/pg.h"

namespace sluice::common {

struct PgPoolOptions {
  // Connections open at once, lent and idle together. Each request thread holds one for
  // the length of its statement or transaction, so this also bounds what a flood of calls
  // can ask of PostgreSQL (whose own max_connections is shared with other services).
  size_t max_connections = 16;
  // How long Acquire waits for a connection when all are lent; then kResourceExhausted.
  absl::Duration acquire_timeout = absl::Seconds(2);
  // `SET statement_timeout` on every new connection; zero leaves the server's setting.
  // A statement cancelled by it fails with SQLSTATE 57014 (kDeadlineExceeded).
  absl::Duration statement_timeout = absl::Seconds(5);
  // libpq's connect_timeout for each new connection.
  absl::Duration connect_timeout = absl::Seconds(10);
};

class PgPool;

// One pooled connection lent to the caller; goes back to the pool when destroyed (or
// closed, after a kUnavailable failure noted with Note). Move-only; not thread-safe.
class PgLease {
 public:
  PgLease(PgLease&& other) noexcept;
  PgLease& operator=(PgLease&& other) noexcept;
  PgLease(const PgLease&) = delete;
  PgLease& operator=(const PgLease&) = delete;
  ~PgLease();

  PgConnection& operator*() const { return *conn_; }
  PgConnection* operator->() const { return conn_.get(); }
  // Records the outcome of the last statement: a kUnavailable one (connection lost,
  // server restarting) makes the pool close this connection instead of lending it again.
  void Note(const absl::Status& last) {
    if (!last.ok()) last_ = last;
  }

 private:
  friend class PgPool;
  PgLease(PgPool* pool, std::unique_ptr<PgConnection> conn) : pool_(pool), conn_(std::move(conn)) {}
  void Return();
  PgPool* pool_;
  std::unique_ptr<PgConnection> conn_;
  absl::Status last_;
};

// PostgreSQL connections shared by request threads, at most `max_connections` open.
// Connections are opened on demand, each with the search_path set to `schema` and the
// statement timeout; they stay open (idle) for the next caller until the pool is
// destroyed. Thread-safe. Every lent connection must be returned (lease destroyed, or
// Release called) before the pool is destroyed.
class PgPool {
 public:
  PgPool(std::string dsn, std::string schema, PgPoolOptions options = {});
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // A connection for the caller's exclusive use until the lease ends. kResourceExhausted
  // when all max_connections stay lent for acquire_timeout; kUnavailable when a new
  // connection cannot be opened.
  absl::StatusOr<PgLease> Lease();

  // The same without the RAII wrapper; each Acquire needs exactly one Release.
  absl::StatusOr<std::unique_ptr<PgConnection>> Acquire();
  // Back to the pool. Closed instead when `last` is kUnavailable, the connection is bad,
  // or it is still inside a transaction (the caller did not finish it).
  void Release(std::unique_ptr<PgConnection> conn, const absl::Status& last);

  // Connections open now (lent and idle).
  size_t open() const;
  const PgPoolOptions& options() const { return options_; }

 private:
  const std::string dsn_, schema_;
  const PgPoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t open_ = 0;  // lent + idle + being opened
  std::vector<std::unique_ptr<PgConnection>> idle_;
};

// Runs `body` in a transaction on a pooled connection; rolls back on any error.
// A pooled connection whose server went away (restart, failover) fails at BEGIN, before
// anything was done: it is dropped and the transaction starts once more on a new one.
template <class T, class F>
absl::StatusOr<T> InTransaction(PgPool& pool, F&& body) {
  auto conn = pool.Acquire();
  if (!conn.ok()) return conn.status();
  auto tx = PgTransaction::Begin(**conn);
  if (tx.status().code() == absl::StatusCode::kUnavailable) {
    pool.Release(*std::move(conn), tx.status());  // closes it
    conn = pool.Acquire();
    if (!conn.ok()) return conn.status();
    tx = PgTransaction::Begin(**conn);
  }
  absl::StatusOr<T> result = tx.ok() ? body(**conn) : absl::StatusOr<T>(tx.status());
  if (tx.ok()) {
    if (result.ok()) {
      if (auto s = tx->Commit(); !s.ok()) result = s;
    } else {
      (void)tx->Rollback();
    }
  }
  pool.Release(*std::move(conn), result.status());
  return result;
}

}  // namespace sluice::common
