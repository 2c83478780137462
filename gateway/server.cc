#include "gateway/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "common/strings.h"
#include "contracts/validate.h"
#include "contracts/vectors.h"
#include "gateway/approvals.h"
#include "gateway/dedup.h"
#include "gateway/event_query.h"
#include "gateway/grpc_status.h"
#include "gateway/malformed_request.h"
#include "gateway/publisher.h"
#include "gateway/stream_slots.h"
#include "sluice/v1/gateway.grpc.pb.h"

namespace sluice::gateway {
namespace {

std::string_view Meta(const grpc::ServerContextBase& ctx, std::string_view key) {
  auto [b, e] = ctx.client_metadata().equal_range(grpc::string_ref(key.data(), key.size()));
  if (b == e) return {};
  return {b->second.data(), b->second.size()};
}

WorkflowContext ContextOf(const grpc::ServerContextBase& ctx) {
  WorkflowContext w;
  w.traceparent = std::string(Meta(ctx, "traceparent"));
  constexpr std::string_view kPrefix = "sluice-workflow-";
  for (const auto& [k, v] : ctx.client_metadata()) {
    std::string_view key(k.data(), k.size());
    if (key.substr(0, kPrefix.size()) != kPrefix || key.ends_with("-bin")) continue;
    std::string name(key.substr(kPrefix.size()));
    for (char& c : name)
      if (c == '-') c = '_';
    w.workflow[name] = std::string(v.data(), v.size());
  }
  return w;
}

// A per-event error message for PublishStream, at most 1 KiB: some echo the caller's
// input ("unknown event type \"<type>\""), and acks waiting for a slow client are held
// in memory. Cut at a UTF-8 character boundary (a proto3 string must stay valid UTF-8).
std::string ShortMessage(absl::string_view m) {
  constexpr size_t kMax = 1024;
  if (m.size() <= kMax) return std::string(m);
  size_t n = kMax;
  while (n > 0 && (static_cast<unsigned char>(m[n]) & 0xC0) == 0x80) --n;
  return common::Cat(m.substr(0, n), "...");
}

absl::StatusOr<v1::Delivery> Wait(Publisher& publisher, const v1::Principal& who, v1::Envelope env,
                                  const WorkflowContext& ctx) {
  std::promise<absl::StatusOr<v1::Delivery>> p;
  auto f = p.get_future();
  publisher.Publish(who, std::move(env), ctx, [&p](absl::StatusOr<v1::Delivery> r) { p.set_value(std::move(r)); });
  return f.get();
}

// Publish uses gRPC's callback API: no thread waits for the broker; the call finishes
// from the delivery callback. PublishStream stays on the synchronous API.
class EventGatewayService final : public v1::EventGateway::WithCallbackMethod_Publish<v1::EventGateway::Service> {
 public:
  EventGatewayService(const TokenStore& tokens, Publisher& publisher, size_t max_in_flight, StreamSlots& slots)
      : tokens_(tokens), publisher_(publisher), max_in_flight_(std::max<size_t>(1, max_in_flight)), slots_(slots) {}

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* ctx, const v1::PublishRequest* req,
                                    v1::PublishResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto who = tokens_.Authenticate(*ctx);
    if (!who.ok()) {
      reactor->Finish(ToGrpcStatus(who.status()));
      return reactor;
    }
    publisher_.Publish(**who, req->envelope(), ContextOf(*ctx), [reactor, resp](absl::StatusOr<v1::Delivery> d) {
      if (!d.ok()) return reactor->Finish(ToGrpcStatus(d.status()));
      *resp->mutable_delivery() = *std::move(d);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  // One thread reads (this one), one writes acknowledgements as they complete. Reading
  // pauses while max_in_flight events are unanswered, counting both those waiting for the
  // broker and those whose acknowledgement is not yet written: a client that never reads
  // its acks (so Write blocks) stops the reading too, and gRPC's flow control then
  // pushes back on it. A stream so holds at most max_in_flight events and acks.
  grpc::Status PublishStream(grpc::ServerContext* ctx,
                             grpc::ServerReaderWriter<v1::PublishStreamResponse, v1::PublishStreamRequest>* stream) override {
    auto who = tokens_.Authenticate(*ctx);
    if (!who.ok()) return ToGrpcStatus(who.status());
    auto slot = slots_.Acquire((*who)->name());
    if (!slot.ok()) return ToGrpcStatus(slot.status());
    const WorkflowContext wctx = ContextOf(*ctx);

    struct Shared {
      std::mutex mu;
      std::condition_variable cv;
      std::deque<v1::PublishStreamResponse> ready;
      size_t unanswered = 0;  // read, and the ack not yet written (or dropped: client gone)
      bool reading_done = false;
      bool write_failed = false;
    };
    auto sh = std::make_shared<Shared>();
    std::thread writer([sh, stream] {
      std::unique_lock lock(sh->mu);
      for (;;) {
        sh->cv.wait(lock, [&] { return !sh->ready.empty() || (sh->reading_done && sh->unanswered == 0); });
        if (sh->ready.empty()) return;  // all answered
        v1::PublishStreamResponse r = std::move(sh->ready.front());
        sh->ready.pop_front();
        const bool write = !sh->write_failed;
        lock.unlock();
        // No buffer_hint: a synchronous Write with it does not complete until a later
        // write flushes it, and this loop waits for each Write before the next.
        const bool ok = write && stream->Write(r);
        lock.lock();
        if (!ok) sh->write_failed = true;  // client gone; keep draining completions
        --sh->unanswered;
        sh->cv.notify_all();
      }
    });

    v1::PublishStreamRequest req;
    for (;;) {
      {
        // Waits before reading, so nothing more is taken from the client while full.
        std::unique_lock lock(sh->mu);
        while (sh->unanswered >= max_in_flight_ && !sh->write_failed && !ctx->IsCancelled())
          sh->cv.wait_for(lock, std::chrono::milliseconds(200));  // also notices cancellation
        if (sh->write_failed || ctx->IsCancelled()) break;
      }
      if (!stream->Read(&req)) break;
      {
        std::lock_guard lock(sh->mu);
        ++sh->unanswered;
      }
      const uint64_t seq = req.sequence();
      publisher_.Publish(**who, std::move(*req.mutable_envelope()), wctx,
                         [sh, seq](absl::StatusOr<v1::Delivery> r) {
                           v1::PublishStreamResponse resp;
                           resp.set_sequence(seq);
                           if (r.ok()) {
                             *resp.mutable_ack() = *std::move(r);
                           } else {
                             auto* e = resp.mutable_error();
                             e->set_code(static_cast<int>(r.status().code()));
                             e->set_message(ShortMessage(r.status().message()));
                             if (auto f = contracts::FieldPathOf(r.status())) e->set_field(*f);
                           }
                           std::lock_guard lock(sh->mu);
                           sh->ready.push_back(std::move(resp));
                           sh->cv.notify_all();
                         });
    }
    {
      std::lock_guard lock(sh->mu);
      sh->reading_done = true;
      sh->cv.notify_all();
    }
    writer.join();
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled by the client");
    return grpc::Status::OK;
  }

 private:
  const TokenStore& tokens_;
  Publisher& publisher_;
  const size_t max_in_flight_;
  StreamSlots& slots_;
};

// Request field names for errors in the data.refreshed payload it builds.
std::string RequestField(std::string_view path) {
  if (path == "data_refreshed.service") return "schema";
  for (std::string_view prefix : {"data_refreshed.service.", "data_refreshed."})
    if (path.substr(0, prefix.size()) == prefix) return std::string(path.substr(prefix.size()));
  return std::string(path);
}

class DataRefreshServiceImpl final : public v1::DataRefreshService::Service {
 public:
  DataRefreshServiceImpl(const TokenStore& tokens, Publisher& publisher) : tokens_(tokens), publisher_(publisher) {}

  grpc::Status NotifyDataRefreshed(grpc::ServerContext* ctx, const v1::NotifyDataRefreshedRequest* req,
                                   v1::NotifyDataRefreshedResponse* resp) override {
    auto who = tokens_.Authenticate(*ctx);
    if (!who.ok()) return ToGrpcStatus(who.status());
    v1::Envelope e;
    e.set_id(req->event_id());
    e.set_tenant_id(req->tenant_id());
    e.set_source(req->source().empty() ? "etl.pipeline" : req->source());
    e.set_correlation_id(req->correlation_id());
    auto* p = e.mutable_data_refreshed();
    p->set_entity_urn(req->entity_urn());
    if (!req->schema().empty() || !req->table().empty()) {
      p->mutable_service()->set_schema(req->schema());
      p->mutable_service()->set_table(req->table());
    }
    p->set_rows_affected(req->rows_affected());
    p->set_refresh_type(req->refresh_type());
    if (req->has_completed_at()) {
      *p->mutable_completed_at() = req->completed_at();
    } else {
      const absl::Time now = absl::Now();
      p->mutable_completed_at()->set_seconds(absl::ToUnixSeconds(now));
    }
    if (req->has_triggered_by()) *p->mutable_triggered_by() = req->triggered_by();
    if (req->rows_affected() < 0)
      return ToGrpcStatus(absl::InvalidArgumentError("rows_affected: must not be negative"));
    auto d = Wait(publisher_, **who, std::move(e), ContextOf(*ctx));
    if (!d.ok()) {
      auto field = contracts::FieldPathOf(d.status());
      if (!field) return ToGrpcStatus(d.status());
      // Name the request's own field rather than the event's.
      std::string f = RequestField(*field);
      std::string msg(d.status().message());
      if (msg.rfind(*field, 0) == 0) msg = f + msg.substr(field->size());
      return ToGrpcStatus(contracts::WithFieldPath(absl::InvalidArgumentError(msg), f));
    }
    *resp->mutable_delivery() = *std::move(d);
    return grpc::Status::OK;
  }

 private:
  const TokenStore& tokens_;
  Publisher& publisher_;
};

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const GatewayConfig& c) {
  if (c.tls_cert.empty() && c.tls_key.empty()) {
    if (!c.tls_client_ca.empty()) return absl::InvalidArgumentError("tls_client_ca needs tls_cert and tls_key");
    return grpc::InsecureServerCredentials();
  }
  if (c.tls_cert.empty() || c.tls_key.empty()) return absl::InvalidArgumentError("tls_cert and tls_key go together");
  auto cert = contracts::ReadFile(c.tls_cert);
  if (!cert.ok()) return cert.status();
  auto key = contracts::ReadFile(c.tls_key);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions opts;
  opts.pem_key_cert_pairs.push_back({*key, *cert});
  if (!c.tls_client_ca.empty()) {
    auto ca = contracts::ReadFile(c.tls_client_ca);
    if (!ca.ok()) return ca.status();
    opts.pem_root_certs = *ca;
    opts.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(opts);
}

}  // namespace

struct Gateway::Impl {
  Impl(GatewayConfig c, TokenStore t, RateLimiter l, const contracts::Catalog& cat)
      : config(std::move(c)), tokens(std::move(t)), limits(std::move(l)), catalog(cat), authz(catalog, config.approval_policy) {}
  // Declaration order is destruction order reversed, and it matters: the server goes
  // first (no new calls), then the services, then the producer, whose destructor still
  // runs delivery callbacks into the publisher, dedup window, metrics and activity; so
  // those are declared before it and outlive it.
  GatewayConfig config;
  TokenStore tokens;
  RateLimiter limits;
  const contracts::Catalog catalog;  // with the topic prefix; what everything routes by
  const contracts::Authorizer authz;
  SourceActivity activity;
  std::unique_ptr<DedupWindow> dedup;
  std::unique_ptr<PublisherMetrics> metrics;
  std::unique_ptr<Publisher> publisher;
  std::unique_ptr<kafka::Producer> producer;
  std::unique_ptr<StreamSlots> streams;  // caps PublishStream, Subscribe and Replay
  std::unique_ptr<EventGatewayService> events;
  std::unique_ptr<DataRefreshServiceImpl> refresh;
  std::unique_ptr<PgPool> pg;
  std::unique_ptr<Approvals> approvals;
  std::unique_ptr<ApprovalServiceImpl> approval_service;
  std::unique_ptr<EventLog> event_log;
  std::unique_ptr<EventHealth> health;
  std::unique_ptr<EventQueryServiceImpl> query_service;
  std::atomic<bool> stopping{false};
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::once_flag shutdown_once;
};

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(GatewayConfig config, TokenStore tokens, RateLimiter limits,
                                                        const contracts::Catalog& catalog,
                                                        prometheus::Registry& registry) {
  auto creds = Credentials(config);
  if (!creds.ok()) return creds.status();
  if (config.max_streams == 0 || config.max_streams_per_principal == 0)
    return absl::InvalidArgumentError("max_streams and max_streams_per_principal must be at least 1");
  if (config.max_rpc_threads <= static_cast<int>(std::min<size_t>(config.max_streams, 1 << 20)))
    return absl::InvalidArgumentError(common::Cat("max_rpc_threads (", config.max_rpc_threads,
                                                  ") must exceed max_streams (", config.max_streams,
                                                  "): each open stream holds a gRPC thread"));
  auto producer = kafka::Producer::Create({.bootstrap_servers = config.bootstrap_servers,
                                              .client_id = "sluice-gateway",
                                              .delivery_timeout = config.delivery_timeout,
                                              .linger = absl::Milliseconds(1),
                                              .librdkafka = config.librdkafka},
                                             catalog);
  if (!producer.ok()) return producer.status();
  auto impl = std::make_unique<Impl>(config, std::move(tokens), std::move(limits), (*producer)->catalog());
  impl->producer = *std::move(producer);
  impl->dedup = std::make_unique<DedupWindow>(config.dedup_window, config.dedup_capacity);
  impl->metrics = std::make_unique<PublisherMetrics>(registry);
  impl->publisher =
      std::make_unique<Publisher>(*impl->producer, impl->authz, impl->limits, *impl->dedup, *impl->metrics,
                                  &impl->activity);
  impl->streams = std::make_unique<StreamSlots>(config.max_streams_per_principal, config.max_streams);
  impl->events = std::make_unique<EventGatewayService>(impl->tokens, *impl->publisher, config.max_in_flight_per_stream,
                                                       *impl->streams);
  impl->refresh = std::make_unique<DataRefreshServiceImpl>(impl->tokens, *impl->publisher);
  if (!config.pg_dsn.empty()) {
    impl->pg = std::make_unique<PgPool>(config.pg_dsn, config.pg_schema,
                                        common::PgPoolOptions{.max_connections = config.pg_max_connections,
                                                              .acquire_timeout = config.pg_acquire_timeout,
                                                              .statement_timeout = config.pg_statement_timeout});
    impl->approvals = std::make_unique<Approvals>(*impl->pg, impl->catalog, impl->authz);
    impl->approval_service = std::make_unique<ApprovalServiceImpl>(impl->tokens, *impl->approvals);
    impl->event_log = std::make_unique<EventLog>(*impl->pg, impl->catalog, impl->authz);
  }
  std::vector<std::string> topics;
  for (const auto& t : impl->catalog.topics()) topics.push_back(t.name());
  impl->health = std::make_unique<EventHealth>(EventHealthConfig{.bootstrap_servers = config.bootstrap_servers,
                                                                 .groups = config.health_groups,
                                                                 .topics = topics,
                                                                 .metrics_interval = config.health_interval},
                                               impl->activity, impl->limits, registry, impl->pg.get());
  impl->query_service = std::make_unique<EventQueryServiceImpl>(EventQueryServiceImpl::Deps{
      .tokens = impl->tokens,
      .catalog = impl->catalog,
      .authz = impl->authz,
      .bootstrap_servers = config.bootstrap_servers,
      .log = impl->event_log.get(),
      .producer = *impl->producer,
      .health = *impl->health,
      .stopping = impl->stopping,
      .streams = impl->streams.get()});

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, *creds, &impl->port);
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
  if (impl->approval_service) builder.RegisterService(impl->approval_service.get());
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0)
    return absl::UnavailableError(common::Cat("gateway: cannot listen on ", config.listen));
  impl->server->GetHealthCheckService()->SetServingStatus(true);
  spdlog::info("gateway: serving on port {} ({} principals)", impl->port, impl->tokens.size());
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Gateway::~Gateway() { Shutdown(absl::Seconds(5)); }

int Gateway::port() const { return impl_->port; }

void Gateway::Shutdown(absl::Duration grace) {
  std::call_once(impl_->shutdown_once, [&] {
    spdlog::info("gateway: shutting down (grace {})", absl::FormatDuration(grace));
    impl_->server->GetHealthCheckService()->SetServingStatus(false);
    impl_->stopping.store(true);  // live streams (Subscribe, Replay) end now, not at the deadline
    impl_->server->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
    if (auto s = impl_->producer->Flush(impl_->config.delivery_timeout); !s.ok())
      spdlog::warn("gateway: {}", s.message());
  });
}

void Gateway::Wait() { impl_->server->Wait(); }

}  // namespace sluice::gateway
