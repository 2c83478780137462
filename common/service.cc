#include "common/service.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <csignal>

#include "common/env.h"
#include "common/log.h"
#include "common/metrics_exposer.h"
#include "common/otlp.h"
#include "common/pg.h"

namespace sluice::common {
namespace {

// The signals the scaffold's thread takes: the stop signals and SIGHUP (reload).
sigset_t ScaffoldSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

std::string Upper(std::string_view s) {
  std::string out;
  for (char c : s) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Service::Service(std::string name, std::string description)
    : name_(std::move(name)),
      env_prefix_("SLUICE_" + Upper(name_.starts_with("sluice-") ? name_.substr(7) : name_) + "_"),
      app_(name_ + ": " + description, name_),
      registry_(std::make_shared<prometheus::Registry>()) {
  const sigset_t set = ScaffoldSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signals_ = std::thread([this] { SignalLoop(); });
  app_.add_option("--log-level", log_level_, "trace|debug|info|warn|error")
      ->envname("SLUICE_LOG_LEVEL")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
}

Service::~Service() {
  if (spans_) {
    SetSpanSink(nullptr);
    spans_.reset();  // sends what is queued
  }
  exiting_.store(true);
  pthread_kill(signals_.native_handle(), SIGTERM);  // ends its sigwait; exiting_ says why
  signals_.join();
}

std::string Service::EnvName(std::string_view flag) const { return env_prefix_ + Upper(flag); }

void Service::AddPostgres(std::string& dsn, std::string& schema, const std::string& what) {
  if (dsn.empty()) dsn = DefaultPgDsn();
  app_.add_option("--pg-dsn", dsn, "PostgreSQL connection string (" + what + ")")
      ->envname("SLUICE_PG_DSN")
      ->capture_default_str();
  app_.add_option("--pg-schema", schema, "Schema of those tables (default: the search_path)")
      ->envname("SLUICE_PG_SCHEMA");
  app_.add_option("--pg-statement-timeout-ms", pg_statement_timeout_ms_,
                  "statement_timeout of this service's PostgreSQL connections: a statement (or a lock wait) "
                  "running longer is cancelled and its work retried; 0 = the server's")
      ->envname(EnvName("pg-statement-timeout-ms"))
      ->check(CLI::Range(int64_t{0}, int64_t{86'400'000}))
      ->capture_default_str();
  has_postgres_ = true;
}

void Service::AddKafka(std::string& bootstrap, std::string& topic_prefix) {
  if (bootstrap.empty()) bootstrap = DefaultKafkaBootstrap();
  app_.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers")
      ->envname("SLUICE_KAFKA_BOOTSTRAP")
      ->capture_default_str();
  app_.add_option("--topic-prefix", topic_prefix, "Prefix of every catalog topic")->envname("SLUICE_TOPIC_PREFIX");
  app_.add_option("--kafka-config", kafka_config_,
                  "librdkafka client settings (key=value properties file: security.protocol, ssl.*, sasl.*); "
                  "SLUICE_KAFKA_SASL_PASSWORD etc. override single keys")
      ->envname("SLUICE_KAFKA_CONFIG");
  has_kafka_ = true;
}

void Service::AddMetrics(std::string default_listen) {
  metrics_listen_ = std::move(default_listen);
  has_metrics_ = true;
  Flag("metrics-listen", metrics_listen_, "Prometheus /metrics address host:port; empty disables");
}

void Service::AddTracing() {
  has_tracing_ = true;
  app_.add_option("--otlp-endpoint", otlp_endpoint_,
                  "Export spans over OTLP/HTTP (JSON) to this collector, e.g. http://otel-collector:4318; empty: none")
      ->envname("SLUICE_OTLP_ENDPOINT");
}

absl::Status Service::StartTracing() {
  if (!has_tracing_ || otlp_endpoint_.empty()) return absl::OkStatus();
  auto exporter = OtlpExporter::Start({.endpoint = otlp_endpoint_, .service_name = name_}, *registry_);
  if (!exporter.ok()) return exporter.status();
  spans_ = *std::move(exporter);
  SetSpanSink(spans_.get());
  spdlog::info("{}: exporting spans to {}/v1/traces", name_, otlp_endpoint_);
  return absl::OkStatus();
}

std::optional<int> Service::Parse(int argc, char** argv) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_.exit(e);
  }
  InitLogging(name_, log_level_);
  if (has_postgres_) SetDefaultStatementTimeout(absl::Milliseconds(pg_statement_timeout_ms_));
  if (has_kafka_) {
    auto settings = LoadKafkaSettings(kafka_config_);
    if (!settings.ok()) return Fail("--kafka-config", settings.status());
    kafka_settings_ = *std::move(settings);
    // Secret values (sasl.password, ...) are shown as "(set)".
    if (!kafka_settings_.empty())
      spdlog::info("{}: kafka client settings: {}", name_, DescribeKafkaSettings(kafka_settings_));
  }
  return std::nullopt;
}

absl::Status Service::StartMetrics() {
  if (!has_metrics_) return absl::OkStatus();
  auto exposer = StartMetricsExposer(metrics_listen_, registry_);
  if (!exposer.ok()) return exposer.status();
  exposer_ = *std::move(exposer);
  if (exposer_) spdlog::info("{}: metrics on http://{}/metrics", name_, metrics_listen_);
  return absl::OkStatus();
}

Service::StopHook::~StopHook() {
  if (service_ == nullptr) return;
  std::lock_guard lock(list_ == &service_->hooks_ ? service_->mu_ : service_->reload_mu_);
  list_->erase(it_);
}

Service::StopHook Service::OnStop(std::function<void()> hook) {
  std::lock_guard lock(mu_);
  hooks_.push_back(std::move(hook));
  return StopHook(this, &hooks_, std::prev(hooks_.end()));
}

Service::StopHook Service::OnReload(std::function<void()> hook) {
  std::lock_guard lock(reload_mu_);
  reload_hooks_.push_back(std::move(hook));
  return StopHook(this, &reload_hooks_, std::prev(reload_hooks_.end()));
}

void Service::RequestReload(std::string_view why) {
  std::lock_guard lock(reload_mu_);
  spdlog::info("{}: reloading ({})", name_, why);
  for (auto& h : reload_hooks_) h();  // under reload_mu_, like RequestStop's hooks
}

void Service::RequestStop(std::string_view why) {
  std::lock_guard lock(mu_);
  if (stopping_.exchange(true)) return;
  spdlog::info("{}: stopping ({})", name_, why);
  for (auto& h : hooks_) h();  // under mu_: a hook's handle cannot go away while it runs
  cv_.notify_all();
}

bool Service::WaitForStop(absl::Duration timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return stopping_.load(); });
  return stopping_.load();
}

void Service::WaitForStop() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return stopping_.load(); });
}

int Service::Fail(std::string_view what, const absl::Status& status) const {
  spdlog::critical("{}: {}", what, std::string(status.message()));
  return 1;
}

void Service::SignalLoop() {
  const sigset_t set = ScaffoldSignals();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (exiting_.load()) return;
    if (sig == SIGHUP) {
      RequestReload("SIGHUP");
      continue;
    }
    RequestStop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
  }
}

}  // namespace sluice::common
