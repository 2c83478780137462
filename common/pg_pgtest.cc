// Against the local PostgreSQL (dev/stack.sh up).
#include "common/pg.h"

#include <absl/synchronization/notification.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "common/env.h"
#include "common/strings.h"

namespace sluice::common {
namespace {

using ::testing::HasSubstr;

// Each test works in a schema of its own, dropped afterwards.
class PgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    schema_ = Cat("it_", std::random_device{}());
    auto c = Connect();
    ASSERT_TRUE(c.ok()) << "is the local stack up (dev/stack.sh up)? " << c.status();
    conn_ = std::make_unique<PgConnection>(*std::move(c));
    dir_ = std::filesystem::temp_directory_path() / schema_;
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (conn_) {
      EXPECT_TRUE(conn_->ExecScript(Cat("DROP SCHEMA IF EXISTS ", schema_, " CASCADE")).ok());
    }
    std::filesystem::remove_all(dir_);
  }
  absl::StatusOr<PgConnection> Connect() {
    auto c = PgConnection::Connect(DefaultPgDsn());
    if (!c.ok()) return c.status();
    if (auto s = c->ExecScript(Cat("CREATE SCHEMA IF NOT EXISTS ", schema_, "; SET search_path TO ", schema_)); !s.ok())
      return s;
    return c;
  }
  void Write(const std::string& name, const std::string& sql) { std::ofstream(dir_ / name) << sql; }

  std::string schema_;
  std::filesystem::path dir_;
  std::unique_ptr<PgConnection> conn_;
};

TEST_F(PgTest, ParametersAreBoundNotSpliced) {
  ASSERT_TRUE(conn_->ExecScript("CREATE TABLE t (id int PRIMARY KEY, name text)").ok());
  const std::string hostile = "x'); DROP TABLE t; --";
  auto ins = conn_->Exec("INSERT INTO t VALUES ($1, $2)", {"1", hostile});
  ASSERT_TRUE(ins.ok()) << ins.status();
  EXPECT_EQ(ins->affected(), 1);
  ASSERT_TRUE(conn_->Exec("INSERT INTO t VALUES ($1, $2)", {"2", std::nullopt}).ok());
  auto r = conn_->Exec("SELECT name FROM t ORDER BY id");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->rows(), 2);
  EXPECT_EQ(r->Get(0, 0), hostile);
  EXPECT_TRUE(r->IsNull(1, 0));
  EXPECT_EQ(*conn_->QuoteIdentifier("my \"table\""), "\"my \"\"table\"\"\"");
}

