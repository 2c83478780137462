// sluice-relay: publishes committed event_outbox rows to Kafka (see producers/relay/README.md).
#include <spdlog/spdlog.h>

#include <mutex>

#include "common/service.h"
#include "producers/relay/relay.h"

int main(int argc, char** argv) {
  sluice::common::Service service(
      "sluice-relay", "publish the transactional outbox (event_outbox) to Kafka, in commit order per tenant");
  sluice::relay::RelayConfig rc;
  std::string bootstrap, topic_prefix;
  int64_t poll_ms = 1000, retention_h = 168, delivery_timeout_ms = 30000;
  service.AddPostgres(rc.pg_dsn, rc.pg_schema, "event_outbox");
  service.AddKafka(bootstrap, topic_prefix);
  service.Flag("batch-size", rc.batch_size, "Rows of one tenant per transaction")->check(CLI::PositiveNumber);
  service.Flag("poll-ms", poll_ms, "Polling interval when no NOTIFY arrives")->check(CLI::PositiveNumber);
  service.Flag("retention-h", retention_h, "Hours sent rows are kept (0 keeps them)")->check(CLI::NonNegativeNumber);
  service.Flag("delivery-timeout-ms", delivery_timeout_ms, "Broker acknowledgement deadline per row")
      ->check(CLI::PositiveNumber);
  service.AddMetrics("127.0.0.1:9467");
  if (auto rc_exit = service.Parse(argc, argv)) return *rc_exit;
  rc.poll_interval = absl::Milliseconds(poll_ms);
  rc.retention = absl::Hours(retention_h);

  auto catalog = sluice::contracts::Catalog::Default().WithTopicPrefix(topic_prefix);
  std::mutex auth_mu;
  absl::Status auth_failure;  // the broker refused our credentials after start: exit non-zero
  auto producer = sluice::kafka::Producer::Create({.bootstrap_servers = bootstrap,
                                                   .client_id = "sluice-relay",
                                                   .delivery_timeout = absl::Milliseconds(delivery_timeout_ms),
                                                   // Each round waits for its acks before it
                                                   // commits, and rows committed meanwhile
                                                   // wait for the round: lingering only adds
                                                   // latency to a batch enqueued at once.
                                                   .linger = absl::Milliseconds(1),
                                                   .librdkafka = service.kafka_settings(),
                                                   .on_auth_failure =
                                                       [&](const absl::Status& s) {
                                                         {
                                                           std::lock_guard lock(auth_mu);
                                                           auth_failure = s;
                                                         }
                                                         service.RequestStop("kafka authentication failed");
                                                       }},
                                                  catalog);
  if (!producer.ok()) return service.Fail("producer", producer.status());
  if (auto s = service.StartMetrics(); !s.ok()) return service.Fail("--metrics-listen", s);
  auto relay = sluice::relay::Relay::Create(rc, **producer, &service.registry());
  if (!relay.ok()) return service.Fail("relay", relay.status());
  auto stop = service.OnStop([&] { (*relay)->Stop(); });
  if (service.stopping()) (*relay)->Stop();  // asked before the hook existed
  spdlog::info("relay: started (outbox {} -> {})",
               rc.pg_schema.empty() ? "event_outbox" : rc.pg_schema + ".event_outbox", bootstrap);
  (*relay)->Run();  // returns after the batch in hand is published and committed
  auto st = (*relay)->stats();
  spdlog::info("relay: stopped; published {}, failed attempts {}, pruned {}", st.published, st.failed, st.pruned);
  std::lock_guard lock(auth_mu);
  if (!auth_failure.ok()) return service.Fail("kafka", auth_failure);
  return 0;
}
