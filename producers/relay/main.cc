// sluice-relay: publishes committed event_outbox rows to Kafka (see producers/relay/README.md).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <thread>

#include "common/env.h"
#include "common/log.h"
#include "common/metrics_exposer.h"
#include "producers/relay/relay.h"

namespace {
sluice::relay::Relay* g_relay = nullptr;
void OnSignal(int) {
  if (g_relay != nullptr) g_relay->Stop();  // an atomic store: async-signal-safe
}
}  // namespace

int main(int argc, char** argv) {
  sluice::relay::RelayConfig rc;
  rc.dsn = sluice::common::DefaultPgDsn();
  std::string bootstrap = sluice::common::DefaultKafkaBootstrap(), topic_prefix, log_level = "info";
  std::string metrics_listen = "127.0.0.1:9467";
  int64_t poll_ms = 1000, retention_h = 168, delivery_timeout_ms = 30000;
  CLI::App app{"sluice-relay: publish the transactional outbox (event_outbox) to Kafka, in commit order per tenant"};
  app.add_option("--dsn", rc.dsn, "PostgreSQL connection string")->envname("SLUICE_PG_DSN")->capture_default_str();
  app.add_option("--schema", rc.schema, "Schema holding event_outbox (default: the search_path)")->envname("SLUICE_PG_SCHEMA");
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers")->envname("SLUICE_KAFKA_BOOTSTRAP")->capture_default_str();
  app.add_option("--topic-prefix", topic_prefix, "Prefix of every catalog topic")->envname("SLUICE_TOPIC_PREFIX");
  app.add_option("--batch-size", rc.batch_size, "Rows of one tenant per transaction")
      ->envname("SLUICE_RELAY_BATCH_SIZE")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--poll-ms", poll_ms, "Polling interval when no NOTIFY arrives")
      ->envname("SLUICE_RELAY_POLL_MS")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--retention-h", retention_h, "Hours sent rows are kept (0 keeps them)")
      ->envname("SLUICE_RELAY_RETENTION_H")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--delivery-timeout-ms", delivery_timeout_ms, "Broker acknowledgement deadline per row")
      ->envname("SLUICE_RELAY_DELIVERY_TIMEOUT_MS")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--metrics-listen", metrics_listen, "Prometheus /metrics address; empty disables")
      ->envname("SLUICE_RELAY_METRICS_LISTEN")->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->envname("SLUICE_LOG_LEVEL")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  sluice::common::InitLogging("sluice-relay", log_level);
  rc.poll_interval = absl::Milliseconds(poll_ms);
  rc.retention = absl::Hours(retention_h);

  auto catalog = sluice::contracts::Catalog::Default().WithTopicPrefix(topic_prefix);
  auto producer = sluice::kafka::Producer::Create(
      {.bootstrap_servers = bootstrap, .client_id = "sluice-relay", .delivery_timeout = absl::Milliseconds(delivery_timeout_ms)},
      catalog);
  if (!producer.ok()) {
    spdlog::critical("producer: {}", std::string(producer.status().message()));
    return 1;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  auto exposer = sluice::common::StartMetricsExposer(metrics_listen, registry);
  if (!exposer.ok()) {
    spdlog::critical("--metrics-listen: {}", std::string(exposer.status().message()));
    return 1;
  }
  auto relay = sluice::relay::Relay::Create(rc, **producer, registry.get());
  if (!relay.ok()) {
    spdlog::critical("relay: {}", std::string(relay.status().message()));
    return 1;
  }
  g_relay = relay->get();
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  spdlog::info("relay: started (outbox {} -> {})", rc.schema.empty() ? "event_outbox" : rc.schema + ".event_outbox", bootstrap);
  (*relay)->Run();  // returns after the batch in hand is published and committed
  auto st = (*relay)->stats();
  spdlog::info("relay: stopped; published {}, failed attempts {}, pruned {}", st.published, st.failed, st.pruned);
  return 0;
}
