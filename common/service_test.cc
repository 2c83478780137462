#include "common/service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/pg.h"

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

TEST(Service, PostgresStatementTimeoutDefaultsToAMinuteAndZeroLeavesTheServers) {
  SetDefaultStatementTimeout(absl::ZeroDuration());
  {
    Service plain("sluice-no-pg", "a service without PostgreSQL");
    EXPECT_EQ(ParseArgs(plain, {}), -1);
    EXPECT_EQ(DefaultStatementTimeout(), absl::ZeroDuration());  // untouched without AddPostgres
  }
  std::string dsn, schema;
  {
    Service s("sluice-pg-svc", "a test service");
    s.AddPostgres(dsn, schema, "test tables");
    EXPECT_EQ(ParseArgs(s, {}), -1);
    EXPECT_EQ(DefaultStatementTimeout(), absl::Seconds(60));
  }
  {
    Service s("sluice-pg-svc", "a test service");
    s.AddPostgres(dsn, schema, "test tables");
    EXPECT_EQ(ParseArgs(s, {"--pg-statement-timeout-ms", "1500"}), -1);
    EXPECT_EQ(DefaultStatementTimeout(), absl::Milliseconds(1500));
  }
  {
    Service s("sluice-pg-svc", "a test service");
    s.AddPostgres(dsn, schema, "test tables");
    ::setenv("SLUICE_PG_SVC_PG_STATEMENT_TIMEOUT_MS", "0", 1);  // the service's own variable
    EXPECT_EQ(ParseArgs(s, {}), -1);
    ::unsetenv("SLUICE_PG_SVC_PG_STATEMENT_TIMEOUT_MS");
    EXPECT_EQ(DefaultStatementTimeout(), absl::ZeroDuration());
  }
  {
    Service s("sluice-pg-svc", "a test service");
    s.AddPostgres(dsn, schema, "test tables");
    EXPECT_NE(ParseArgs(s, {"--pg-statement-timeout-ms", "-5"}), -1);
    EXPECT_NE(ParseArgs(s, {"--pg-statement-timeout-ms", "soon"}), -1);
  }
  SetDefaultStatementTimeout(absl::ZeroDuration());
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

TEST(Service, SighupRunsTheReloadHooksAndDoesNotStop) {
  Service s("sluice-demo-svc", "a test service");
  ASSERT_EQ(ParseArgs(s, {}), -1);
  std::mutex mu;
  std::condition_variable cv;
  int reloads = 0, stops = 0;
  std::thread::id ran_on;
  auto reload = s.OnReload([&] {
    std::lock_guard lock(mu);
    ++reloads;
    ran_on = std::this_thread::get_id();
    cv.notify_all();
  });
  auto stop = s.OnStop([&] { ++stops; });
  for (int want = 1; want <= 2; ++want) {      // every SIGHUP, not only the first
    ASSERT_EQ(::kill(::getpid(), SIGHUP), 0);  // blocked here (default action: exit); the scaffold takes it
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return reloads == want; }));
  }
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_FALSE(s.stopping().load());
  EXPECT_EQ(stops, 0);
  {
    auto dropped = s.OnReload([&] { reloads += 100; });
  }
  s.RequestReload();
  EXPECT_EQ(reloads, 3);
  EXPECT_FALSE(s.stopping().load());
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

// A file under the test's temporary directory, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir != nullptr && *dir != 0 ? dir : "/tmp") + "/sluice-kafka-config-XXXXXX";
    int fd = ::mkstemp(path_.data());
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Every SLUICE_KAFKA_* override unset, before and after a test that sets some.
struct KafkaEnvGuard {
  KafkaEnvGuard() { Clear(); }
  ~KafkaEnvGuard() { Clear(); }
  static void Clear() {
    for (const auto& o : kKafkaEnvOverrides) ::unsetenv(o.env);
    ::unsetenv("SLUICE_KAFKA_CONFIG");
  }
};

TEST(KafkaProperties, KeyValueLinesCommentsAndBlankLines) {
  auto s = ParseKafkaProperties(
      "# client settings\n"
      "\n"
      "security.protocol = SASL_SSL\r\n"
      "  ! another comment\n"
      "sasl.mechanism=SCRAM-SHA-512\n"
      "sasl.password=p=ss#word\n"  // only the first '=' splits; '#' inside a value is kept
      "ssl.ca.location=\n"
      "sasl.mechanism=PLAIN",  // the last one wins; no final newline
      "client.properties");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, (KafkaSettings{{"security.protocol", "SASL_SSL"},
                               {"sasl.mechanism", "PLAIN"},
                               {"sasl.password", "p=ss#word"},
                               {"ssl.ca.location", ""}}));
}

