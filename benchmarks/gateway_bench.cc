// gateway_bench: sluice-gateway against a plain librdkafka producer and Kafka's own Java
// producer, same broker, same record size, same acks (all, idempotent), in one run.
//
//   throughput: N records through (a) raw librdkafka, (b) Kafka's Java producer
//               (org.apache.kafka.tools.ProducerPerformance, a subprocess), (c) PublishStream
//               over S streams, one event per message, (d) PublishBatch from S callers, and
//               (e) PublishStream over S streams with B envelopes per message; prints
//               records/s and the ratios to (a) and (b) (batched target: >= 1.0x the Java
//               producer, stretch >= 0.5x raw librdkafka; (b), (d) and (e) are run
//               --rounds times, alternating, and the target judged on the median round's
//               ratio). Diagnostics beside them: (a) with
//               the gateway's CloudEvents headers on each record, (b) with values as
//               large as the gateway's whole records (value, key and headers), and the
//               gateway's own kafka::Producer alone (Send from S threads: defaults,
//               validation, headers, encoding; no gRPC, authorization, dedup or metrics),
//               and (g) the floor of any gateway: the same PublishBatch calls answered by
//               a gRPC handler that only serializes, adds the headers and produces, and
//               (h) the same with each envelope's defaults and contract validation (both
//               run in every round beside the target's two sides).
//   latency:    unary Publish sent open-loop at R events/s for D seconds; prints
//               p50/p99/p99.9 next to raw librdkafka's produce->ack latency at the same
//               rate, over consecutive runs (target: gateway p99 <= 3x raw librdkafka's
//               in at least 9 of 10).
//
// Needs the local stack (bash dev/stack.sh up) and, for (b), java and the Kafka jars
// (dev/install-deps.sh). Creates and deletes its own topics.
#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "benchmarks/cpu_meter.h"
#include "benchmarks/raw_producer.h"
#include "common/env.h"
#include "common/log.h"
#include "common/strings.h"
#include "contracts/cloudevents.h"
#include "contracts/envelope.h"
#include "contracts/validate.h"
#include "contracts/vectors.h"
#include "gateway/server.h"
#include "kafka/producer.h"
#include "kafka/topic_admin.h"
#include "kafka/util.h"
#include "sluice/v1/gateway.grpc.pb.h"

namespace sluice::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kToken[] = "bench-token";

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Percentiles {
  double p50, p99, p999, max, min;
};
Percentiles Summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms.empty() ? 0 : ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))]; };
  return {at(0.50), at(0.99), at(0.999), ms.empty() ? 0 : ms.back(), ms.empty() ? 0 : ms.front()};
}

// ---- raw librdkafka ----------------------------------------------------------------
struct RawProducer {
  kafka::KafkaHandle rk;
  std::atomic<int64_t> delivered{0}, failed{0};
  std::vector<double>* latencies = nullptr;  // ms, when measuring latency
  std::mutex mu;

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<RawProducer*>(opaque);
    if (m->err) {
      self->failed++;
    } else {
      self->delivered++;
    }
    if (self->latencies != nullptr && m->_private != nullptr) {
      auto* sent = static_cast<Clock::time_point*>(m->_private);
      std::lock_guard lock(self->mu);
      self->latencies->push_back(std::chrono::duration<double, std::milli>(Clock::now() - *sent).count());
      delete sent;
    }
  }
  explicit RawProducer(const std::string& bootstrap) {
    auto conf = kafka::MakeConf(bench::GatewayProducerSettings(bootstrap));
    rd_kafka_conf_set_dr_msg_cb(conf->get(), &OnDelivery);
    rd_kafka_conf_set_opaque(conf->get(), this);
    char err[512];
    rk.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf->release(), err, sizeof(err)));
  }
  // With `headers`, the record carries them (as the gateway's records carry CloudEvents
  // headers), built per record as the gateway builds them. False (counted in `failed`) when
  // librdkafka refused the record; `opaque` is then the caller's again.
  bool Produce(const std::string& topic, const std::string& key, const std::string& value, void* opaque,
               const contracts::Headers* headers = nullptr) {
    rd_kafka_headers_t* hdrs = nullptr;
    if (headers != nullptr) {
      hdrs = rd_kafka_headers_new(headers->size());
      for (const auto& h : *headers)
        rd_kafka_header_add(hdrs, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                            static_cast<ssize_t>(h.value.size()));
    }
    rd_kafka_resp_err_t err;
    while (
        (err =
             hdrs != nullptr
                 ? rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                                     RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                                     RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END)
                 : rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                                     RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque),
                                     RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(rk.get(), 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (hdrs != nullptr) rd_kafka_headers_destroy(hdrs);  // not taken on failure
      failed++;
    }
    rd_kafka_poll(rk.get(), 0);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR;
  }
};

// `with_headers`: each record also carries the event's CloudEvents headers (computed before
// the clock starts, attached per record while it runs).
double RawThroughput(const std::string& bootstrap, const std::string& topic, const std::vector<v1::Envelope>& events,
                     bool with_headers = false) {
  RawProducer p(bootstrap);
  std::vector<std::string> values;
  values.reserve(events.size());
  for (const auto& e : events) values.push_back(contracts::SerializeDeterministic(e));
  std::vector<contracts::Headers> headers;
  if (with_headers) {
    headers.reserve(events.size());
    for (const auto& e : events) headers.push_back(contracts::ToKafkaHeaders(e));
  }
  auto headers_of = [&](size_t i) { return with_headers ? &headers[i] : nullptr; };
  // Connected, with a producer id, before the clock starts (the gateway's producer is too).
  p.Produce(topic, events[0].tenant_id(), values[0], nullptr, headers_of(0));
  rd_kafka_flush(p.rk.get(), 30000);
  p.delivered = 0;
  const auto start = Clock::now();
  for (size_t i = 0; i < events.size(); ++i) p.Produce(topic, events[i].tenant_id(), values[i], nullptr, headers_of(i));
  rd_kafka_flush(p.rk.get(), 120000);
  const double secs = Seconds(Clock::now() - start);
  if (p.failed.load() > 0)
    std::fprintf(stderr, "raw: %lld records failed (refused or not delivered)\n",
                 static_cast<long long>(p.failed.load()));
  return static_cast<double>(p.delivered.load()) / secs;
}

