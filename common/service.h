#pragma once

// The scaffold every Sluice service binary runs on: typed flags read from the command
// line or the environment under one naming scheme, logging, the Prometheus exposer,
// signal handling and a graceful stop.
//
// Naming. Flags are --kebab-case. A service's own flag --foo-bar reads the variable
// SLUICE_<SERVICE>_FOO_BAR, where SERVICE is the binary's name without "sluice-" in
// upper case (sluice-relay --poll-ms: SLUICE_RELAY_POLL_MS). Flags every service shares
// read one variable for all services:
//   --pg-dsn SLUICE_PG_DSN      --pg-schema SLUICE_PG_SCHEMA
//   --bootstrap SLUICE_KAFKA_BOOTSTRAP   --topic-prefix SLUICE_TOPIC_PREFIX
//   --log-level SLUICE_LOG_LEVEL  --kafka-config SLUICE_KAFKA_CONFIG
//   --otlp-endpoint SLUICE_OTLP_ENDPOINT
// A flag on the command line wins over its variable. The Kafka client settings of
// --kafka-config can be overridden one by one from SLUICE_KAFKA_SECURITY_PROTOCOL,
// SLUICE_KAFKA_SASL_PASSWORD, ... (common/kafka_config.h, docs/security.md).
//
// Stopping. The constructor blocks SIGTERM, SIGINT and SIGHUP in the calling thread, so every
// thread started after it (librdkafka's, gRPC's, the service's own) inherits the mask,
// and one scaffold thread waits for them with sigwait. A signal, or RequestStop(), sets
// stopping() and runs the OnStop hooks once, on an ordinary thread: hooks may lock,
// log and allocate. Construct the Service first thing in main.
//
// Reloading. SIGHUP is blocked and taken by the same thread; it runs the OnReload hooks
// there (each time, in registration order) and does not stop the service.

#include <CLI/CLI.hpp>
#include <absl/status/status.h>
#include <absl/time/time.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/kafka_config.h"
#include "common/tracing.h"

namespace sluice::common {

class Service {
 public:
  // `name` is the binary's name ("sluice-relay"); `description` the first line of --help.
  Service(std::string name, std::string description);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  const std::string& name() const { return name_; }
  CLI::App& app() { return app_; }

  // The variable a service flag reads: EnvName("poll-ms") == "SLUICE_RELAY_POLL_MS".
  std::string EnvName(std::string_view flag) const;

  // A flag of this service's own, read from SLUICE_<SERVICE>_<FLAG> too; the help shows
  // the default.
  template <class T>
  CLI::Option* Flag(const std::string& flag, T& value, const std::string& help) {
    return app_.add_option("--" + flag, value, help)->envname(EnvName(flag))->capture_default_str();
  }
  // A repeatable flag whose variable holds a comma-separated list.
  CLI::Option* ListFlag(const std::string& flag, std::vector<std::string>& values, const std::string& help) {
    return app_.add_option("--" + flag, values, help)->envname(EnvName(flag))->delimiter(',');
  }

  // --pg-dsn (default: the local stack's), --pg-schema (default: the search_path) and
  // --pg-statement-timeout-ms (SLUICE_<SERVICE>_PG_STATEMENT_TIMEOUT_MS; default 60000;
  // 0: the server's), which Parse makes the statement_timeout of every connection
  // common::Connect opens. `what` says what the
  // database holds, for --help.
  void AddPostgres(std::string& dsn, std::string& schema, const std::string& what);
  // --bootstrap (default: the local stack's), --topic-prefix, and --kafka-config: a
  // properties file of librdkafka settings (security.protocol, ssl.*, sasl.*) for every
  // Kafka client of the service, with environment overrides; see kafka_settings().
  void AddKafka(std::string& bootstrap, std::string& topic_prefix);
  // The librdkafka settings from --kafka-config and the SLUICE_KAFKA_* overrides, for every
  // Kafka client the service creates. Valid after Parse; empty without AddKafka.
  const KafkaSettings& kafka_settings() const { return kafka_settings_; }
  // --metrics-listen (SLUICE_<SERVICE>_METRICS_LISTEN) with this default; empty disables.
  void AddMetrics(std::string default_listen);
  // --otlp-endpoint (SLUICE_OTLP_ENDPOINT): where to export spans over OTLP/HTTP; empty
  // (the default) exports none. StartTracing starts the exporter.
  void AddTracing();

