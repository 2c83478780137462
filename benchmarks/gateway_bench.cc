// gateway_bench: sluice-gateway against a plain librdkafka producer, same broker, same
// record size, same acks (all, idempotent), in one run.
//
//   throughput: N records through (a) raw librdkafka, (b) PublishStream over S streams;
//               prints records/s and the ratio b/a (target >= 0.5).
//   latency:    unary Publish sent open-loop at R events/s for D seconds; prints
//               p50/p99/p99.9 next to raw librdkafka's produce->ack latency at the same
//               rate (target: gateway p99 < 10 ms at 5,000/s).
//
// Needs the local stack (bash dev/stack.sh up). Creates and deletes its own topics.
#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "common/env.h"
#include "common/log.h"
#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/vectors.h"
#include "gateway/server.h"
#include "kafka/topic_admin.h"
#include "kafka/util.h"
#include "sluice/v1/gateway.grpc.pb.h"

namespace sluice::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kToken[] = "bench-token";

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Percentiles {
  double p50, p99, p999, max;
};
Percentiles Summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms.empty() ? 0 : ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))]; };
  return {at(0.50), at(0.99), at(0.999), ms.empty() ? 0 : ms.back()};
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
    auto conf = kafka::MakeConf({{"bootstrap.servers", bootstrap},
                                 {"enable.idempotence", "true"},
                                 {"acks", "all"},
                                 {"linger.ms", "1"},
                                 {"compression.type", "lz4"},
                                 {"partitioner", "murmur2_random"}});
    rd_kafka_conf_set_dr_msg_cb(conf->get(), &OnDelivery);
    rd_kafka_conf_set_opaque(conf->get(), this);
    char err[512];
    rk.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf->release(), err, sizeof(err)));
  }
  void Produce(const std::string& topic, const std::string& key, const std::string& value, void* opaque) {
    while (rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                             RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(rk.get(), 1);
    rd_kafka_poll(rk.get(), 0);
  }
};

double RawThroughput(const std::string& bootstrap, const std::string& topic, const std::vector<v1::Envelope>& events) {
  RawProducer p(bootstrap);
  std::vector<std::string> values;
  values.reserve(events.size());
  for (const auto& e : events) values.push_back(contracts::SerializeDeterministic(e));
  // Connected, with a producer id, before the clock starts (the gateway's producer is too).
  p.Produce(topic, events[0].tenant_id(), values[0], nullptr);
  rd_kafka_flush(p.rk.get(), 30000);
  p.delivered = 0;
  const auto start = Clock::now();
  for (size_t i = 0; i < events.size(); ++i) p.Produce(topic, events[i].tenant_id(), values[i], nullptr);
  rd_kafka_flush(p.rk.get(), 120000);
  const double secs = Seconds(Clock::now() - start);
  if (p.failed.load() > 0)
    std::fprintf(stderr, "raw: %lld deliveries failed\n", static_cast<long long>(p.failed.load()));
  return static_cast<double>(p.delivered.load()) / secs;
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
    p.Produce(topic, tmpl.tenant_id(), value, new Clock::time_point(Clock::now()));
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

Percentiles UnaryLatency(const std::string& target, const v1::Envelope& tmpl, int rate, int seconds, int64_t* errors) {
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
  std::thread reaper([&] {
    void* tag;
    bool ok;
    for (int done = 0; done < n && cq.Next(&tag, &ok); ++done) {
      std::unique_ptr<Call> c(static_cast<Call*>(tag));
      if (!c->status.ok()) errs++;
      lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - c->sent).count());
    }
  });
  const auto interval = std::chrono::nanoseconds(1'000'000'000LL / rate);
  const auto start = Clock::now();
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
  return Summarize(lat);
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice;
  using namespace sluice::bench;
  int64_t records = 200000;
  int streams = 2, rate = 5000, seconds = 10;
  std::string bootstrap = common::DefaultKafkaBootstrap();
  CLI::App app{"gateway_bench: sluice-gateway vs a plain librdkafka producer (same broker, record size, acks)"};
  app.add_option("--records", records, "Records per throughput run")->capture_default_str();
  app.add_option("--streams", streams, "Concurrent PublishStream calls")->capture_default_str();
  app.add_option("--rate", rate, "Unary events per second for the latency run")->capture_default_str();
  app.add_option("--seconds", seconds, "Length of each latency run")->capture_default_str();
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  common::InitLogging("gateway_bench", "warn");

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
  auto gw = gateway::Gateway::Start({.listen = "127.0.0.1:0", .bootstrap_servers = bootstrap}, *std::move(tokens),
                                    gateway::RateLimiter(), catalog, registry);
  if (!gw.ok()) {
    std::fprintf(stderr, "gateway: %s\n", std::string(gw.status().message()).c_str());
    return 1;
  }
  const std::string target = common::Cat("127.0.0.1:", (*gw)->port());

  std::printf(
      "gateway_bench: %lld records of %zu bytes, acks=all, idempotent, 12 partitions, 2 cores shared with the broker\n",
      static_cast<long long>(records), record_bytes);
  // Warm up both paths (connections, metadata, producer ids).
  RawThroughput(bootstrap, topic, std::vector<v1::Envelope>(events.begin(), events.begin() + 2000));
  StreamThroughput(target, std::vector<v1::Envelope>(events.begin(), events.begin() + 2000), streams);
  for (auto& e : events) e.set_id(contracts::NewUuidV7());  // fresh ids: the dedup window saw the warm-up

  const double raw = RawThroughput(bootstrap, topic, events);
  const double gws = StreamThroughput(target, events, streams);
  std::printf("\nthroughput (records/s)\n");
  std::printf("  raw librdkafka producer           %10.0f\n", raw);
  std::printf("  gateway PublishStream x%-2d          %10.0f\n", streams, gws);
  std::printf("  ratio gateway/raw                 %10.2f   (target >= 0.50: %s)\n", gws / raw,
              gws / raw >= 0.5 ? "met" : "NOT met");

  int64_t errors = 0;
  Percentiles g = UnaryLatency(target, tmpl, rate, seconds, &errors);
  Percentiles r = RawLatency(bootstrap, topic, tmpl, rate, seconds);
  std::printf("\nlatency at %d events/s for %d s (ms)    p50      p99    p99.9      max\n", rate, seconds);
  std::printf("  raw librdkafka produce->ack      %7.2f  %7.2f  %7.2f  %7.2f\n", r.p50, r.p99, r.p999, r.max);
  std::printf("  gateway unary Publish            %7.2f  %7.2f  %7.2f  %7.2f   (%lld errors)\n", g.p50, g.p99, g.p999,
              g.max, static_cast<long long>(errors));
  std::printf("  ratio p99 gateway/raw            %7.2f            (target: gateway p99 < 10 ms: %s)\n", g.p99 / r.p99,
              g.p99 < 10.0 ? "met" : "NOT met");

  (*gw)->Shutdown(absl::Seconds(5));
  std::vector<std::string> names;
  for (const auto& t : catalog.topics()) names.push_back(t.name());
  (void)kafka::DeleteTopics(bootstrap, names);
  return 0;
}
