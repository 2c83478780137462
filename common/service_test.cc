#include "common/service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

namespace sluice::common {
namespace {

int ParseArgs(Service& s, std::vector<std::string> args) {
  args.insert(args.begin(), s.name());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  auto rc = s.Parse(static_cast<int>(argv.size()), argv.data());
  return rc ? *rc : -1;  // -1: go on
}

TEST(Service, FlagsReadOneNamingSchemeFromTheEnvironment) {
  Service s("sluice-demo-svc", "a test service");
  EXPECT_EQ(s.EnvName("poll-ms"), "SLUICE_DEMO_SVC_POLL_MS");
  int64_t poll_ms = 1000, batch = 10;
  std::string dsn, schema, bootstrap, prefix;
  s.Flag("poll-ms", poll_ms, "poll");
  s.Flag("batch-size", batch, "batch");
  s.AddPostgres(dsn, schema, "test tables");
  s.AddKafka(bootstrap, prefix);
  ::setenv("SLUICE_DEMO_SVC_POLL_MS", "250", 1);
  ::setenv("SLUICE_DEMO_SVC_BATCH_SIZE", "7", 1);
  ::setenv("SLUICE_PG_SCHEMA", "from_env", 1);
  ::setenv("SLUICE_TOPIC_PREFIX", "env-", 1);
  EXPECT_EQ(ParseArgs(s, {"--batch-size", "9"}), -1);
  EXPECT_EQ(poll_ms, 250);  // from the environment
  EXPECT_EQ(batch, 9);      // the flag wins over its variable
  EXPECT_EQ(schema, "from_env");
  EXPECT_EQ(prefix, "env-");
  EXPECT_FALSE(dsn.empty());  // the local stack's default
  EXPECT_FALSE(bootstrap.empty());
  for (const char* v :
       {"SLUICE_DEMO_SVC_POLL_MS", "SLUICE_DEMO_SVC_BATCH_SIZE", "SLUICE_PG_SCHEMA", "SLUICE_TOPIC_PREFIX"})
    ::unsetenv(v);
}

TEST(Service, HelpExitsZeroAndABadFlagDoesNot) {
  {
    Service s("sluice-demo-svc", "a test service");
    EXPECT_EQ(ParseArgs(s, {"--help"}), 0);
  }
  {
    Service s("sluice-demo-svc", "a test service");
    int64_t n = 0;
    s.Flag("count", n, "count")->check(CLI::PositiveNumber);
    EXPECT_GT(ParseArgs(s, {"--count", "-3"}), 0);
  }
  {
    Service s("sluice-demo-svc", "a test service");
    EXPECT_GT(ParseArgs(s, {"--no-such-flag"}), 0);
  }
  {
    Service s("sluice-demo-svc", "a test service");
    EXPECT_GT(ParseArgs(s, {"--log-level", "loud"}), 0);
  }
}

TEST(Service, SigtermRunsTheStopHooksOnceOnAnOrdinaryThread) {
  Service s("sluice-demo-svc", "a test service");
  ASSERT_EQ(ParseArgs(s, {}), -1);
  int runs = 0;
  std::thread::id ran_on;
  auto hook = s.OnStop([&] {
    ++runs;
    ran_on = std::this_thread::get_id();
  });
  EXPECT_FALSE(s.WaitForStop(absl::Milliseconds(10)));
  EXPECT_FALSE(s.stopping().load());
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);  // blocked here; the scaffold's thread takes it
  EXPECT_TRUE(s.WaitForStop(absl::Seconds(10)));
  EXPECT_TRUE(s.stopping().load());
  ::kill(::getpid(), SIGINT);  // a second signal changes nothing
  s.RequestStop();
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(runs, 1);
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(Service, ADroppedHookIsNotRun) {
  Service s("sluice-demo-svc", "a test service");
  int runs = 0;
  {
    auto hook = s.OnStop([&] { ++runs; });
  }
  auto kept = s.OnStop([&] { runs += 10; });
  s.RequestStop();
  EXPECT_EQ(runs, 10);
}

TEST(Service, MetricsListenHasTheServicesVariableAndABadAddressFails) {
  Service s("sluice-demo-svc", "a test service");
  s.AddMetrics("");
  ::setenv("SLUICE_DEMO_SVC_METRICS_LISTEN", "256.0.0.1:notaport", 1);
  ASSERT_EQ(ParseArgs(s, {}), -1);
  ::unsetenv("SLUICE_DEMO_SVC_METRICS_LISTEN");
  EXPECT_FALSE(s.StartMetrics().ok());
}

}  // namespace
}  // namespace sluice::common
