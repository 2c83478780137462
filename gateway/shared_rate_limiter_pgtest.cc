// SharedRateLimiter against the local PostgreSQL: two limiters on one schema stand for two
// gateway replicas. Together they admit `limit` events per window, not 2 x limit.
#include "gateway/shared_rate_limiter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/env.h"
#include "tests/pg_schema.h"

namespace sluice::gateway {
namespace {

class SharedRateLimiterPg : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = testing::MigratedSchema("it_ratelimit_", schema_);
    ASSERT_TRUE(c.ok()) << c.status();
    conn_ = std::make_unique<common::PgConnection>(*std::move(c));
    pool_ = std::make_unique<common::PgPool>(common::DefaultPgDsn(), schema_);
  }
  void TearDown() override {
    pool_.reset();
    if (conn_) {
      EXPECT_TRUE(testing::DropSchema(*conn_, schema_).ok());
    }
  }
  std::unique_ptr<SharedRateLimiter> Replica(const std::string& limits_json) {
    auto local = RateLimiter::FromJson(limits_json);
    EXPECT_TRUE(local.ok()) << local.status();
    return std::make_unique<SharedRateLimiter>(*std::move(local), *pool_, registry_);
  }

  std::string schema_;
  std::unique_ptr<common::PgConnection> conn_;
  std::unique_ptr<common::PgPool> pool_;
  prometheus::Registry registry_;
};

TEST_F(SharedRateLimiterPg, TwoReplicasAdmitTheLimitTogetherThenBothRefuse) {
  // 48 per minute: blocks of 3, so each replica takes several blocks.
  const std::string limits = R"([{"source":"etl.pipeline","limit":48,"intervalMs":60000,"pauseMs":60000}])";
  auto a = Replica(limits);
  auto b = Replica(limits);
  int admitted = 0;
  absl::Status first_refusal;
  for (int i = 0; i < 200 && first_refusal.ok(); ++i) {
    absl::Status s = (i % 2 == 0 ? *a : *b).Admit("tenant-acme", "etl.pipeline", absl::Now());
    if (s.ok())
      ++admitted;
    else
      first_refusal = s;
  }
  // Alternating, each replica spends every block it took: exactly the limit.
  EXPECT_EQ(admitted, 48);
  EXPECT_EQ(first_refusal.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(first_refusal.message()), ::testing::HasSubstr("exceeded 48 events per 60000 ms"));
  for (auto* r : {a.get(), b.get()}) {
    absl::Status s = r->Admit("tenant-acme", "etl.pipeline", absl::Now());
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("paused"));
    auto paused = r->Paused(absl::Now());
    ASSERT_EQ(paused.size(), 1u);
    EXPECT_EQ(paused[0].tenant, "tenant-acme");
    EXPECT_EQ(paused[0].source, "etl.pipeline");
    EXPECT_GT(paused[0].until, absl::Now() + absl::Seconds(30));
  }
  // Another tenant of the same source is not affected, on either replica.
  EXPECT_TRUE(a->Admit("tenant-b", "etl.pipeline", absl::Now()).ok());
  EXPECT_TRUE(b->Admit("tenant-b", "etl.pipeline", absl::Now()).ok());
  EXPECT_EQ(a->fallbacks() + b->fallbacks(), 0);
}

TEST_F(SharedRateLimiterPg, AReplicaStartedLaterSeesThePause) {
  const std::string limits = R"([{"source":"etl.pipeline","limit":2,"intervalMs":60000,"pauseMs":60000}])";
  auto a = Replica(limits);
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(a->Admit("t1", "etl.pipeline", absl::Now()).ok());
  EXPECT_EQ(a->Admit("t1", "etl.pipeline", absl::Now()).code(), absl::StatusCode::kResourceExhausted);
  auto b = Replica(limits);
  absl::Status s = b->Admit("t1", "etl.pipeline", absl::Now());
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("is paused by its rate limit until"));
}

TEST_F(SharedRateLimiterPg, AFreshWindowAfterTheIntervalAndAfterAZeroPause) {
  // A short window: waiting past its end is all the test needs of the clock.
  const std::string limits = R"([{"source":"s","limit":2,"intervalMs":200,"pauseMs":0}])";
  auto a = Replica(limits);
  auto b = Replica(limits);
  EXPECT_TRUE(a->Admit("t1", "s", absl::Now()).ok());
  EXPECT_TRUE(b->Admit("t1", "s", absl::Now()).ok());
  absl::SleepFor(absl::Milliseconds(300));  // past the window: its two tokens are back
  EXPECT_TRUE(b->Admit("t1", "s", absl::Now()).ok());
  EXPECT_TRUE(a->Admit("t1", "s", absl::Now()).ok());
  EXPECT_EQ(a->Admit("t1", "s", absl::Now()).code(), absl::StatusCode::kResourceExhausted);  // pauses for 0 ms
  // A pause of 0 ms ends as it begins, with a fresh window (as RateLimiter does).
  EXPECT_TRUE(b->Admit("t1", "s", absl::Now()).ok());
}

TEST_F(SharedRateLimiterPg, AMissingTableFallsBackToTheReplicasOwnLimit) {
  ASSERT_TRUE(conn_->ExecScript("DROP TABLE gateway_rate_window").ok());
  auto a = Replica(R"([{"source":"s","limit":1,"intervalMs":60000,"pauseMs":60000}])");
  EXPECT_TRUE(a->Admit("t1", "s", absl::Now()).ok());
  EXPECT_EQ(a->Admit("t1", "s", absl::Now()).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(a->fallbacks(), 2);
}

}  // namespace
}  // namespace sluice::gateway
