// sluice-gateway: gRPC publishing for any language (see gateway/README.md for flags).
#include <CLI/CLI.hpp>
#include <prometheus/exposer.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <memory>
#include <thread>

#include "common/env.h"
#include "common/log.h"
#include "common/metrics_exposer.h"
#include "contracts/vectors.h"
#include "gateway/server.h"

namespace {

std::atomic<int> g_signal{0};
void OnSignal(int sig) { g_signal.store(sig); }

int Fail(std::string_view what, const absl::Status& s) {
  spdlog::critical("{}: {}", what, std::string(s.message()));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using sluice::gateway::GatewayConfig;
  GatewayConfig c;
  c.bootstrap_servers = sluice::common::DefaultKafkaBootstrap();
  std::string metrics_listen = "127.0.0.1:9464";
  std::string tokens_file, rate_limits, approval_roles, topic_prefix, log_level = "info";
  int64_t delivery_timeout_ms = 10000, dedup_window_s = 600, grace_s = 25, health_interval_s = 15;
  int64_t pg_acquire_timeout_ms = 2000, pg_statement_timeout_ms = 5000;
  std::vector<std::string> librdkafka;

  CLI::App app{"sluice-gateway: Sluice over gRPC (EventGateway, DataRefreshService, EventQueryService, ApprovalService with --pg-dsn, health, reflection)"};
  app.add_option("--listen", c.listen, "gRPC address host:port")->envname("SLUICE_GATEWAY_LISTEN")->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen, "Prometheus /metrics address; empty disables")
      ->envname("SLUICE_GATEWAY_METRICS_LISTEN")->capture_default_str();
  app.add_option("--bootstrap", c.bootstrap_servers, "Kafka bootstrap servers")
      ->envname("SLUICE_KAFKA_BOOTSTRAP")->capture_default_str();
  app.add_option("--tokens", tokens_file, "Token file (sluice.v1.TokenFile text format)")
      ->envname("SLUICE_GATEWAY_TOKENS")->required();
  app.add_option("--rate-limits", rate_limits,
                 "Per-source limits as JSON, or @FILE: [{\"source\":\"etl.pipeline\",\"limit\":200,\"intervalMs\":60000,\"pauseMs\":60000}]")
      ->envname("SLUICE_GATEWAY_RATE_LIMITS");
  app.add_option("--pg-dsn", c.pg_dsn, "PostgreSQL for ApprovalService and ListEvents (empty: neither is served)")->envname("SLUICE_PG_DSN");
  app.add_option("--pg-schema", c.pg_schema, "Schema of the governance tables")->envname("SLUICE_PG_SCHEMA");
  app.add_option("--pg-max-connections", c.pg_max_connections, "PostgreSQL connections open at once")
      ->envname("SLUICE_GATEWAY_PG_MAX_CONNECTIONS")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--pg-acquire-timeout-ms", pg_acquire_timeout_ms,
                 "How long a call waits for a free PostgreSQL connection; then RESOURCE_EXHAUSTED")
      ->envname("SLUICE_GATEWAY_PG_ACQUIRE_TIMEOUT_MS")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--pg-statement-timeout-ms", pg_statement_timeout_ms,
                 "statement_timeout of the gateway's PostgreSQL connections; 0 = the server's")
      ->envname("SLUICE_GATEWAY_PG_STATEMENT_TIMEOUT_MS")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--approval-roles", approval_roles,
                 "Role that decides approvals, by entity type and optionally tier, as JSON or @FILE: "
                 "{\"METADATA\":\"metadata_steward\",\"METADATA/TIER_1\":\"kernel_architect\"} "
                 "(default: KPI kpi_owner, others metadata_steward)")
      ->envname("SLUICE_GATEWAY_APPROVAL_ROLES");
  app.add_option("--topic-prefix", topic_prefix, "Prefix of every catalog topic")->envname("SLUICE_TOPIC_PREFIX");
  app.add_option("--delivery-timeout-ms", delivery_timeout_ms, "Broker acknowledgement deadline; then UNAVAILABLE")
      ->envname("SLUICE_GATEWAY_DELIVERY_TIMEOUT_MS")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--dedup-window-s", dedup_window_s, "How long a published event id is remembered")
      ->envname("SLUICE_GATEWAY_DEDUP_WINDOW_S")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--dedup-capacity", c.dedup_capacity, "Most event ids remembered")
      ->envname("SLUICE_GATEWAY_DEDUP_CAPACITY")->capture_default_str();
  app.add_option("--max-in-flight-per-stream", c.max_in_flight_per_stream,
                 "Events of one stream awaiting the broker before reading pauses")
      ->envname("SLUICE_GATEWAY_MAX_IN_FLIGHT_PER_STREAM")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-streams-per-principal", c.max_streams_per_principal,
                 "PublishStream, Subscribe and Replay calls one principal may hold open at once")
      ->envname("SLUICE_GATEWAY_MAX_STREAMS_PER_PRINCIPAL")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-streams", c.max_streams, "PublishStream, Subscribe and Replay calls open at once in total")
      ->envname("SLUICE_GATEWAY_MAX_STREAMS")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-rpc-threads", c.max_rpc_threads,
                 "Threads gRPC may serve synchronous calls on (must exceed --max-streams)")
      ->envname("SLUICE_GATEWAY_MAX_RPC_THREADS")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-message-bytes", c.max_message_bytes, "Largest gRPC message accepted")
      ->envname("SLUICE_GATEWAY_MAX_MESSAGE_BYTES")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--tls-cert", c.tls_cert, "Server certificate (PEM); with --tls-key enables TLS")->envname("SLUICE_GATEWAY_TLS_CERT");
  app.add_option("--tls-key", c.tls_key, "Server private key (PEM)")->envname("SLUICE_GATEWAY_TLS_KEY");
  app.add_option("--tls-client-ca", c.tls_client_ca, "CA (PEM) that client certificates must chain to: mutual TLS")
      ->envname("SLUICE_GATEWAY_TLS_CLIENT_CA");
  app.add_option("--shutdown-grace-s", grace_s, "On SIGTERM, how long in-flight calls may finish")
      ->envname("SLUICE_GATEWAY_SHUTDOWN_GRACE_S")->capture_default_str();
  app.add_option("--health-group", c.health_groups, "Consumer group whose lag GetEventHealth and sluice_consumer_lag report (repeatable)")
      ->envname("SLUICE_GATEWAY_HEALTH_GROUPS")->capture_default_str();
  app.add_option("--health-interval-s", health_interval_s, "How often the event-health gauges are refreshed; 0 = never")
      ->envname("SLUICE_GATEWAY_HEALTH_INTERVAL_S")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--librdkafka", librdkafka, "Raw producer setting KEY=VALUE (repeatable)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->envname("SLUICE_LOG_LEVEL")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  sluice::common::InitLogging("sluice-gateway", log_level);

  c.delivery_timeout = absl::Milliseconds(delivery_timeout_ms);
  c.dedup_window = absl::Seconds(dedup_window_s);
  c.health_interval = absl::Seconds(health_interval_s);
  c.pg_acquire_timeout = absl::Milliseconds(pg_acquire_timeout_ms);
  c.pg_statement_timeout = absl::Milliseconds(pg_statement_timeout_ms);
  for (const auto& kv : librdkafka) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) return Fail("--librdkafka", absl::InvalidArgumentError(kv + ": want KEY=VALUE"));
    c.librdkafka[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto tokens = sluice::gateway::TokenStore::FromFile(tokens_file);
  if (!tokens.ok()) return Fail("--tokens", tokens.status());
  if (!rate_limits.empty() && rate_limits[0] == '@') {
    auto text = sluice::contracts::ReadFile(rate_limits.substr(1));
    if (!text.ok()) return Fail("--rate-limits", text.status());
    rate_limits = *text;
  }
  auto limits = sluice::gateway::RateLimiter::FromJson(rate_limits);
  if (!limits.ok()) return Fail("--rate-limits", limits.status());
  if (!approval_roles.empty()) {
    if (approval_roles[0] == '@') {
      auto text = sluice::contracts::ReadFile(approval_roles.substr(1));
      if (!text.ok()) return Fail("--approval-roles", text.status());
      approval_roles = *text;
    }
    auto policy = sluice::contracts::ApprovalPolicy::FromJson(approval_roles);
    if (!policy.ok()) return Fail("--approval-roles", policy.status());
    c.approval_policy = *std::move(policy);
  }

  auto registry = std::make_shared<prometheus::Registry>();
  auto exposer = sluice::common::StartMetricsExposer(metrics_listen, registry);
  if (!exposer.ok()) return Fail("--metrics-listen", exposer.status());
  auto catalog = sluice::contracts::Catalog::Default().WithTopicPrefix(topic_prefix);
  auto gw = sluice::gateway::Gateway::Start(c, *std::move(tokens), *std::move(limits), catalog, *registry);
  if (!gw.ok()) return Fail("start", gw.status());
  std::printf("sluice-gateway listening on port %d\n", (*gw)->port());
  std::fflush(stdout);

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  while (g_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("gateway: signal {}, draining", g_signal.load());
  (*gw)->Shutdown(absl::Seconds(grace_s));
  return 0;
}
