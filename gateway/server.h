#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "gateway/auth.h"
#include "gateway/rate_limiter.h"
#include "kafka/producer.h"

namespace sluice::gateway {

struct GatewayConfig {
  // host:port to serve gRPC on; port 0 picks a free one (see Gateway::port()).
  std::string listen = "127.0.0.1:50051";
  // host:port of the HTTP/JSON API (http_api.h; port 0: a free one, Gateway::http_port());
  // empty: none. Plain HTTP: TLS comes from the ingress in front of it.
  std::string http_listen;
  int http_threads = 16;  // requests served at once; live feeds take at most half
  // TriggerService accepts http:// webhooks to a loopback address (development, tests).
  bool trigger_allow_http_loopback = false;
  std::string bootstrap_servers;
  // How long the broker may take to acknowledge before the caller gets UNAVAILABLE.
  absl::Duration delivery_timeout = absl::Seconds(10);
  absl::Duration dedup_window = absl::Minutes(10);
  size_t dedup_capacity = 100000;
  // Events of one PublishStream read and not yet answered (waiting for the broker, or
  // their acknowledgement not yet written to the client) before the gateway stops
  // reading: a stream holds at most this many events and acks in memory.
  size_t max_in_flight_per_stream = 1000;
  // Envelopes in one PublishBatch request or one PublishStream message; more: the whole
  // request (message) is INVALID_ARGUMENT and nothing is published. A batch's results are
  // held until its last event is answered, so this bounds them. The request must also fit
  // max_message_bytes.
  size_t max_batch_events = 1000;
  // Long-lived calls (PublishStream, Subscribe, Replay; one count for all three) open at
  // once per principal and in total; past either: RESOURCE_EXHAUSTED naming the cap.
  size_t max_streams_per_principal = 8;
  size_t max_streams = 128;
  // Threads gRPC may run synchronous calls on (a ResourceQuota). Each open stream holds
  // one, so keep it above max_streams for the unary calls; past it gRPC answers
  // RESOURCE_EXHAUSTED instead of starting threads.
  int max_rpc_threads = 192;
  // Largest gRPC message accepted; larger ones are refused by the transport unread.
  int max_message_bytes = 1 << 20;
  // TLS: both set enables TLS; with client_ca also set, clients must present a
  // certificate signed by it (mutual TLS). PEM file paths.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // How often the token file (a TokenStore made by FromFile) and the TLS files are checked
  // for new contents, which then apply to calls and connections from then on; zero: only
  // on Gateway::Reload. A file that does not validate is refused (logged) and the old
  // tokens or certificates stay in force.
  absl::Duration reload_interval = absl::Seconds(10);
  // PostgreSQL for ApprovalService and ListEvents; empty serves no ApprovalService. With
  // rate limits configured, it also holds their counts (gateway_rate_window), so every
  // replica on the same database shares them (SharedRateLimiter); without it each replica
  // counts on its own.
  std::string pg_dsn;
  // Schema of the governance tables (search_path); empty = the connection's default.
  std::string pg_schema;
  // PostgreSQL connections open at once; a call that finds all of them busy for
  // pg_acquire_timeout gets RESOURCE_EXHAUSTED.
  size_t pg_max_connections = 16;
  absl::Duration pg_acquire_timeout = absl::Seconds(2);
  // statement_timeout of every gateway connection; a statement past it is cancelled
  // (DEADLINE_EXCEEDED). Zero: the server's setting.
  absl::Duration pg_statement_timeout = absl::Seconds(5);
  // Which role decides approvals of each entity type and tier (--approval-roles).
  contracts::ApprovalPolicy approval_policy = contracts::ApprovalPolicy::Default();
  // This replica's name in GetEventHealth (`replica`), which says whose per-replica
  // figures they are (sluice-gateway defaults it to the host name: the pod's name).
  std::string replica_name;
  // Consumer groups whose lag GetEventHealth and the sluice_consumer_lag gauge report.
  std::vector<std::string> health_groups = {"sluice-audit", "sluice-profiler"};
  // The audit sink's consumer group: an empty first page of ListEvents says when it has
  // committed nothing or is behind (ListEventsResponse.notice). One of health_groups
  // (measured with them; else a warning and no notice); empty: no notice.
  std::string event_log_group = "sluice-audit";
  // How often the event-health gauges are refreshed; zero: only on GetEventHealth.
  absl::Duration health_interval = absl::Seconds(15);
  // Raw librdkafka settings for the gateway's producer.
  std::map<std::string, std::string> librdkafka;
  // librdkafka settings for every Kafka client the gateway opens: the producer (with
  // `librdkafka` on top), the consumer-lag clients of GetEventHealth, and the readers of
  // Subscribe and Replay. Security settings (--kafka-config) go here.
  std::map<std::string, std::string> kafka_client;
  // Called once when the broker refuses the producer's credentials after Start (the
  // gateway could publish nothing more); unset: only logged. Refused during Start, Start
  // fails with kUnauthenticated.
  std::function<void(const absl::Status&)> on_kafka_auth_failure;
};

// The settings of the gateway's producer: `kafka_client` with `librdkafka` on top, a 1 ms
// linger, the delivery timeout and the auth-failure callback of `config`.
kafka::ProducerConfig GatewayProducerConfig(const GatewayConfig& config);

// A running sluice-gateway: EventGateway, DataRefreshService, EventQueryService (ListEvents
// needs pg_dsn), ApprovalService (with pg_dsn), grpc.health.v1 and server reflection on
// one port. Thread-safe. The destructor shuts down like Shutdown(5s).
class Gateway {
 public:
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(GatewayConfig config, TokenStore tokens, RateLimiter limits,
                                                        const contracts::Catalog& catalog,
                                                        prometheus::Registry& registry);
  ~Gateway();

  int port() const;
  int http_port() const;  // 0 without an HTTP API
  // Stops accepting calls, lets in-flight calls finish for up to `grace` (then cancels
  // them), and waits for the producer's outstanding acknowledgements.
  void Shutdown(absl::Duration grace);
  // Blocks until Shutdown.
  void Wait();
  // Reads the token file and the TLS files again now, changed or not (what SIGHUP does).
  // Calls and streams in flight keep the principal they authenticated with. A file that
  // does not validate is refused with a log line and the old set stays in force; the
  // first such refusal is returned.
  absl::Status Reload();

  struct Impl;

 private:
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::gateway