// Diagnostic: the gateway's own producer path without the gateway around it. `threads`
// callers each send their share of `events` through one kafka::Producer made as the
// gateway makes its own (same client settings, linger 1 ms, delivery timeout), so each
// event is still given defaults, validated, given its CloudEvents headers and serialized
// (Producer::Send); no gRPC, authentication, dedup or metrics. The envelopes are copied
// before the clock starts, as gRPC would have parsed them.
double ProducerThroughput(const gateway::GatewayConfig& config, const contracts::Catalog& catalog,
                          const std::vector<v1::Envelope>& events, int threads) {
  // Before the producer: its destructor may still run callbacks that count.
  std::atomic<int64_t> delivered{0}, failed{0};
  kafka::ProducerConfig producer_config = gateway::GatewayProducerConfig(config);
  producer_config.client_id = "bench-producer";
  auto producer = kafka::Producer::Create(std::move(producer_config), catalog);
  if (!producer.ok()) {
    std::fprintf(stderr, "producer: %s\n", std::string(producer.status().message()).c_str());
    return 0;
  }
  auto count = [&](absl::StatusOr<kafka::DeliveryReport> r) { (r.ok() ? delivered : failed)++; };
  if (auto r = (*producer)->SendSync(events[0]); !r.ok())  // connected, with a producer id
    std::fprintf(stderr, "producer: %s\n", std::string(r.status().message()).c_str());
  std::vector<std::vector<v1::Envelope>> shares(static_cast<size_t>(threads));
  for (size_t i = 0; i < events.size(); ++i) shares[i % shares.size()].push_back(events[i]);
  const auto start = Clock::now();
  std::vector<std::thread> senders;
  for (auto& share : shares)
    senders.emplace_back([&] {
      for (auto& e : share) (*producer)->Send(std::move(e), count);
    });
  for (auto& t : senders) t.join();
  (void)(*producer)->Flush(absl::Minutes(2));
  const double secs = Seconds(Clock::now() - start);
  if (failed.load() > 0) std::fprintf(stderr, "producer: %lld records failed\n", static_cast<long long>(failed.load()));
  return static_cast<double>(delivered.load()) / secs;
}

Percentiles RawLatency(const std::string& bootstrap, const std::string& topic, const v1::Envelope& tmpl, int rate,
                       int seconds) {
  RawProducer p(bootstrap);
  std::vector<double> lat;
  p.latencies = &lat;
  const std::string value = contracts::SerializeDeterministic(tmpl);
  const int n = rate * seconds;
  const auto interval = std::chrono::nanoseconds(1'000'000'000LL / rate);
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    std::this_thread::sleep_until(start + i * interval);
    auto* sent = new Clock::time_point(Clock::now());
    if (!p.Produce(topic, tmpl.tenant_id(), value, sent)) delete sent;
  }
  rd_kafka_flush(p.rk.get(), 60000);
  std::lock_guard lock(p.mu);
  return Summarize(lat);
}

// ---- gateway ---------------------------------------------------------------------
double StreamThroughput(const std::string& target, const std::vector<v1::Envelope>& events, int streams) {
  auto channel_for = [&](int i) {
    grpc::ChannelArguments args;
    args.SetInt("sluice.bench.channel", i);  // separate connections per stream
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  };
  std::atomic<int64_t> acked{0}, errors{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      auto stub = v1::EventGateway::NewStub(channel_for(s));
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", common::Cat("Bearer ", kToken));
      auto stream = stub->PublishStream(&ctx);
      std::thread reader([&] {
        v1::PublishStreamResponse r;
        while (stream->Read(&r)) (r.has_ack() ? acked : errors)++;
      });
      v1::PublishStreamRequest req;
      for (size_t i = static_cast<size_t>(s); i < events.size(); i += static_cast<size_t>(streams)) {
        req.set_sequence(i);
        *req.mutable_envelope() = events[i];
        if (!stream->Write(req)) break;
      }
      stream->WritesDone();
      reader.join();
      grpc::Status st = stream->Finish();
      if (!st.ok()) std::fprintf(stderr, "stream %d: %s\n", s, st.error_message().c_str());
    });
  }
  for (auto& t : threads) t.join();
  const double secs = Seconds(Clock::now() - start);
  if (errors.load() > 0) std::fprintf(stderr, "gateway stream: %lld errors\n", static_cast<long long>(errors.load()));
  return static_cast<double>(acked.load()) / secs;
}

