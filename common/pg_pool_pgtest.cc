// PgPool against the local PostgreSQL (dev/stack.sh up).
#include "common/pg_pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <random>
#include <thread>

#include "common/env.h"
#include "common/strings.h"

namespace sluice::common {
namespace {

using ::testing::HasSubstr;

class PgPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    schema_ = Cat("it_pool_", std::random_device{}());
    auto c = PgConnection::Connect(DefaultPgDsn());
    ASSERT_TRUE(c.ok()) << "is the local stack up (dev/stack.sh up)? " << c.status();
    admin_ = std::make_unique<PgConnection>(*std::move(c));
    ASSERT_TRUE(admin_->ExecScript(Cat("CREATE SCHEMA ", schema_)).ok());
  }
  void TearDown() override {
    if (admin_) {
      EXPECT_TRUE(admin_->ExecScript(Cat("DROP SCHEMA IF EXISTS ", schema_, " CASCADE")).ok());
    }
  }
  std::unique_ptr<PgPool> Pool(PgPoolOptions o) { return std::make_unique<PgPool>(DefaultPgDsn(), schema_, o); }

  std::string schema_;
  std::unique_ptr<PgConnection> admin_;
};

TEST_F(PgPoolTest, NeverOpensMoreThanTheMaximumAndRefusesAfterTheWait) {
  auto pool = Pool({.max_connections = 2, .acquire_timeout = absl::Milliseconds(200)});
  auto a = pool->Lease();
  auto b = pool->Lease();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(pool->open(), 2u);

  auto c = pool->Lease();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("all 2 PostgreSQL connections in use"));
  auto raw = pool->Acquire();  // the Acquire/Release face obeys the same cap
  EXPECT_EQ(raw.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(pool->open(), 2u);
}

TEST_F(PgPoolTest, AWaiterGetsTheConnectionReleasedMeanwhile) {
  auto pool = Pool({.max_connections = 1, .acquire_timeout = absl::Seconds(30)});
  auto first = pool->Acquire();
  ASSERT_TRUE(first.ok()) << first.status();
  PGconn* const conn = (*first)->raw();
  std::promise<void> waiting;
  auto waiter = std::async(std::launch::async, [&] {
    waiting.set_value();
    return pool->Acquire();
  });
  waiting.get_future().wait();
  pool->Release(*std::move(first), absl::OkStatus());
  auto second = waiter.get();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->raw(), conn);  // the same connection, not a new one
  EXPECT_EQ(pool->open(), 1u);
  pool->Release(*std::move(second), absl::OkStatus());
}

TEST_F(PgPoolTest, ReleasedConnectionsAreReusedAndBrokenOnesClosed) {
  auto pool = Pool({.max_connections = 4});
  PGconn* first = nullptr;
  {
    auto lease = pool->Lease();
    ASSERT_TRUE(lease.ok()) << lease.status();
    first = (*lease)->raw();
    auto path = (*lease)->Exec("SELECT current_setting('search_path')");
    ASSERT_TRUE(path.ok()) << path.status();
    EXPECT_THAT(std::string(path->Get(0, 0)), HasSubstr(schema_));
  }
  EXPECT_EQ(pool->open(), 1u);
  {
    auto lease = pool->Lease();
    ASSERT_TRUE(lease.ok());
    EXPECT_EQ((*lease)->raw(), first);
    lease->Note(absl::UnavailableError("connection lost"));
  }
  EXPECT_EQ(pool->open(), 0u);  // closed, not kept

  // A connection handed back inside a transaction is not lent to the next caller.
  auto conn = pool->Acquire();
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->ExecScript("BEGIN").ok());
  pool->Release(*std::move(conn), absl::OkStatus());
  EXPECT_EQ(pool->open(), 0u);
}

TEST_F(PgPoolTest, StatementTimeoutIsSetOnEveryConnection) {
  auto pool = Pool({.max_connections = 1, .statement_timeout = absl::Milliseconds(200)});
  {
    auto lease = pool->Lease();
    ASSERT_TRUE(lease.ok()) << lease.status();
    auto slow = (*lease)->Exec("SELECT pg_sleep(10)");
    ASSERT_FALSE(slow.ok());
    EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(SqlState(slow.status()), "57014");
    // A short message of our own: PostgreSQL's text is not passed on.
    EXPECT_THAT(std::string(slow.status().message()), HasSubstr("statement_timeout"));
    EXPECT_THAT(std::string(slow.status().message()), ::testing::Not(HasSubstr("canceling statement")));
    lease->Note(slow.status());
    EXPECT_TRUE((*lease)->Exec("SELECT 1").ok());  // the connection itself is fine
  }
  // InTransaction on the same pool: the timeout applies inside transactions too.
  auto r = InTransaction<int>(*pool, [](PgConnection& c) -> absl::StatusOr<int> {
    auto s = c.Exec("SELECT pg_sleep(10)");
    if (!s.ok()) return s.status();
    return 1;
  });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(pool->open(), 1u);  // rolled back and kept
}

}  // namespace
}  // namespace sluice::common