TEST(KafkaProperties, AMalformedLineNamesFileAndLineButNotItsText) {
  for (const char* bad : {"sasl.password hunter2", "=hunter2", "sasl password=hunter2", "sasl.password:hunter2",
                          "sasl.password=hunter2\\"}) {
    auto s = ParseKafkaProperties(std::string("# ok\nsecurity.protocol=SSL\n") + bad + "\n", "etc/kafka.properties");
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(std::string(s.status().message()).starts_with("etc/kafka.properties:3: ")) << s.status();
    EXPECT_EQ(std::string(s.status().message()).find("hunter2"), std::string::npos) << s.status();
  }
}

TEST(KafkaProperties, SecretsAreNeverDescribed) {
  const std::string d = DescribeKafkaSettings(
      {{"security.protocol", "SASL_SSL"}, {"sasl.password", "hunter2"}, {"ssl.key.password", "hunter3"}});
  EXPECT_EQ(d, "sasl.password=(set), security.protocol=SASL_SSL, ssl.key.password=(set)");
}

TEST(Service, KafkaConfigFileWithEnvironmentOverrides) {
  KafkaEnvGuard env;
  TempFile file(
      "security.protocol=SASL_PLAINTEXT\n"
      "sasl.mechanism=SCRAM-SHA-512\n"
      "sasl.username=relay\n"
      "sasl.password=from-file\n"
      "socket.keepalive.enable=true\n");
  ::setenv("SLUICE_KAFKA_CONFIG", file.path().c_str(), 1);
  ::setenv("SLUICE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL", 1);
  ::setenv("SLUICE_KAFKA_SASL_PASSWORD", "from-env", 1);
  ::setenv("SLUICE_KAFKA_SSL_CA_LOCATION", "/etc/sluice/ca.pem", 1);
  ::setenv("SLUICE_KAFKA_SASL_USERNAME", "", 1);  // empty: unset, the file's value stays
  Service s("sluice-demo-svc", "a test service");
  std::string bootstrap, prefix;
  s.AddKafka(bootstrap, prefix);
  ASSERT_EQ(ParseArgs(s, {}), -1);
  EXPECT_EQ(s.kafka_settings(), (KafkaSettings{{"security.protocol", "SASL_SSL"},
                                               {"sasl.mechanism", "SCRAM-SHA-512"},
                                               {"sasl.username", "relay"},
                                               {"sasl.password", "from-env"},
                                               {"ssl.ca.location", "/etc/sluice/ca.pem"},
                                               {"socket.keepalive.enable", "true"}}));
}

TEST(Service, KafkaEnvironmentOverridesWithoutAFile) {
  KafkaEnvGuard env;
  const std::map<std::string, std::string> want = {
      {"SLUICE_KAFKA_SECURITY_PROTOCOL", "security.protocol"},
      {"SLUICE_KAFKA_SSL_CA_LOCATION", "ssl.ca.location"},
      {"SLUICE_KAFKA_SSL_CERTIFICATE_LOCATION", "ssl.certificate.location"},
      {"SLUICE_KAFKA_SSL_KEY_LOCATION", "ssl.key.location"},
      {"SLUICE_KAFKA_SASL_MECHANISM", "sasl.mechanism"},
      {"SLUICE_KAFKA_SASL_USERNAME", "sasl.username"},
      {"SLUICE_KAFKA_SASL_PASSWORD", "sasl.password"}};
  for (const auto& [var, key] : want) ::setenv(var.c_str(), ("value of " + key).c_str(), 1);
  Service s("sluice-demo-svc", "a test service");
  std::string bootstrap, prefix;
  s.AddKafka(bootstrap, prefix);
  ASSERT_EQ(ParseArgs(s, {}), -1);
  ASSERT_EQ(s.kafka_settings().size(), want.size());
  for (const auto& [var, key] : want) EXPECT_EQ(s.kafka_settings().at(key), "value of " + key) << var;
}

TEST(Service, NoKafkaSettingsByDefault) {
  KafkaEnvGuard env;
  Service s("sluice-demo-svc", "a test service");
  std::string bootstrap, prefix;
  s.AddKafka(bootstrap, prefix);
  ASSERT_EQ(ParseArgs(s, {}), -1);
  EXPECT_TRUE(s.kafka_settings().empty());
}

TEST(Service, ABadKafkaConfigEndsTheService) {
  KafkaEnvGuard env;
  TempFile file("security.protocol=SSL\nthis line has no equals sign\n");
  TempFile bootstrap_file("bootstrap.servers=elsewhere:9092\n");
  for (const std::string& path : {file.path(), bootstrap_file.path(), file.path() + ".missing"}) {
    Service s("sluice-demo-svc", "a test service");
    std::string bootstrap, prefix;
    s.AddKafka(bootstrap, prefix);
    EXPECT_EQ(ParseArgs(s, {"--kafka-config", path}), 1) << path;
  }
}

}  // namespace
}  // namespace sluice::common