// (d): `callers` threads, each on its own connection, each keeping `window` PublishBatch
// calls of `batch` events in flight (async client). Batch k goes to caller k % callers.
// The requests are built before the clock starts, as the raw producer's values are.
double BatchThroughput(const std::string& target, const std::vector<v1::Envelope>& events, int callers, size_t batch,
                       int window) {
  std::vector<v1::PublishBatchRequest> requests((events.size() + batch - 1) / batch);
  for (size_t i = 0; i < events.size(); ++i) *requests[i / batch].add_envelopes() = events[i];
  std::atomic<int64_t> acked{0}, errors{0}, failed_calls{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < callers; ++c) {
    threads.emplace_back([&, c] {
      grpc::ChannelArguments args;
      args.SetInt("sluice.bench.channel", c);  // separate connections per caller
      auto stub =
          v1::EventGateway::NewStub(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
      grpc::CompletionQueue cq;
      struct Call {
        grpc::ClientContext ctx;
        v1::PublishBatchResponse resp;
        grpc::Status status;
        std::unique_ptr<grpc::ClientAsyncResponseReader<v1::PublishBatchResponse>> rpc;
      };
      size_t next = static_cast<size_t>(c);
      int outstanding = 0;
      auto issue = [&] {
        auto* call = new Call;
        call->ctx.AddMetadata("authorization", common::Cat("Bearer ", kToken));
        call->rpc = stub->AsyncPublishBatch(&call->ctx, requests[next], &cq);
        call->rpc->Finish(&call->resp, &call->status, call);
        next += static_cast<size_t>(callers);
        ++outstanding;
      };
      while (outstanding < window && next < requests.size()) issue();
      void* tag;
      bool ok;
      while (outstanding > 0 && cq.Next(&tag, &ok)) {
        std::unique_ptr<Call> call(static_cast<Call*>(tag));
        --outstanding;
        if (!call->status.ok()) {
          if (failed_calls++ == 0) std::fprintf(stderr, "batch: %s\n", call->status.error_message().c_str());
        }
        for (const auto& r : call->resp.results()) (r.has_ack() ? acked : errors)++;
        if (next < requests.size()) issue();
      }
      cq.Shutdown();
      while (cq.Next(&tag, &ok)) {
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = Seconds(Clock::now() - start);
  if (errors.load() > 0 || failed_calls.load() > 0)
    std::fprintf(stderr, "gateway batch: %lld event errors, %lld failed calls\n", static_cast<long long>(errors.load()),
                 static_cast<long long>(failed_calls.load()));
  return static_cast<double>(acked.load()) / secs;
}

// (e): `streams` PublishStream calls, each message carrying `batch` envelopes; message k
// goes to stream k % streams. The gateway's --max-in-flight-per-stream (events) paces them.
double StreamBatchThroughput(const std::string& target, const std::vector<v1::Envelope>& events, int streams,
                             size_t batch) {
  std::vector<v1::PublishStreamRequest> requests((events.size() + batch - 1) / batch);
  for (size_t i = 0; i < events.size(); ++i) {
    requests[i / batch].set_sequence(i / batch);
    *requests[i / batch].add_envelopes() = events[i];
  }
  std::atomic<int64_t> acked{0}, errors{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      grpc::ChannelArguments args;
      args.SetInt("sluice.bench.channel", s);
      auto stub =
          v1::EventGateway::NewStub(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", common::Cat("Bearer ", kToken));
      auto stream = stub->PublishStream(&ctx);
      std::thread reader([&] {
        v1::PublishStreamResponse r;
        while (stream->Read(&r)) {
          if (r.has_error()) {
            if (errors++ == 0) std::fprintf(stderr, "stream message: %s\n", r.error().message().c_str());
          }
          for (const auto& res : r.results()) (res.has_ack() ? acked : errors)++;
        }
      });
      for (size_t i = static_cast<size_t>(s); i < requests.size(); i += static_cast<size_t>(streams))
        if (!stream->Write(requests[i])) break;
      stream->WritesDone();
      reader.join();
      grpc::Status st = stream->Finish();
      if (!st.ok()) std::fprintf(stderr, "stream %d: %s\n", s, st.error_message().c_str());
    });
  }
  for (auto& t : threads) t.join();
  const double secs = Seconds(Clock::now() - start);
  if (errors.load() > 0)
    std::fprintf(stderr, "gateway stream batches: %lld errors\n", static_cast<long long>(errors.load()));
  return static_cast<double>(acked.load()) / secs;
}

// ---- the floor of a gateway ------------------------------------------------------------
// Diagnostic (g): what any gateway answering PublishBatch over gRPC can reach on this
// machine with these records. The same client, calls and gRPC server settings as (d), but
// a handler that only looks up each envelope's topic, serializes it, attaches its
// CloudEvents headers and hands it to librdkafka (the gateway producer's settings with any
// --gateway-librdkafka overrides and its delivery timeout; delivery reports on a poll
// thread of their own, as in the gateway), answering once every record is acknowledged.
// No defaults, validation, authentication, authorization, rate limit, dedup window or
// metrics: a ceiling for the real gateway, not a way to run it. With `validate` (h), each
// envelope is also given its defaults and checked against its contract
// (contracts::FillDefaults and Validate, as the gateway's producer does): the least a
// gateway that validates every event pays.
class FloorService final : public v1::EventGateway::CallbackService {
 public:
  FloorService(const gateway::GatewayConfig& config, const contracts::Catalog& catalog, bool validate)
      : catalog_(catalog), validate_(validate), delivery_timeout_(config.delivery_timeout) {
    auto settings = bench::GatewayProducerSettings(config.bootstrap_servers);
    settings["delivery.timeout.ms"] = std::to_string(absl::ToInt64Milliseconds(config.delivery_timeout));
    for (const auto& [k, v] : config.librdkafka) settings[k] = v;
    auto conf = kafka::MakeConf(settings);
    if (!conf.ok()) {
      std::fprintf(stderr, "floor: %s\n", std::string(conf.status().message()).c_str());
      return;
    }
    rd_kafka_conf_set_dr_msg_cb(conf->get(), &OnDelivery);
    char err[512];
    rk_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf->release(), err, sizeof(err)));
    if (!rk_) {
      std::fprintf(stderr, "floor: %s\n", err);
      return;
    }
    poller_ = std::thread([this] {
      while (!stop_.load()) rd_kafka_poll(rk_.get(), 50);
    });
  }
  ~FloorService() override {
    if (rk_) rd_kafka_flush(rk_.get(), 30000);
    stop_.store(true);
    if (poller_.joinable()) poller_.join();
  }
  FloorService(const FloorService&) = delete;
  FloorService& operator=(const FloorService&) = delete;
  bool ok() const { return rk_ != nullptr; }

  grpc::ServerUnaryReactor* PublishBatch(grpc::CallbackServerContext* ctx, const v1::PublishBatchRequest* req,
                                         v1::PublishBatchResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    const int n = req->envelopes_size();
    if (n == 0) {
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    auto* call = new Call(reactor, req, resp, n);
    resp->mutable_results()->Reserve(n);
    for (int i = 0; i < n; ++i) resp->add_results();
    // gRPC allocated the request for this call alone; the gateway fills defaults in place too.
    auto* envelopes = const_cast<v1::PublishBatchRequest*>(req)->mutable_envelopes();
    for (int i = 0; i < n; ++i) {
      v1::Envelope& e = *envelopes->Mutable(i);
      call->slots[static_cast<size_t>(i)] = Slot{call, i};
      bool valid = true;
      if (validate_) {
        contracts::FillDefaults(e, catalog_);
        valid = contracts::Validate(e, catalog_).ok();
      }
      const contracts::Route* route = valid ? catalog_.Find(e.type()) : nullptr;
      if (route == nullptr || !Produce(*route, e, &call->slots[static_cast<size_t>(i)])) {
        resp->mutable_results(i)->mutable_error()->set_message("not produced");
        call->Done();
      }
    }
    return reactor;
  }

 private:
  struct Call;
  struct Slot {
    Call* call = nullptr;
    int index = 0;
  };
  struct Call {
    Call(grpc::ServerUnaryReactor* r, const v1::PublishBatchRequest* q, v1::PublishBatchResponse* p, int n)
        : reactor(r), req(q), resp(p), slots(static_cast<size_t>(n)), remaining(n) {}
    void Done() {
      if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        reactor->Finish(grpc::Status::OK);
        delete this;
      }
    }
    grpc::ServerUnaryReactor* reactor;
    const v1::PublishBatchRequest* req;
    v1::PublishBatchResponse* resp;
    std::vector<Slot> slots;
    std::atomic<int> remaining;
  };

  bool Produce(const contracts::Route& route, const v1::Envelope& e, Slot* slot) {
    const std::string value = contracts::SerializeDeterministic(e);
    const contracts::Headers headers = contracts::ToKafkaHeaders(e);
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
    for (const auto& h : headers)
      rd_kafka_header_add(hdrs, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                          static_cast<ssize_t>(h.value.size()));
    const auto deadline = Clock::now() + absl::ToChronoNanoseconds(delivery_timeout_);  // as SendRecord gives up
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(rk_.get(), RD_KAFKA_V_TOPIC(route.topic.c_str()),
                                    RD_KAFKA_V_KEY(e.tenant_id().data(), e.tenant_id().size()),
                                    RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                                    RD_KAFKA_V_OPAQUE(slot), RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL &&
           Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));          // the poll thread drains it
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_headers_destroy(hdrs);  // not taken on failure
    return err == RD_KAFKA_RESP_ERR_NO_ERROR;
  }

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    auto* slot = static_cast<Slot*>(m->_private);
    Call* call = slot->call;
    v1::PublishResult* result = call->resp->mutable_results(slot->index);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result->mutable_error()->set_message(rd_kafka_err2str(m->err));
    } else {
      v1::Delivery* d = result->mutable_ack();
      d->set_event_id(call->req->envelopes(slot->index).id());  // the request lives until Finish
      d->set_topic(rd_kafka_topic_name(m->rkt));
      d->set_partition(m->partition);
      d->set_offset(m->offset);
    }
    call->Done();
  }

  const contracts::Catalog& catalog_;
  const bool validate_;
  const absl::Duration delivery_timeout_;
  kafka::KafkaHandle rk_;
  std::thread poller_;
  std::atomic<bool> stop_{false};
};

