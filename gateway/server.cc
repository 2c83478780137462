#include "gateway/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/file.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "gateway/approval_service.h"
#include "gateway/approvals.h"
#include "gateway/data_refresh_service.h"
#include "gateway/dedup.h"
#include "gateway/event_gateway_service.h"
#include "gateway/event_health.h"
#include "gateway/event_log.h"
#include "gateway/event_query_service.h"
#include "gateway/http_api.h"
#include "gateway/malformed_request.h"
#include "gateway/publisher.h"
#include "gateway/quality_service.h"
#include "gateway/saved_views.h"
#include "gateway/shared_rate_limiter.h"
#include "gateway/stream_slots.h"
#include "gateway/tls_files.h"
#include "gateway/triggers.h"
#include "grpc/health/v1/health.pb.h"

namespace sluice::gateway {
namespace {

// The TLS files of the config, checked and watched; nullptr without TLS.
absl::StatusOr<std::unique_ptr<TlsFiles>> Tls(const GatewayConfig& c) {
  if (c.tls_cert.empty() && c.tls_key.empty()) {
    if (!c.tls_client_ca.empty()) return absl::InvalidArgumentError("tls_client_ca needs tls_cert and tls_key");
    return nullptr;
  }
  if (c.tls_cert.empty() || c.tls_key.empty()) return absl::InvalidArgumentError("tls_cert and tls_key go together");
  return TlsFiles::Create({.cert = c.tls_cert, .key = c.tls_key, .client_ca = c.tls_client_ca});
}

}  // namespace

struct Gateway::Impl {
  Impl(GatewayConfig c, TokenStore t, RateLimiter l, const contracts::Catalog& cat)
      : config(std::move(c)),
        tokens(std::move(t)),
        limits(std::move(l)),
        catalog(cat),
        authz(catalog, config.approval_policy) {}
  // Declaration order is destruction order reversed, and it matters: the server goes
  // first (no new calls), then the services, then the producer, whose destructor still
  // runs delivery callbacks into the publisher, dedup window, metrics and activity; so
  // those are declared before it and outlive it.
  GatewayConfig config;
  TokenStore tokens;
  std::unique_ptr<TlsFiles> tls;  // outlives the server, whose credentials read its files
  std::unique_ptr<PgPool> pg;     // outlives everything that lends its connections
  RateLimiter limits;
  // With PostgreSQL and limits: the cluster-wide limits. It takes `limits` over (left
  // empty) as the replica-local limiter it falls back on.
  std::unique_ptr<SharedRateLimiter> shared_limits;
  SourceLimits* admission = nullptr;  // shared_limits, else &limits
  const contracts::Catalog catalog;   // with the topic prefix; what everything routes by
  const contracts::Authorizer authz;
  SourceActivity activity;
  std::unique_ptr<DedupWindow> dedup;
  std::unique_ptr<PublisherMetrics> metrics;
  std::unique_ptr<Publisher> publisher;
  std::unique_ptr<kafka::Producer> producer;
  std::unique_ptr<StreamSlots> streams;  // caps PublishStream, Subscribe and Replay
  std::unique_ptr<EventGatewayServiceImpl> events;
  std::unique_ptr<DataRefreshServiceImpl> refresh;
  std::unique_ptr<Approvals> approvals;
  std::unique_ptr<ApprovalServiceImpl> approval_service;
  std::unique_ptr<EventLog> event_log;
  std::unique_ptr<SavedViews> saved_views;
  std::unique_ptr<EventHealth> health;
  std::unique_ptr<EventQueryServiceImpl> query_service;
  std::unique_ptr<QualityServiceImpl> quality_service;
  std::unique_ptr<TriggerServiceImpl> trigger_service;
  std::atomic<bool> stopping{false};
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::unique_ptr<HttpApi> http;  // with --http-listen
  std::once_flag shutdown_once;