  // Parses the command line and environment, then starts logging at --log-level.
  // Returns the exit code when the process should end now (0 after --help, CLI11's code
  // and a message naming the flag after a bad one), nullopt to go on.
  std::optional<int> Parse(int argc, char** argv);

  // Serves registry() on --metrics-listen (nothing when empty or not added).
  absl::Status StartMetrics();
  // With --otlp-endpoint, makes an OtlpExporter the process's span sink (common/tracing.h)
  // until the Service is destroyed, which sends what is still queued.
  absl::Status StartTracing();
  prometheus::Registry& registry() { return *registry_; }

  // Runs `hook` when the service is asked to stop. The hook stays registered while the
  // returned handle lives; destroy the handle before anything the hook touches.
  class StopHook {
   public:
    StopHook(StopHook&& o) noexcept : service_(std::exchange(o.service_, nullptr)), list_(o.list_), it_(o.it_) {}
    StopHook& operator=(StopHook&&) = delete;
    ~StopHook();

   private:
    friend class Service;
    StopHook(Service* s, std::list<std::function<void()>>* list, std::list<std::function<void()>>::iterator it)
        : service_(s), list_(list), it_(it) {}
    Service* service_;
    std::list<std::function<void()>>* list_;  // hooks_ or reload_hooks_
    std::list<std::function<void()>>::iterator it_;
  };
  [[nodiscard]] StopHook OnStop(std::function<void()> hook);
  // Runs `hook` on SIGHUP (or RequestReload), on the scaffold's thread, every time; while
  // the returned handle lives, like OnStop's. A hook should not block for long: stop
  // signals wait behind it.
  [[nodiscard]] StopHook OnReload(std::function<void()> hook);
  // Runs the reload hooks now, on the calling thread (what SIGHUP does).
  void RequestReload(std::string_view why = "requested");

  // True once a stop was requested. A reference for loops that take an atomic flag.
  std::atomic<bool>& stopping() { return stopping_; }
  // Waits up to `timeout` for a stop request; true when stopping.
  bool WaitForStop(absl::Duration timeout);
  // Blocks until a stop is requested.
  void WaitForStop();
  // Sets stopping() and runs the hooks (once; later calls do nothing).
  void RequestStop(std::string_view why = "requested");

  // Logs "<what>: <message>" at critical level and returns the exit code 1.
  int Fail(std::string_view what, const absl::Status& status) const;

 private:
  void SignalLoop();

  std::string name_;
  std::string env_prefix_;  // "SLUICE_RELAY_"
  CLI::App app_;
  std::string log_level_ = "info";
  std::string metrics_listen_;
  bool has_metrics_ = false;
  bool has_kafka_ = false;
  bool has_postgres_ = false;
  int64_t pg_statement_timeout_ms_ = 60000;  // --pg-statement-timeout-ms
  std::string kafka_config_;                 // --kafka-config
  KafkaSettings kafka_settings_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  bool has_tracing_ = false;
  std::string otlp_endpoint_;
  std::unique_ptr<SpanSink> spans_;  // the OtlpExporter

  std::atomic<bool> stopping_{false};
  std::atomic<bool> exiting_{false};
  std::mutex mu_;  // guards hooks_ and orders RequestStop against hook removal
  std::condition_variable cv_;
  std::list<std::function<void()>> hooks_;
  // Guarded by their own mutex, so a reload hook may take a while (read files) without
  // holding up WaitForStop, and RequestStop from a reload hook cannot deadlock.
  std::mutex reload_mu_;
  std::list<std::function<void()>> reload_hooks_;
  std::thread signals_;
};

}  // namespace sluice::common