// A gRPC server for FloorService, built as the gateway builds its own (same message limit).
struct FloorServer {
  std::unique_ptr<FloorService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  static std::unique_ptr<FloorServer> Start(const gateway::GatewayConfig& config, const contracts::Catalog& catalog,
                                            bool validate) {
    auto f = std::make_unique<FloorServer>();
    f->service = std::make_unique<FloorService>(config, catalog, validate);
    if (!f->service->ok()) return nullptr;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &f->port);
    builder.SetMaxReceiveMessageSize(config.max_message_bytes);
    builder.RegisterService(f->service.get());
    f->server = builder.BuildAndStart();
    if (f->server == nullptr || f->port == 0) return nullptr;
    return f;
  }
  ~FloorServer() {
    if (server) server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
};

// ---- Kafka's Java producer -----------------------------------------------------------
// (b): org.apache.kafka.tools.ProducerPerformance from the dev stack's jars, as a
// subprocess, with the raw producer's settings; its records/s from the summary line
// ("N records sent, X records/sec (...), ..."). nullopt (with the reason on stderr) when
// java or the jars are missing or the run fails.
std::optional<double> JavaProducerThroughput(const std::string& kafka_libs, const std::string& bootstrap,
                                             const std::string& topic, int64_t records, size_t record_bytes) {
  if (!std::filesystem::exists(kafka_libs + "/kafka-tools-3.9.1.jar")) {
    std::fprintf(stderr, "java producer: no kafka-tools-3.9.1.jar in %s (run dev/install-deps.sh)\n",
                 kafka_libs.c_str());
    return std::nullopt;
  }
  const std::string err_file = common::Cat(std::filesystem::temp_directory_path().string(), "/gateway_bench_java.",
                                           std::random_device{}(), ".err");
  const std::string cmd =
      common::Cat("java -Xmx512m -cp '", kafka_libs, "/*' org.apache.kafka.tools.ProducerPerformance --topic '", topic,
                  "' --num-records ", records, " --record-size ", record_bytes,
                  " --throughput -1 --producer-props bootstrap.servers=", bootstrap,
                  " acks=all enable.idempotence=true compression.type=lz4 linger.ms=1 2>'", err_file, "'");
  FILE* out = popen(cmd.c_str(), "r");
  if (out == nullptr) {
    std::fprintf(stderr, "java producer: cannot run java\n");
    return std::nullopt;
  }
  std::string text;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), out)) text.append(buf, n);
  const int rc = pclose(out);
  std::optional<double> rate;
  // The summary is the last line with "records sent"; earlier ones are 5-second windows.
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const size_t sent = line.find(" records sent, ");
    if (sent == std::string::npos) continue;
    rate = std::strtod(line.c_str() + sent + std::strlen(" records sent, "), nullptr);
  }
  if (rc != 0 || !rate.has_value()) {
    std::ifstream err(err_file);
    std::stringstream e;
    e << err.rdbuf();
    std::fprintf(stderr, "java producer: exit %d, no summary line\n%s%s", rc, text.c_str(), e.str().c_str());
    rate.reset();
  }
  std::filesystem::remove(err_file);
  return rate;
}