TEST_F(PgTest, ErrorsCarrySqlstateAndMapToStatusCodes) {
  ASSERT_TRUE(conn_->ExecScript("CREATE TABLE u (id int PRIMARY KEY CHECK (id > 0))").ok());
  ASSERT_TRUE(conn_->Exec("INSERT INTO u VALUES (1)").ok());
  auto dup = conn_->Exec("INSERT INTO u VALUES (1)");
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("SQLSTATE 23505"));
  EXPECT_EQ(conn_->Exec("INSERT INTO u VALUES (-1)").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(conn_->Exec("SELEC 1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(conn_->Exec("SELECT * FROM no_such_table").status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(conn_->ExecScript("SET statement_timeout = '50ms'").ok());
  EXPECT_EQ(conn_->Exec("SELECT pg_sleep(1)").status().code(), absl::StatusCode::kDeadlineExceeded);
  auto down = PgConnection::Connect("host=127.0.0.1 port=1 dbname=x user=x", absl::Seconds(1));
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(PgTest, MigrateAppliesInOrderOnceAndRefusesEditedFiles) {
  Write("0002_add_column.sql", "ALTER TABLE items ADD COLUMN label text;");
  Write("0001_items.sql", "CREATE TABLE items (id int PRIMARY KEY);\nINSERT INTO items VALUES (1);");
  auto first = Migrate(*conn_, dir_.string());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(first->applied, ::testing::ElementsAre("0001_items.sql", "0002_add_column.sql"));

  auto second = Migrate(*conn_, dir_.string());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->applied.empty());
  EXPECT_EQ(second->existing.size(), 2u);
  EXPECT_EQ(conn_->Exec("SELECT label FROM items")->rows(), 1);

  Write("0001_items.sql", "CREATE TABLE items (id bigint PRIMARY KEY);");
  auto edited = Migrate(*conn_, dir_.string());
  EXPECT_EQ(edited.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(edited.status().message()), HasSubstr("0001_items.sql: changed after it was applied"));
}

TEST_F(PgTest, FailedMigrationLeavesNothingHalfApplied) {
  Write("0001_ok.sql", "CREATE TABLE a (id int);");
  Write("0002_broken.sql", "CREATE TABLE b (id int);\nINSERT INTO b VALUES ('not a number');");
  auto r = Migrate(*conn_, dir_.string());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("migration 0002_broken.sql"));
  EXPECT_TRUE(conn_->Exec("SELECT 1 FROM a").ok());
  EXPECT_FALSE(conn_->Exec("SELECT 1 FROM b").ok());  // rolled back with its record
  EXPECT_EQ(conn_->Exec("SELECT version FROM schema_migrations")->rows(), 1);

  Write("bad-name.sql", "SELECT 1;");
  EXPECT_THAT(std::string(Migrate(*conn_, dir_.string()).status().message()), HasSubstr("bad-name.sql: name must be"));
}

TEST_F(PgTest, ConcurrentMigratorsApplyEachFileOnce) {
  Write("0001_counter.sql", "CREATE TABLE runs (n int); INSERT INTO runs VALUES (1);");
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto c = Connect();
      if (c.ok() && Migrate(*c, dir_.string()).ok()) ok.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(conn_->Exec("SELECT n FROM runs")->rows(), 1);
}

TEST_F(PgTest, CopyInStoresEscapedFieldsAndNullsExactly) {
  ASSERT_TRUE(conn_->ExecScript("CREATE TABLE copied (a text, b text)").ok());
  const std::vector<std::string> tricky = {"tab\there", "line\nbreak", "back\\slash \\N", "cr\r", "plain"};
  std::string data;
  for (const auto& t : tricky) {
    AppendCopyField(data, t);
    data += '\t';
    AppendCopyField(data, std::nullopt);
    data += '\n';
  }
  auto n = conn_->CopyIn("COPY copied (a, b) FROM STDIN", data);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 5);
  auto r = conn_->Exec("SELECT a, b IS NULL FROM copied ORDER BY a");
  ASSERT_TRUE(r.ok());
  std::vector<std::string> got;
  for (int i = 0; i < r->rows(); ++i) {
    got.emplace_back(r->Get(i, 0));
    EXPECT_EQ(r->Get(i, 1), "t");
  }
  std::vector<std::string> want = tricky;
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  // A malformed row fails the whole COPY, and the connection stays usable.
  auto bad = conn_->CopyIn("COPY copied (a, b) FROM STDIN", "only-one-field\n");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(conn_->Exec("SELECT count(*) FROM copied")->Get(0, 0), "5");
}

