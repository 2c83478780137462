#include "common/pg_pool.h"

#include <algorithm>
#include <chrono>

#include "common/strings.h"

namespace sluice::common {
namespace {

PgPoolOptions Checked(PgPoolOptions o) {
  o.max_connections = std::max<size_t>(1, o.max_connections);
  // wait_for with an infinite chrono duration overflows; an hour is "wait" enough.
  o.acquire_timeout = std::clamp(o.acquire_timeout, absl::ZeroDuration(), absl::Hours(1));
  return o;
}

}  // namespace

PgLease::PgLease(PgLease&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)), last_(std::move(other.last_)) {
  other.pool_ = nullptr;
}

PgLease& PgLease::operator=(PgLease&& other) noexcept {
  if (this != &other) {
    Return();
    pool_ = other.pool_;
    conn_ = std::move(other.conn_);
    last_ = std::move(other.last_);
    other.pool_ = nullptr;
  }
  return *this;
}

PgLease::~PgLease() { Return(); }

void PgLease::Return() {
  if (pool_ != nullptr && conn_ != nullptr) pool_->Release(std::move(conn_), last_);
  pool_ = nullptr;
}

PgPool::PgPool(std::string dsn, std::string schema, PgPoolOptions options)
    : dsn_(std::move(dsn)), schema_(std::move(schema)), options_(Checked(options)) {}

absl::StatusOr<PgLease> PgPool::Lease() {
  auto c = Acquire();
  if (!c.ok()) return c.status();
  return PgLease(this, *std::move(c));
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgPool::Acquire() {
  {
    std::unique_lock lock(mu_);
    const bool got = cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.acquire_timeout),
                                  [&] { return !idle_.empty() || open_ < options_.max_connections; });
    if (!got)
      return absl::ResourceExhaustedError(
          Cat("all ", options_.max_connections, " PostgreSQL connections in use; try again later"));
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    ++open_;  // reserved while connecting, outside the lock
  }
  auto opened = [&]() -> absl::StatusOr<std::unique_ptr<PgConnection>> {
    auto c = PgConnection::Connect(dsn_, options_.connect_timeout);
    if (!c.ok()) return c.status();
    if (auto s = c->SetSearchPath(schema_); !s.ok()) return s;
    if (options_.statement_timeout > absl::ZeroDuration()) {
      const int64_t ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.statement_timeout));
      if (auto s = c->ExecScript(Cat("SET statement_timeout = ", ms)); !s.ok()) return s;
    }
    return std::make_unique<PgConnection>(*std::move(c));
  }();
  if (!opened.ok()) {
    std::lock_guard lock(mu_);
    --open_;
    cv_.notify_one();
  }
  return opened;
}

void PgPool::Release(std::unique_ptr<PgConnection> conn, const absl::Status& last) {
  if (conn == nullptr) return;
  // A connection left inside a transaction (or in an unknown state) would hand its
  // locks and half-done work to the next caller: close it instead.
  const bool reuse = last.code() != absl::StatusCode::kUnavailable && PQstatus(conn->raw()) == CONNECTION_OK &&
                     PQtransactionStatus(conn->raw()) == PQTRANS_IDLE;
  if (!reuse) conn.reset();  // closes it, outside the lock
  std::lock_guard lock(mu_);
  if (reuse) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
  cv_.notify_one();
}

size_t PgPool::open() const {
  std::lock_guard lock(mu_);
  return open_;
}

}  // namespace sluice::common