  // Reloading: Reload and the poller take turns under reload_mu.
  absl::Status ReloadTokens(bool force);
  absl::Status ReloadTls(bool force);
  void PollFiles();
  std::mutex reload_mu;
  std::string tokens_seen;  // digest (or read error) of the token file last acted on
  std::string tls_refused;  // the last refusal of the TLS files, logged once while it lasts
  std::mutex poll_mu;
  std::condition_variable poll_cv;
  bool poll_stop = false;  // guarded by poll_mu
  std::thread poller;      // joined by Shutdown
};

absl::Status Gateway::Impl::ReloadTokens(bool force) {
  if (tokens.path().empty()) return absl::OkStatus();  // made by Parse: no file to read
  auto text = common::ReadFile(tokens.path());
  std::string seen = text.ok() ? common::Sha256Hex(*text) : std::string(text.status().message());
  if (!force && seen == tokens_seen) return absl::OkStatus();
  tokens_seen = std::move(seen);
  absl::Status s = text.ok() ? tokens.ReloadFrom(*text) : text.status();
  if (s.ok()) {
    spdlog::info("gateway: tokens reloaded ({} principals)", tokens.size());
  } else {
    spdlog::error("gateway: tokens: new file refused: {}; keeping the {} principals in force", s.message(),
                  tokens.size());
  }
  return s;
}

absl::Status Gateway::Impl::ReloadTls(bool force) {
  if (tls == nullptr) return absl::OkStatus();
  auto changed = tls->Reload(force);
  if (!changed.ok()) {
    std::string why(changed.status().message());
    if (force || why != tls_refused)
      spdlog::error("gateway: tls: new files refused: {}; keeping the certificates in force", why);
    tls_refused = std::move(why);
    return changed.status();
  }
  tls_refused.clear();
  if (*changed) spdlog::info("gateway: tls: new certificates in force for new connections");
  return absl::OkStatus();
}

void Gateway::Impl::PollFiles() {
  std::unique_lock lock(poll_mu);
  while (!poll_cv.wait_for(lock, absl::ToChronoNanoseconds(config.reload_interval), [&] { return poll_stop; })) {
    lock.unlock();
    {
      std::lock_guard reload(reload_mu);
      (void)ReloadTokens(false);  // refusals are logged there
      (void)ReloadTls(false);
    }
    lock.lock();
  }
}

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

kafka::ProducerConfig GatewayProducerConfig(const GatewayConfig& config) {
  std::map<std::string, std::string> settings = config.kafka_client;
  for (const auto& [k, v] : config.librdkafka) settings[k] = v;
  return {.bootstrap_servers = config.bootstrap_servers,
          .client_id = "sluice-gateway",
          .delivery_timeout = config.delivery_timeout,
          .linger = absl::Milliseconds(1),
          .librdkafka = std::move(settings),
          .on_auth_failure = config.on_kafka_auth_failure};
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(GatewayConfig config, TokenStore tokens, RateLimiter limits,
                                                        const contracts::Catalog& catalog,
                                                        prometheus::Registry& registry) {
  auto tls = Tls(config);
  if (!tls.ok()) return tls.status();
  std::shared_ptr<grpc::ServerCredentials> creds =
      *tls != nullptr ? (*tls)->credentials() : grpc::InsecureServerCredentials();
  if (config.max_batch_events == 0) return absl::InvalidArgumentError("max_batch_events must be at least 1");
  if (config.max_streams == 0 || config.max_streams_per_principal == 0)
    return absl::InvalidArgumentError("max_streams and max_streams_per_principal must be at least 1");
  if (config.max_rpc_threads <= static_cast<int>(std::min<size_t>(config.max_streams, 1 << 20)))
    return absl::InvalidArgumentError(common::Cat("max_rpc_threads (", config.max_rpc_threads,
                                                  ") must exceed max_streams (", config.max_streams,
                                                  "): each open stream holds a gRPC thread"));
  auto producer = kafka::Producer::Create(GatewayProducerConfig(config), catalog);
  if (!producer.ok()) return producer.status();
  auto impl = std::make_unique<Impl>(config, std::move(tokens), std::move(limits), (*producer)->catalog());
  impl->producer = *std::move(producer);
  impl->tls = *std::move(tls);
  impl->dedup = std::make_unique<DedupWindow>(config.dedup_window, config.dedup_capacity);
  impl->metrics = std::make_unique<PublisherMetrics>(registry);
  if (!config.pg_dsn.empty())
    impl->pg = std::make_unique<PgPool>(config.pg_dsn, config.pg_schema,
                                        common::PgPoolOptions{.max_connections = config.pg_max_connections,
                                                              .acquire_timeout = config.pg_acquire_timeout,
                                                              .statement_timeout = config.pg_statement_timeout});
  impl->admission = &impl->limits;
  if (impl->pg != nullptr && impl->limits.HasLimits()) {
    // Replicas behind one Service each see a share of a source's events: counted in
    // PostgreSQL, the limit is the cluster's, not `limit` per replica.
    impl->shared_limits = std::make_unique<SharedRateLimiter>(std::move(impl->limits), *impl->pg, registry);
    impl->admission = impl->shared_limits.get();
    spdlog::info("gateway: rate limits counted for all replicas in PostgreSQL (gateway_rate_window)");
  }
  impl->publisher = std::make_unique<Publisher>(*impl->producer, impl->authz, *impl->admission, *impl->dedup,
                                                *impl->metrics, &impl->activity);
  impl->streams = std::make_unique<StreamSlots>(config.max_streams_per_principal, config.max_streams);
  impl->events = std::make_unique<EventGatewayServiceImpl>(
      impl->tokens, *impl->publisher, config.max_in_flight_per_stream, *impl->streams, config.max_batch_events);
  impl->refresh = std::make_unique<DataRefreshServiceImpl>(impl->tokens, *impl->publisher);
  if (impl->pg != nullptr) {
    impl->approvals = std::make_unique<Approvals>(*impl->pg, impl->catalog, impl->authz);
    impl->approval_service = std::make_unique<ApprovalServiceImpl>(impl->tokens, *impl->approvals, registry);
    impl->event_log = std::make_unique<EventLog>(*impl->pg, impl->catalog, impl->authz);
    impl->saved_views = std::make_unique<SavedViews>(*impl->pg, impl->catalog, impl->authz);
  }
  std::vector<std::string> topics;
  for (const auto& t : impl->catalog.topics()) topics.push_back(t.name());
  std::string event_log_group = config.event_log_group;
  if (!event_log_group.empty() && std::find(config.health_groups.begin(), config.health_groups.end(),
                                            event_log_group) == config.health_groups.end()) {
    // Measuring another group would need its own Kafka ACL (Describe): not silently.
    spdlog::warn("gateway: --event-log-group {} is not a --health-group: ListEvents gives no notice", event_log_group);
    event_log_group.clear();
  }
  impl->health = std::make_unique<EventHealth>(EventHealthConfig{.bootstrap_servers = config.bootstrap_servers,
                                                                 .groups = config.health_groups,
                                                                 .topics = topics,
                                                                 .metrics_interval = config.health_interval,
                                                                 .librdkafka = config.kafka_client,
                                                                 .replica = config.replica_name},
                                               impl->activity, *impl->admission, registry, impl->pg.get());
  impl->query_service = std::make_unique<EventQueryServiceImpl>(EventQueryServiceImpl::Deps{
      .tokens = impl->tokens,
      .catalog = impl->catalog,
      .authz = impl->authz,
      .bootstrap_servers = config.bootstrap_servers,
      .kafka_client = config.kafka_client,
      .log = impl->event_log.get(),
      .views = impl->saved_views.get(),
      .producer = *impl->producer,
      .health = *impl->health,
      .event_log_group = event_log_group,
      // at most one measurement per period
      // however often callers ask
      .notice_max_age = config.health_interval > absl::ZeroDuration() ? config.health_interval : absl::Seconds(15),
      .stopping = impl->stopping,
      .streams = impl->streams.get()});
  impl->quality_service = std::make_unique<QualityServiceImpl>(impl->tokens, impl->authz, impl->pg.get());
  impl->trigger_service = std::make_unique<TriggerServiceImpl>(
      impl->tokens, impl->authz, impl->pg.get(),
      TriggerServiceImpl::Options{.allow_http_loopback = config.trigger_allow_http_loopback});

  grpc::EnableDefaultHealthCheckService(true);
  // Reflection lists grpc.health.v1.Health; naming a message of its descriptor links
  // health.pb.o in, so reflection can also resolve it (grpcurl needs both).
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, creds, &impl->port);
  builder.SetMaxReceiveMessageSize(config.max_message_bytes);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<MalformedRequestInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  // gRPC's synchronous server starts a thread per call being served and, without a
  // quota, has no upper bound on them: the quota caps them (past it a call is answered
  // RESOURCE_EXHAUSTED instead). The callback-API Publish does not use these threads.
  grpc::ResourceQuota quota("sluice-gateway");
  quota.SetMaxThreads(std::max(config.max_rpc_threads, 4));
  builder.SetResourceQuota(quota);
  builder.RegisterService(impl->events.get());
  builder.RegisterService(impl->refresh.get());
  builder.RegisterService(impl->query_service.get());
  builder.RegisterService(impl->quality_service.get());
  builder.RegisterService(impl->trigger_service.get());
  if (impl->approval_service) builder.RegisterService(impl->approval_service.get());
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0)
    return absl::UnavailableError(common::Cat("gateway: cannot listen on ", config.listen));
  // Each service by name as well as the server as a whole (""), so a probe can ask for the
  // one it needs; Shutdown sets them all NOT_SERVING at once.
  std::vector<std::string> served = {
      sluice::v1::EventGateway::service_full_name(), sluice::v1::DataRefreshService::service_full_name(),
      sluice::v1::EventQueryService::service_full_name(), sluice::v1::QualityService::service_full_name(),
      sluice::v1::TriggerService::service_full_name()};
  if (impl->approval_service) served.emplace_back(sluice::v1::ApprovalService::service_full_name());
  for (const auto& name : served) impl->server->GetHealthCheckService()->SetServingStatus(name, true);
  impl->server->GetHealthCheckService()->SetServingStatus(true);
  if (!config.http_listen.empty()) {
    auto http = HttpApi::Start({.listen = config.http_listen, .threads = config.http_threads}, *impl->query_service,
                               impl->quality_service.get(), impl->stopping);
    if (!http.ok()) {
      impl->stopping.store(true);
      impl->server->Shutdown();
      return http.status();
    }
    impl->http = *std::move(http);
  }
  spdlog::info("gateway: serving on port {} ({} principals)", impl->port, impl->tokens.size());
  if (!impl->tokens.path().empty()) {
    // What the poller compares against; a change since the store read the file is
    // picked up at the first poll.
    auto text = common::ReadFile(impl->tokens.path());
    impl->tokens_seen = text.ok() ? common::Sha256Hex(*text) : std::string(text.status().message());
  }
  if (config.reload_interval > absl::ZeroDuration() && (!impl->tokens.path().empty() || impl->tls != nullptr))
    impl->poller = std::thread([i = impl.get()] { i->PollFiles(); });
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Gateway::~Gateway() { Shutdown(absl::Seconds(5)); }

int Gateway::port() const { return impl_->port; }

int Gateway::http_port() const { return impl_->http ? impl_->http->port() : 0; }

void Gateway::Shutdown(absl::Duration grace) {
  std::call_once(impl_->shutdown_once, [&] {
    spdlog::info("gateway: shutting down (grace {})", absl::FormatDuration(grace));
    impl_->server->GetHealthCheckService()->SetServingStatus(false);
    impl_->stopping.store(true);  // live streams (Subscribe, Replay) end now, not at the deadline
    // The HTTP API stops beside gRPC's grace, not before it: its requests are short (one
    // per connection, 5 s timeouts) and its live feeds end with `stopping`.
    std::thread http_stop([h = impl_->http.get()] {
      if (h != nullptr) h->Stop();
    });
    impl_->server->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
    http_stop.join();
    if (auto s = impl_->producer->Flush(impl_->config.delivery_timeout); !s.ok())
      spdlog::warn("gateway: {}", s.message());
    {
      std::lock_guard lock(impl_->poll_mu);
      impl_->poll_stop = true;
    }
    impl_->poll_cv.notify_all();
    if (impl_->poller.joinable()) impl_->poller.join();
  });
}

void Gateway::Wait() { impl_->server->Wait(); }

absl::Status Gateway::Reload() {
  std::lock_guard lock(impl_->reload_mu);
  absl::Status tokens = impl_->ReloadTokens(true);
  absl::Status tls = impl_->ReloadTls(true);
  return tokens.ok() ? tls : tokens;
}

}  // namespace sluice::gateway