// PgTransaction rolls back unless committed: an early return cannot leave work half-done
// or the connection inside a transaction.
TEST_F(PgTest, TransactionRollsBackUnlessCommitted) {
  ASSERT_TRUE(conn_->ExecScript("CREATE TABLE tx (id int PRIMARY KEY)").ok());
  {
    auto tx = PgTransaction::Begin(*conn_);
    ASSERT_TRUE(tx.ok()) << tx.status();
    ASSERT_TRUE(tx->conn().Exec("INSERT INTO tx VALUES (1)").ok());
    EXPECT_EQ(PQtransactionStatus(conn_->raw()), PQTRANS_INTRANS);
  }  // dropped without Commit
  EXPECT_EQ(PQtransactionStatus(conn_->raw()), PQTRANS_IDLE);
  EXPECT_EQ(conn_->Exec("SELECT 1 FROM tx")->rows(), 0);

  {
    auto tx = PgTransaction::Begin(*conn_);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(tx->conn().Exec("INSERT INTO tx VALUES (2)").ok());
    ASSERT_TRUE(tx->Commit().ok());
    EXPECT_EQ(tx->Commit().code(), absl::StatusCode::kFailedPrecondition);  // closed
  }
  EXPECT_EQ(conn_->Exec("SELECT 1 FROM tx WHERE id = 2")->rows(), 1);

  // A failed statement aborts the transaction; Commit reports it instead of a silent ROLLBACK.
  {
    auto tx = PgTransaction::Begin(*conn_);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(tx->conn().Exec("INSERT INTO tx VALUES (3)").ok());
    EXPECT_FALSE(tx->conn().Exec("INSERT INTO tx VALUES (2)").ok());  // duplicate key
    EXPECT_EQ(tx->Commit().code(), absl::StatusCode::kAborted);
  }
  EXPECT_EQ(PQtransactionStatus(conn_->raw()), PQTRANS_IDLE);
  EXPECT_EQ(conn_->Exec("SELECT 1 FROM tx WHERE id = 3")->rows(), 0);

  // A begin with SET LOCAL that fails half-way leaves no transaction open.
  auto bad = PgTransaction::Begin(*conn_, "BEGIN; SET LOCAL no_such_setting_x = 1");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(PQtransactionStatus(conn_->raw()), PQTRANS_IDLE);
}

TEST_F(PgTest, ConnectSetsTheSchema) {
  ASSERT_TRUE(conn_->ExecScript("CREATE TABLE only_here (id int)").ok());
  auto c = common::Connect(DefaultPgDsn(), schema_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->Exec("SELECT count(*) FROM only_here").ok());
  auto other = common::Connect(DefaultPgDsn(), "");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->Exec("SELECT count(*) FROM only_here").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PgTest, ConnectGivesTheDefaultStatementTimeoutSoALockWaitEnds) {
  ASSERT_TRUE(conn_->ExecScript("CREATE TABLE held (id int)").ok());
  SetDefaultStatementTimeout(absl::Milliseconds(300));
  auto c = common::Connect(DefaultPgDsn(), schema_);
  SetDefaultStatementTimeout(absl::ZeroDuration());
  ASSERT_TRUE(c.ok()) << c.status();
  auto shown = c->Exec("SHOW statement_timeout");
  ASSERT_TRUE(shown.ok()) << shown.status();
  EXPECT_EQ(shown->Get(0, 0), "300ms");

  // Another session holds the table: the insert waits for the lock, and is cancelled.
  // Without the timeout the other session lets go after 10 s, so a regression fails here
  // rather than hanging.
  ASSERT_TRUE(conn_->ExecScript("BEGIN; LOCK TABLE held IN ACCESS EXCLUSIVE MODE").ok());
  absl::Notification done;
  bool rolled_back = false;
  std::thread holder([&] {
    done.WaitForNotificationWithTimeout(absl::Seconds(10));
    rolled_back = conn_->ExecScript("ROLLBACK").ok();
  });
  const absl::Time start = absl::Now();
  auto waited = c->Exec("INSERT INTO held VALUES (1)");
  const absl::Duration took = absl::Now() - start;
  done.Notify();
  holder.join();
  ASSERT_TRUE(rolled_back);
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kDeadlineExceeded) << waited.status();
  EXPECT_THAT(std::string(waited.status().message()), HasSubstr("statement_timeout"));
  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_TRUE(c->Exec("INSERT INTO held VALUES (2)").ok());  // the connection goes on

  // Zero leaves the server's setting (whatever the role or database says).
  auto plain = common::Connect(DefaultPgDsn(), schema_);
  ASSERT_TRUE(plain.ok()) << plain.status();
  auto server = plain->Exec("SHOW statement_timeout");
  auto as_configured = conn_->Exec("SHOW statement_timeout");
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(as_configured.ok());
  EXPECT_EQ(server->Get(0, 0), as_configured->Get(0, 0));
  EXPECT_NE(server->Get(0, 0), "300ms");
}

}  // namespace
}  // namespace sluice::common