// Calls slower than `slow_ms` are listed on stderr by when they were sent (seconds into
// the run), to see whether stalls recur on a period; 0 lists nothing.
Percentiles UnaryLatency(const std::string& target, const v1::Envelope& tmpl, int rate, int seconds, int64_t* errors,
                         double slow_ms) {
  auto stub = v1::EventGateway::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::CompletionQueue cq;
  struct Call {
    grpc::ClientContext ctx;
    v1::PublishResponse resp;
    grpc::Status status;
    Clock::time_point sent;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::PublishResponse>> rpc;
  };
  const int n = rate * seconds;
  std::vector<double> lat;
  lat.reserve(static_cast<size_t>(n));
  std::atomic<int64_t> errs{0};
  std::vector<std::pair<double, double>> slow;  // (sent, s into the run; latency, ms)
  const auto start = Clock::now();
  std::thread reaper([&] {
    void* tag;
    bool ok;
    for (int done = 0; done < n && cq.Next(&tag, &ok); ++done) {
      std::unique_ptr<Call> c(static_cast<Call*>(tag));
      if (!c->status.ok()) errs++;
      lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - c->sent).count());
      if (slow_ms > 0 && lat.back() > slow_ms)
        slow.emplace_back(std::chrono::duration<double>(c->sent - start).count(), lat.back());
    }
  });
  const auto interval = std::chrono::nanoseconds(1'000'000'000LL / rate);
  v1::PublishRequest req;
  *req.mutable_envelope() = tmpl;
  for (int i = 0; i < n; ++i) {
    std::this_thread::sleep_until(start + i * interval);
    auto* c = new Call;
    c->ctx.AddMetadata("authorization", common::Cat("Bearer ", kToken));
    req.mutable_envelope()->set_id(contracts::NewUuidV7());
    c->sent = Clock::now();  // open loop: latency counts from the scheduled send
    c->rpc = stub->AsyncPublish(&c->ctx, req, &cq);
    c->rpc->Finish(&c->resp, &c->status, c);
  }
  reaper.join();
  cq.Shutdown();
  *errors = errs.load();
  if (!slow.empty()) {
    std::fprintf(
        stderr, "unary calls over %.0f ms (run began at Unix ms %lld; sent at s into it: ms):", slow_ms,
        static_cast<long long>(absl::ToUnixMillis(absl::Now()) -
                               std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()));
    for (const auto& [at, ms] : slow) std::fprintf(stderr, " %.3f:%.1f", at, ms);
    std::fprintf(stderr, "\n");
  }
  return Summarize(lat);
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice;
  using namespace sluice::bench;
  int64_t records = 1000000;
  int streams = 2, rate = 5000, seconds = 10, window = 16, latency_runs = 10, rounds = 3;
  bool latency_only = false;
  double slow_ms = 0;
  size_t batch = 500;
  std::string bootstrap = common::DefaultKafkaBootstrap();
  const char* libs_env = std::getenv("SLUICE_KAFKA_LIBS");
  std::string kafka_libs =
      libs_env != nullptr && *libs_env != '\0' ? libs_env : std::string(SLUICE_SOURCE_DIR) + "/.cache/kafka/libs";
  CLI::App app{
      "gateway_bench: sluice-gateway vs a plain librdkafka producer and Kafka's Java producer (same broker, record "
      "size, acks)"};
  app.add_option("--records", records,
                 "Records per throughput run (the Java producer's rate includes its JIT warm-up: fewer "
                 "records understate it)")
      ->check(CLI::Range(int64_t{2000}, int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--streams", streams, "Concurrent PublishStream calls, and PublishBatch callers")
      ->capture_default_str();
  app.add_option("--batch", batch, "Events per PublishBatch request and per batched stream message")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--window", window, "PublishBatch calls each caller keeps in flight")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--rounds", rounds,
                 "Rounds of the Java producer and the two batched gateway lines, alternating (the Java producer's "
                 "rate swings from run to run); the target is judged on the median round's ratio")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  app.add_option("--kafka-libs", kafka_libs, "Kafka jars for the Java producer (env SLUICE_KAFKA_LIBS)")
      ->capture_default_str();
  app.add_option("--rate", rate, "Unary events per second for the latency run")->capture_default_str();
  app.add_option("--seconds", seconds, "Length of each latency run")->capture_default_str();
  app.add_option("--latency-runs", latency_runs, "Consecutive latency runs (each gateway, then raw)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  int warmup = 60;
  app.add_option("--warmup-seconds", warmup,
                 "Before the latency runs, this long of the same unary load and then of raw librdkafka's, printed "
                 "and not counted")
      ->check(CLI::Range(0, 600))
      ->capture_default_str();
  app.add_flag("--latency-only", latency_only, "Skip the throughput runs");
  app.add_option("--slow-ms", slow_ms, "List unary calls slower than this on stderr, by send time (0: none)")
      ->capture_default_str();
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers")->capture_default_str();
  std::vector<std::string> gateway_settings;
  app.add_option("--gateway-librdkafka", gateway_settings,
                 "A producer setting KEY=VALUE for the gateway only, as its --librdkafka flag (repeatable; the "
                 "baselines keep theirs)");
  CLI11_PARSE(app, argc, argv);
  common::InitLogging("gateway_bench", "warn");
  gateway::GatewayConfig gateway_config{.listen = "127.0.0.1:0", .bootstrap_servers = bootstrap};
  for (const auto& kv : gateway_settings) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "--gateway-librdkafka %s: want KEY=VALUE\n", kv.c_str());
      return 2;
    }
    gateway_config.librdkafka[kv.substr(0, eq)] = kv.substr(eq + 1);
  }

  const std::string prefix = common::Cat("bench-", std::random_device{}(), ".");
  auto catalog = contracts::Catalog::Default().WithTopicPrefix(prefix);
  if (auto r = kafka::EnsureTopics(bootstrap, catalog); !r.ok()) {
    std::fprintf(stderr, "topics: %s (is the stack up?)\n", std::string(r.status().message()).c_str());
    return 1;
  }
  auto vectors = contracts::LoadVectors(std::string(SLUICE_SOURCE_DIR) + "/contracts/vectors");
  v1::Envelope tmpl;
  for (const auto& v : *vectors)
    if (v.type == "data.refreshed") tmpl = v.envelope;
  const std::string topic = catalog.Find("data.refreshed")->topic;
  std::vector<v1::Envelope> events(static_cast<size_t>(records), tmpl);
  for (size_t i = 0; i < events.size(); ++i) {
    events[i].set_id(contracts::NewUuidV7());
    events[i].set_tenant_id(common::Cat("tenant-", i % 64));
  }
  const size_t record_bytes = contracts::SerializeDeterministic(events[0]).size();

  auto tokens = gateway::TokenStore::Parse(
      common::Cat("principals { name: \"bench\" token_sha256: \"", gateway::Sha256Hex(kToken), "\" tenants: \"*\" }"));
  prometheus::Registry registry;
  auto gw = gateway::Gateway::Start(gateway_config, *std::move(tokens), gateway::RateLimiter(), catalog, registry);
  if (!gw.ok()) {
    std::fprintf(stderr, "gateway: %s\n", std::string(gw.status().message()).c_str());
    return 1;
  }
  const std::string target = common::Cat("127.0.0.1:", (*gw)->port());
  std::unique_ptr<FloorServer> floor, floor_validated;
  if (!latency_only) {
    floor = FloorServer::Start(gateway_config, catalog, /*validate=*/false);
    floor_validated = FloorServer::Start(gateway_config, catalog, /*validate=*/true);
    if (floor == nullptr || floor_validated == nullptr) {
      std::fprintf(stderr, "floor: cannot start its server\n");
      return 1;
    }
  }
  const std::string floor_target = floor ? common::Cat("127.0.0.1:", floor->port) : std::string();
  const std::string floorv_target = floor_validated ? common::Cat("127.0.0.1:", floor_validated->port) : std::string();

  std::printf(
      "gateway_bench: %lld records of %zu bytes, acks=all, idempotent, lz4, linger.ms=1, 12 partitions, 2 cores shared "
      "with the broker\n",
      static_cast<long long>(records), record_bytes);
  for (const auto& [k, v] : gateway_config.librdkafka)
    std::printf("  the gateway's producer only: %s=%s (the baselines keep the settings above)\n", k.c_str(), v.c_str());
  // Warm up every path (connections, metadata, producer ids).
  const auto warm = static_cast<std::ptrdiff_t>(std::min<size_t>(4000, events.size()));
  RawThroughput(bootstrap, topic, std::vector<v1::Envelope>(events.begin(), events.begin() + 2000));
  StreamThroughput(target, std::vector<v1::Envelope>(events.begin(), events.begin() + 2000), streams);
  for (auto& e : events) e.set_id(contracts::NewUuidV7());
  BatchThroughput(target, std::vector<v1::Envelope>(events.begin(), events.begin() + warm), streams, batch, window);
  for (auto& e : events) e.set_id(contracts::NewUuidV7());
  StreamBatchThroughput(target, std::vector<v1::Envelope>(events.begin(), events.begin() + warm), streams, batch);
  for (const std::string* t : {&floor_target, &floorv_target})
    if (!t->empty())
      BatchThroughput(*t, std::vector<v1::Envelope>(events.begin(), events.begin() + warm), streams, batch, window);
  for (auto& e : events) e.set_id(contracts::NewUuidV7());  // fresh ids: the dedup window saw the warm-up

  auto verdict = [](bool met) { return met ? "met" : "NOT met"; };
  if (!latency_only) {
    auto fresh_ids = [&] {  // the dedup window saw the previous run's ids
      for (auto& e : events) e.set_id(contracts::NewUuidV7());
    };
    const double raw = RawThroughput(bootstrap, topic, events);
    const std::optional<double> java = JavaProducerThroughput(kafka_libs, bootstrap, topic, records, record_bytes);
    // Diagnostics, not baselines of a target: the gateway's records also carry their key and
    // the CloudEvents headers, about as many bytes again as the value.
    const contracts::Headers tmpl_headers = contracts::ToKafkaHeaders(events[0]);
    size_t wire_bytes = record_bytes + events[0].tenant_id().size();
    for (const auto& h : tmpl_headers) wire_bytes += h.key.size() + h.value.size();
    const double raw_headers = RawThroughput(bootstrap, topic, events, /*with_headers=*/true);
    const std::optional<double> java_wire = JavaProducerThroughput(kafka_libs, bootstrap, topic, records, wire_bytes);
    const double producer_only = ProducerThroughput(gateway_config, catalog, events, streams);
    const double gws = StreamThroughput(target, events, streams);
    fresh_ids();
    const double gwb = BatchThroughput(target, events, streams, batch, window);
    fresh_ids();
    const double gwsb = StreamBatchThroughput(target, events, streams, batch);
    const double floor1 = BatchThroughput(floor_target, events, streams, batch, window);
    const double floorv1 = BatchThroughput(floorv_target, events, streams, batch, window);
    std::printf("\nthroughput (records/s)                              records/s   x raw   x Java\n");
    auto line = [&](const std::string& what, double v) {
      std::printf("  %-48s %10.0f  %6.2f", what.c_str(), v, v / raw);
      if (java.has_value()) std::printf("  %6.2f", v / *java);
      std::printf("\n");
    };
    line("raw librdkafka producer", raw);
    if (java.has_value()) {
      line("Java producer (ProducerPerformance 3.9.1)", *java);
    } else {
      std::printf("  %-48s %10s\n", "Java producer (ProducerPerformance 3.9.1)", "not run");
    }
    line("raw librdkafka, + the CloudEvents headers", raw_headers);
    if (java_wire.has_value()) line(common::Cat("Java producer, ", wire_bytes, "-byte values"), *java_wire);
    line(common::Cat("the gateway's producer alone (Send x", streams, ")"), producer_only);
    line(common::Cat("gateway PublishStream x", streams, ", 1 event/message"), gws);
    line(common::Cat("gateway PublishBatch x", streams, ", ", batch, "/batch, ", window, " in flight"), gwb);
    line(common::Cat("gateway PublishStream x", streams, ", ", batch, "/message"), gwsb);
    line("floor: gRPC + librdkafka, no gateway work", floor1);
    line("floor + defaults and validation", floorv1);
    const double best = std::max(gwb, gwsb);
    std::printf("  ratio single-event stream/raw               %6.2f\n", gws / raw);
    if (java.has_value()) {
      // More rounds of the target's two sides, alternating, so that one slow or fast run of
      // either does not decide the verdict.
      std::vector<double> ratios = {best / *java}, floor_ratios = {floor1 / *java}, floorv_ratios = {floorv1 / *java};
      if (rounds > 1) {
        std::printf(
            "  rounds of the target (records/s): Java producer | PublishBatch | PublishStream %zu/message | ratio | "
            "floor | ratio | floor + validation | ratio\n",
            batch);
        std::printf("    1: %10.0f | %10.0f | %10.0f | %5.2f | %10.0f | %5.2f | %10.0f | %5.2f\n", *java, gwb, gwsb,
                    best / *java, floor1, floor1 / *java, floorv1, floorv1 / *java);
        std::fflush(stdout);
      }
      for (int round = 2; round <= rounds; ++round) {
        const std::optional<double> j = JavaProducerThroughput(kafka_libs, bootstrap, topic, records, record_bytes);
        if (!j.has_value()) {
          std::printf("    %d: the Java producer failed; %zu rounds\n", round, ratios.size());
          break;
        }
        fresh_ids();
        const double b = BatchThroughput(target, events, streams, batch, window);
        fresh_ids();
        const double sb = StreamBatchThroughput(target, events, streams, batch);
        // The two floors in turn first, so that neither always runs last in a round.
        double fl = 0, flv = 0;
        if (round % 2 == 0) {
          flv = BatchThroughput(floorv_target, events, streams, batch, window);
          fl = BatchThroughput(floor_target, events, streams, batch, window);
        } else {
          fl = BatchThroughput(floor_target, events, streams, batch, window);
          flv = BatchThroughput(floorv_target, events, streams, batch, window);
        }
        ratios.push_back(std::max(b, sb) / *j);
        floor_ratios.push_back(fl / *j);
        floorv_ratios.push_back(flv / *j);
        std::printf("    %d: %10.0f | %10.0f | %10.0f | %5.2f | %10.0f | %5.2f | %10.0f | %5.2f\n", round, *j, b, sb,
                    ratios.back(), fl, floor_ratios.back(), flv, floorv_ratios.back());
        std::fflush(stdout);
      }
      // The median; of an even number of rounds, the lower middle one (the verdict must not
      // rest on the better of two).
      auto median_of = [](std::vector<double>& v) {
        std::sort(v.begin(), v.end());
        return v[(v.size() - 1) / 2];
      };
      const double median = median_of(ratios);
      std::printf("  ratio batched gateway/Java producer         %6.2f   (target >= 1.00: %s)", median,
                  verdict(median >= 1.0));
      if (ratios.size() > 1)
        std::printf("   median of %zu rounds; min %.2f, max %.2f", ratios.size(), ratios.front(), ratios.back());
      std::printf("\n");
      // A ceiling for the gateway here: what gRPC and librdkafka reach with none of the
      // gateway's work, and with only the validation every event must pass. The gateway also
      // authenticates, authorizes, rate-limits and deduplicates every event.
      auto floor_line = [&](const char* what, std::vector<double>& r) {
        const double m = median_of(r);
        std::printf("  diagnostic: %s/Java producer %.2f (median of %zu; min %.2f, max %.2f): %s\n", what, m, r.size(),
                    r.front(), r.back(),
                    m >= 1.0 ? "at or above 1.00: the target is not ruled out by it"
                             : "below 1.00: by the median, a gateway doing this much or more misses the target here");
      };
      floor_line("floor (gRPC + librdkafka, no gateway work)", floor_ratios);
      floor_line("floor + defaults and validation", floorv_ratios);
    } else {
      std::printf("  ratio batched gateway/Java producer            n/a   (target >= 1.00: not measured)\n");
    }
    std::printf("  ratio batched gateway/raw                   %6.2f   (stretch >= 0.50: %s)\n", best / raw,
                verdict(best / raw >= 0.5));
    if (java_wire.has_value())
      std::printf(
          "  diagnostic: batched gateway / Java producer with values as large as the gateway's records (%zu bytes: "
          "value %zu + key + CloudEvents headers) %.2f\n",
          wire_bytes, record_bytes, best / *java_wire);
    // Not during the latency runs: idle producers and poll threads would share the cores.
    floor.reset();
    floor_validated.reset();
  }

  // Unary latency: consecutive runs alternating gateway and raw, so a drifting load hits
  // both, each with the CPU the machine spent (a tail is often work waiting for a core).
  std::printf(
      "\nunary Publish at %d events/s: %d runs of %d s, each gateway then raw librdkafka (ms; machine = cores busy "
      "of %u)\n",
      rate, latency_runs, seconds, std::thread::hardware_concurrency());
  std::printf(
      "  run | gateway p50     p99   p99.9     max  errors machine | raw p50     p99 machine | p99 x raw  <= 3x\n");
  if (warmup > 0) {
    int64_t errors = 0;
    Percentiles g = UnaryLatency(target, tmpl, rate, warmup, &errors, 0);
    Percentiles r = RawLatency(bootstrap, topic, tmpl, rate, warmup);
    std::printf(
        "  warm-up, %d s each, not counted: gateway p50 %.2f p99 %.2f max %.2f (%lld errors) | raw p50 %.2f p99 %.2f\n",
        warmup, g.p50, g.p99, g.max, static_cast<long long>(errors), r.p50, r.p99);
    std::fflush(stdout);
  }
  int met = 0;
  std::vector<double> gw_p99s, ratios;
  for (int run = 1; run <= latency_runs; ++run) {
    int64_t errors = 0;
    const auto g0 = CpuMeter::Now();
    Percentiles g = UnaryLatency(target, tmpl, rate, seconds, &errors, slow_ms);
    const auto g1 = CpuMeter::Now();
    Percentiles r = RawLatency(bootstrap, topic, tmpl, rate, seconds);
    const auto r1 = CpuMeter::Now();
    const double ratio = r.p99 > 0 ? g.p99 / r.p99 : 0;
    const bool ok = g.p99 <= 3.0 * r.p99 && errors == 0;
    met += ok ? 1 : 0;
    gw_p99s.push_back(g.p99);
    ratios.push_back(ratio);
    std::printf("  %3d |     %7.2f %7.2f %7.2f %7.2f %7lld %7.2f |  %7.2f %7.2f %7.2f | %9.2f  %s\n", run, g.p50, g.p99,
                g.p999, g.max, static_cast<long long>(errors), CpuMeter::Between(g0, g1).machine, r.p50, r.p99,
                CpuMeter::Between(g1, r1).machine, ratio, ok ? "yes" : "no");
    std::fflush(stdout);
  }
  const Percentiles gp = Summarize(gw_p99s), rp = Summarize(ratios);
  std::printf(
      "  gateway p99 over the runs: min %.2f, median %.2f, max %.2f ms; ratio to raw: min %.2f, median %.2f, "
      "max %.2f\n",
      gp.min, gp.p50, gp.max, rp.min, rp.p50, rp.max);
  const int need = (latency_runs * 9 + 9) / 10;
  std::printf("  target: gateway p99 <= 3x raw librdkafka's p99 in at least %d of %d runs: %d, %s\n", need,
              latency_runs, met, verdict(met >= need));
  (*gw)->Shutdown(absl::Seconds(5));
  std::vector<std::string> names;
  for (const auto& t : catalog.topics()) names.push_back(t.name());
  (void)kafka::DeleteTopics(bootstrap, names);
  return 0;
}
