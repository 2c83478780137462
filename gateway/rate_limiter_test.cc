#include "gateway/rate_limiter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::gateway {
namespace {

TEST(RateLimiter, LimitThenPauseThenFreshWindow) {
  auto rl = RateLimiter::FromJson(R"([{"source":"etl.pipeline","limit":3,"intervalMs":1000,"pauseMs":5000}])");
  ASSERT_TRUE(rl.ok()) << rl.status();
  absl::Time t = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl->Admit("t1", "etl.pipeline", t + absl::Milliseconds(i)).ok());
  auto over = rl->Admit("t1", "etl.pipeline", t + absl::Milliseconds(10));
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(over.message()), ::testing::HasSubstr("exceeded 3 events per 1000 ms"));
  // Paused for 5 s, whatever the window says.
  EXPECT_EQ(rl->Admit("t1", "etl.pipeline", t + absl::Seconds(3)).code(), absl::StatusCode::kResourceExhausted);
  ASSERT_EQ(rl->Paused(t + absl::Seconds(3)).size(), 1u);
  EXPECT_EQ(rl->Paused(t + absl::Seconds(3))[0].source, "etl.pipeline");
  EXPECT_EQ(rl->Paused(t + absl::Seconds(3))[0].tenant, "t1");
  // After the pause a new window starts.
  absl::Time after = t + absl::Milliseconds(10) + absl::Seconds(5);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl->Admit("t1", "etl.pipeline", after + absl::Milliseconds(i)).ok());
  EXPECT_TRUE(rl->Paused(after).empty());
  // Other sources are not limited.
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(rl->Admit("t1", "kernel.scheduler", t).ok());
}

TEST(RateLimiter, OneTenantsBurstDoesNotPauseTheSourceForOthers) {
  auto rl = RateLimiter::FromJson(R"([{"source":"etl.pipeline","limit":2,"intervalMs":1000,"pauseMs":60000}])");
  ASSERT_TRUE(rl.ok());
  absl::Time t = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(rl->Admit("noisy", "etl.pipeline", t).ok());
  EXPECT_EQ(rl->Admit("noisy", "etl.pipeline", t).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(rl->Admit("noisy", "etl.pipeline", t + absl::Seconds(5)).code(), absl::StatusCode::kResourceExhausted);
  // The same source for another tenant is untouched.
  EXPECT_TRUE(rl->Admit("quiet", "etl.pipeline", t + absl::Seconds(5)).ok());
  ASSERT_EQ(rl->Paused(t + absl::Seconds(5)).size(), 1u);
  EXPECT_EQ(rl->Paused(t + absl::Seconds(5))[0].tenant, "noisy");
}

TEST(RateLimiter, IdlePairsAreForgottenSoMemoryStaysBounded) {
  auto rl = RateLimiter::FromJson(R"([{"source":"s","limit":5,"intervalMs":10,"pauseMs":0}])");
  ASSERT_TRUE(rl.ok());
  absl::Time t = absl::FromUnixSeconds(0);
  const size_t n = RateLimiter::kMaxTracked + 10;
  for (size_t i = 0; i < n; ++i)
    ASSERT_TRUE(rl->Admit("t" + std::to_string(i), "s", t + absl::Milliseconds(static_cast<int64_t>(i))).ok()) << i;
  EXPECT_LE(rl->tracked(), RateLimiter::kMaxTracked);
}

TEST(RateLimiter, WindowsRollOver) {
  auto rl = RateLimiter::FromJson(R"({"limits":[{"source":"s","limit":2,"intervalMs":100,"pauseMs":1000}]})");
  ASSERT_TRUE(rl.ok());
  absl::Time t = absl::FromUnixSeconds(0);
  for (int w = 0; w < 5; ++w) {
    EXPECT_TRUE(rl->Admit("t1", "s", t + absl::Milliseconds(100 * w)).ok());
    EXPECT_TRUE(rl->Admit("t1", "s", t + absl::Milliseconds(100 * w + 50)).ok());
  }
}

TEST(RateLimiter, RejectsBadConfigNamingTheEntry) {
  EXPECT_THAT(std::string(RateLimiter::FromJson(R"([{"source":"s","limit":0,"intervalMs":1}])").status().message()),
              ::testing::HasSubstr("rate limits[0] (s).limit"));
  EXPECT_THAT(std::string(RateLimiter::FromJson(R"([{"limit":1,"intervalMs":1}])").status().message()),
              ::testing::HasSubstr(".source: required"));
  EXPECT_FALSE(RateLimiter::FromJson(R"([{"source":"s","limit":1,"intervalMs":1,"burst":2}])").ok());
  EXPECT_TRUE(RateLimiter::FromJson("").ok());
}

}  // namespace
}  // namespace sluice::gateway
