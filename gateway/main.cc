// sluice-gateway: gRPC publishing for any language (see gateway/README.md for flags).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <climits>
#include <memory>
#include <mutex>

#include "common/file.h"
#include "common/service.h"
#include "gateway/server.h"

int main(int argc, char** argv) {
  sluice::common::Service service(
      "sluice-gateway",
      "Sluice over gRPC (EventGateway, DataRefreshService, EventQueryService, ApprovalService with --pg-dsn, health, "
      "reflection)");
  using sluice::gateway::GatewayConfig;
  GatewayConfig c;
  std::string tokens_file, rate_limits, approval_roles, topic_prefix;
  int64_t delivery_timeout_ms = 10000, dedup_window_s = 600, grace_s = 25, health_interval_s = 15;
  int64_t reload_interval_s = 10;
  int64_t pg_acquire_timeout_ms = 2000, pg_statement_timeout_ms = 5000;
  std::vector<std::string> librdkafka;
  service.AddKafka(c.bootstrap_servers, topic_prefix);
  // The gateway serves ApprovalService and ListEvents only with a database: no default DSN.
  service.app()
      .add_option("--pg-dsn", c.pg_dsn, "PostgreSQL for ApprovalService and ListEvents (empty: neither is served)")
      ->envname("SLUICE_PG_DSN");
  service.app().add_option("--pg-schema", c.pg_schema, "Schema of the governance tables")->envname("SLUICE_PG_SCHEMA");
  service.Flag("listen", c.listen, "gRPC address host:port");
  service.Flag("http-listen", c.http_listen,
               "HTTP/JSON API address host:port (events, one event with its chain, health, a live feed as "
               "Server-Sent Events); plain HTTP, TLS from the ingress. Empty: no HTTP API");
  service.Flag("http-threads", c.http_threads, "HTTP requests served at once; live feeds take at most half")
      ->check(CLI::Range(2, 1024));
  service.app()
      .add_flag("--trigger-allow-http-loopback", c.trigger_allow_http_loopback,
                "TriggerService accepts http:// webhooks to 127.0.0.1, [::1] or localhost (development and "
                "tests; otherwise https:// only)")
      ->envname(service.EnvName("trigger-allow-http-loopback"));
  service.Flag("tokens", tokens_file, "Token file (sluice.v1.TokenFile text format)")->required();
  service.Flag("rate-limits", rate_limits,
               "Per-source limits as JSON, or @FILE: "
               "[{\"source\":\"etl.pipeline\",\"limit\":200,\"intervalMs\":60000,\"pauseMs\":60000}]");
  service.Flag("pg-max-connections", c.pg_max_connections, "PostgreSQL connections open at once")
      ->check(CLI::PositiveNumber);
  service
      .Flag("pg-acquire-timeout-ms", pg_acquire_timeout_ms,
            "How long a call waits for a free PostgreSQL connection; then RESOURCE_EXHAUSTED")
      ->check(CLI::NonNegativeNumber);
  service
      .Flag("pg-statement-timeout-ms", pg_statement_timeout_ms,
            "statement_timeout of the gateway's PostgreSQL connections; 0 = the server's")
      ->check(CLI::NonNegativeNumber);
  service.Flag("approval-roles", approval_roles,
               "Role that decides approvals, by entity type and optionally tier, as JSON or @FILE: "
               "{\"METADATA\":\"metadata_steward\",\"METADATA/TIER_1\":\"kernel_architect\"} "
               "(default: KPI kpi_owner, others metadata_steward)");
  service
      .Flag("delivery-timeout-ms", delivery_timeout_ms,
            "Broker acknowledgement deadline of each send (a record acknowledged without an offset is sent again, "
            "up to 3 times); then UNAVAILABLE")
      ->check(CLI::PositiveNumber);
  service.Flag("dedup-window-s", dedup_window_s, "How long a published event id is remembered")
      ->check(CLI::NonNegativeNumber);
  service.Flag("dedup-capacity", c.dedup_capacity, "Most event ids remembered");
  service
      .Flag("max-in-flight-per-stream", c.max_in_flight_per_stream,
            "Events of one stream awaiting the broker before reading pauses")
      ->check(CLI::PositiveNumber);
  service
      .Flag("max-batch-events", c.max_batch_events,
            "Envelopes in one PublishBatch request or PublishStream message (--max-message-bytes must fit them)")
      ->check(CLI::PositiveNumber);
  service
      .Flag("max-streams-per-principal", c.max_streams_per_principal,
            "PublishStream, Subscribe and Replay calls one principal may hold open at once")
      ->check(CLI::PositiveNumber);
  service.Flag("max-streams", c.max_streams, "PublishStream, Subscribe and Replay calls open at once in total")
      ->check(CLI::PositiveNumber);
  service
      .Flag("max-rpc-threads", c.max_rpc_threads,
            "Threads gRPC may serve synchronous calls on (must exceed --max-streams)")
      ->check(CLI::PositiveNumber);
  service.Flag("max-message-bytes", c.max_message_bytes, "Largest gRPC message accepted")->check(CLI::PositiveNumber);
  service.Flag("tls-cert", c.tls_cert, "Server certificate (PEM); with --tls-key enables TLS");
  service.Flag("tls-key", c.tls_key, "Server private key (PEM)");
  service.Flag("tls-client-ca", c.tls_client_ca, "CA (PEM) that client certificates must chain to: mutual TLS");
  service
      .Flag("reload-interval-s", reload_interval_s,
            "How often the --tokens and --tls-* files are checked for new contents (also reloaded on SIGHUP); "
            "0 = only on SIGHUP")
      ->check(CLI::NonNegativeNumber);
  service.Flag("shutdown-grace-s", grace_s, "On SIGTERM, how long in-flight calls may finish");
  service
      .ListFlag(
          "health-group", c.health_groups,
          "Consumer group whose lag GetEventHealth and sluice_consumer_lag report (repeatable or comma-separated)")
      ->capture_default_str();
  service
      .Flag("event-log-group", c.event_log_group,
            "The audit sink's consumer group (it writes event_log): an empty first page of ListEvents carries a notice "
            "when the group has committed nothing or is behind. Must be one of --health-group; empty: no notice")
      ->capture_default_str();
  service.Flag("replica-name", c.replica_name,
               "This replica's name in GetEventHealth, whose source figures are per replica (default: the host "
               "name, the pod's name in Kubernetes)");
  service.Flag("health-interval-s", health_interval_s, "How often the event-health gauges are refreshed; 0 = never")
      ->check(CLI::NonNegativeNumber);
  service.app().add_option("--librdkafka", librdkafka, "Raw producer setting KEY=VALUE (repeatable)");
  service.AddMetrics("127.0.0.1:9464");
  service.AddTracing();
  if (auto rc = service.Parse(argc, argv)) return *rc;

  c.delivery_timeout = absl::Milliseconds(delivery_timeout_ms);
  c.dedup_window = absl::Seconds(dedup_window_s);
  c.health_interval = absl::Seconds(health_interval_s);
  c.reload_interval = absl::Seconds(reload_interval_s);
  c.pg_acquire_timeout = absl::Milliseconds(pg_acquire_timeout_ms);
  c.pg_statement_timeout = absl::Milliseconds(pg_statement_timeout_ms);
  c.kafka_client = service.kafka_settings();
  if (c.replica_name.empty()) {
    char host[HOST_NAME_MAX + 1] = {};
    if (gethostname(host, sizeof(host) - 1) == 0) c.replica_name = host;
  }
  std::mutex auth_mu;
  absl::Status auth_failure;  // the broker refused our credentials after start: exit non-zero
  c.on_kafka_auth_failure = [&](const absl::Status& s) {
    {
      std::lock_guard lock(auth_mu);
      auth_failure = s;
    }
    service.RequestStop("kafka authentication failed");
  };
  for (const auto& kv : librdkafka) {
    auto eq = kv.find('=');
    if (eq == std::string::npos)
      return service.Fail("--librdkafka", absl::InvalidArgumentError(kv + ": want KEY=VALUE"));
    c.librdkafka[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto tokens = sluice::gateway::TokenStore::FromFile(tokens_file);
  if (!tokens.ok()) return service.Fail("--tokens", tokens.status());
  if (!rate_limits.empty() && rate_limits[0] == '@') {
    auto text = sluice::common::ReadFile(rate_limits.substr(1));
    if (!text.ok()) return service.Fail("--rate-limits", text.status());
    rate_limits = *text;
  }
  auto limits = sluice::gateway::RateLimiter::FromJson(rate_limits);
  if (!limits.ok()) return service.Fail("--rate-limits", limits.status());
  if (!approval_roles.empty()) {
    if (approval_roles[0] == '@') {
      auto text = sluice::common::ReadFile(approval_roles.substr(1));
      if (!text.ok()) return service.Fail("--approval-roles", text.status());
      approval_roles = *text;
    }
    auto policy = sluice::contracts::ApprovalPolicy::FromJson(approval_roles);
    if (!policy.ok()) return service.Fail("--approval-roles", policy.status());
    c.approval_policy = *std::move(policy);
  }

  if (auto s = service.StartMetrics(); !s.ok()) return service.Fail("--metrics-listen", s);
  if (auto s = service.StartTracing(); !s.ok()) return service.Fail("--otlp-endpoint", s);
  auto catalog = sluice::contracts::Catalog::Default().WithTopicPrefix(topic_prefix);
  auto gw = sluice::gateway::Gateway::Start(c, *std::move(tokens), *std::move(limits), catalog, service.registry());
  if (!gw.ok()) return service.Fail("start", gw.status());
  std::printf("sluice-gateway listening on port %d\n", (*gw)->port());
  std::fflush(stdout);
  // Refusals are logged by Reload; the old tokens and certificates stay in force.
  auto reload = service.OnReload([&gw] { (void)(*gw)->Reload(); });

  service.WaitForStop();
  spdlog::info("gateway: draining (up to {}s)", grace_s);
  (*gw)->Shutdown(absl::Seconds(grace_s));
  std::lock_guard lock(auth_mu);
  if (!auth_failure.ok()) return service.Fail("kafka", auth_failure);
  return 0;
}
