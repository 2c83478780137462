// SharedRateLimiter without a database: block sizes, and the replica-local fallback when
// PostgreSQL does not answer. The grants themselves are in shared_rate_limiter_pgtest.cc.
#include "gateway/shared_rate_limiter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::gateway {
namespace {

TEST(SharedRateLimiter, BlocksAreASixteenthOfTheLimitBetweenOneAndTheCap) {
  EXPECT_EQ(SharedRateLimiter::BlockSize(1), 1);
  EXPECT_EQ(SharedRateLimiter::BlockSize(20), 1);  // small limits: every event asks, exact
  EXPECT_EQ(SharedRateLimiter::BlockSize(31), 1);
  EXPECT_EQ(SharedRateLimiter::BlockSize(32), 2);
  EXPECT_EQ(SharedRateLimiter::BlockSize(200), 12);
  EXPECT_EQ(SharedRateLimiter::BlockSize(1000000), SharedRateLimiter::kMaxBlock);
}

// Nothing listens on port 1: every connection is refused at once.
TEST(SharedRateLimiter, UnreachableDatabaseFallsBackToThisReplicasLimitAndCountsIt) {
  common::PgPool pool("host=127.0.0.1 port=1 dbname=none user=none connect_timeout=2", "",
                      {.max_connections = 2, .acquire_timeout = absl::Seconds(1)});
  prometheus::Registry registry;
  auto local = RateLimiter::FromJson(R"([{"source":"etl.pipeline","limit":3,"intervalMs":60000,"pauseMs":60000}])");
  ASSERT_TRUE(local.ok()) << local.status();
  SharedRateLimiter rl(*std::move(local), pool, registry);
  const absl::Time t = absl::Now();
  // A source without a limit never asks the database.
  EXPECT_TRUE(rl.Admit("t1", "kernel.scheduler", t).ok());
  EXPECT_EQ(rl.fallbacks(), 0);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl.Admit("t1", "etl.pipeline", t).ok()) << i;
  absl::Status over = rl.Admit("t1", "etl.pipeline", t);
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(over.message()), ::testing::HasSubstr("exceeded 3 events per 60000 ms"));
  EXPECT_EQ(rl.fallbacks(), 4);
  // GetEventHealth falls back to the local pauses too.
  auto paused = rl.Paused(t);
  ASSERT_EQ(paused.size(), 1u);
  EXPECT_EQ(paused[0].tenant, "t1");
  EXPECT_EQ(paused[0].source, "etl.pipeline");
  // The metric counts every fallback decision (the Paused one included).
  double counted = 0;
  for (const auto& family : registry.Collect())
    if (family.name == "sluice_gateway_rate_limit_fallback_total") counted = family.metric.at(0).counter.value;
  EXPECT_EQ(counted, 5);
}

}  // namespace
}  // namespace sluice::gateway
