// e2e_latency_bench: publish acknowledgement -> consumer receipt, through sluice-gateway and
// sluice::kafka::Consumer, next to a plain librdkafka producer -> plain librdkafka consumer
// on the same broker, at the same paced rate and record size, in one run.
//
//   gateway path: --publishers threads publishing through --streams PublishStream calls to an
//                 in-process gateway, batching like a Kafka producer (--linger-ms, up to
//                 --stream-batch envelopes per message; --linger-ms 0: one event per
//                 message); t_ack = the client read the event's Delivery; t_recv = the
//                 Consumer's batch handler was called with the record (a consumer group).
//   raw path:     --publishers threads calling rd_kafka_producev on one producer with the
//                 gateway producer's settings; t_ack = its delivery report (a dedicated poll
//                 thread); t_recv = rd_kafka_consumer_poll returned the record (a consumer
//                 group, librdkafka's defaults).
//
// Latency per event is t_recv - t_ack, both from one steady clock in one process, matched
// by event id. Phases alternate (raw, gateway, raw, ...) so drifting machine load hits both;
// each path is warmed up (metadata, producer id, group join) before anything is timed.
// Target (DESIGN section 6): gateway-path p99 <= 1.5 x raw p99 + 1 ms.
//
// Needs the local stack (bash dev/stack.sh up). Creates and deletes its own topics.
#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "benchmarks/cpu_meter.h"
#include "benchmarks/raw_producer.h"
#include "common/env.h"
#include "common/log.h"
#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/vectors.h"
#include "gateway/server.h"
#include "kafka/consumer.h"
#include "kafka/topic_admin.h"
#include "kafka/util.h"
#include "sluice/v1/gateway.grpc.pb.h"

namespace sluice::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kToken[] = "bench-token";

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
  size_t n = 0;
};
Percentiles Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  return {at(0.50), at(0.90), at(0.99), v.empty() ? 0 : v.back(), v.size()};
}

// Both ends of each event, whichever arrives first: the consumer can see a record before
// the publisher has read its acknowledgement (that latency is then negative, and counted).
class Tracker {
 public:
  // When the event was due to be handed over (producev, or the gateway path's Publish): its
  // scheduled time, so a publisher that fell behind (e.g. blocked in a stream's Write) counts.
  void Sent(const std::string& id, Clock::time_point t) {
    std::lock_guard lock(mu_);
    Slot& s = slots_[id];
    s.sent = t;
    s.has_sent = true;
  }
  void Ack(const std::string& id, bool timed, Clock::time_point t) {
    std::lock_guard lock(mu_);
    Slot& s = slots_[id];
    s.ack = t;
    s.has_ack = true;
    s.timed = timed;
    if (timed) ++timed_acks_;
    if (timed && s.has_recv) ++timed_done_;
  }
  void Recv(const std::string& id, Clock::time_point t) {
    std::lock_guard lock(mu_);
    Slot& s = slots_[id];
    if (s.has_recv) return;  // redelivered: the first receipt counts
    s.recv = t;
    s.has_recv = true;
    if (s.timed) ++timed_done_;
  }
  bool Received(const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = slots_.find(id);
    return it != slots_.end() && it->second.has_recv;
  }
  // Waits until every timed event acknowledged so far has been received, or `timeout`.
  bool AwaitReceipts(int64_t expected_acks, Clock::duration timeout) {
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      {
        std::lock_guard lock(mu_);
        if (timed_acks_ >= expected_acks && timed_done_ >= timed_acks_) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  // Latencies (ms) of the timed events with both ends, from the acknowledgement (or, with
  // `from_send`, from the hand-over); `missing`: timed acks never received.
  std::vector<double> Latencies(int64_t* missing, int64_t* negative, bool from_send = false) const {
    std::lock_guard lock(mu_);
    std::vector<double> out;
    *missing = *negative = 0;
    for (const auto& [id, s] : slots_) {
      if (!s.timed) continue;
      if (!s.has_recv) {
        ++*missing;
        continue;
      }
      if (from_send && !s.has_sent) continue;
      const double ms = Ms(s.recv - (from_send ? s.sent : s.ack));
      if (ms < 0) ++*negative;
      out.push_back(ms);
    }
    return out;
  }

 private:
  struct Slot {
    Clock::time_point sent, ack, recv;
    bool has_sent = false, has_ack = false, has_recv = false, timed = false;
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Slot> slots_;
  int64_t timed_acks_ = 0, timed_done_ = 0;
};

struct Event {
  std::string id;
  std::string tenant;
  std::string value;  // serialized envelope (raw path)
  v1::Envelope envelope;
  bool timed = false;
};

std::vector<Event> MakeEvents(const v1::Envelope& tmpl, size_t n, bool timed) {
  std::vector<Event> events(n);
  for (size_t i = 0; i < n; ++i) {
    Event& e = events[i];
    e.envelope = tmpl;
    e.id = contracts::NewUuidV7();
    e.tenant = common::Cat("tenant-", i % 64);
    e.envelope.set_id(e.id);
    e.envelope.set_tenant_id(e.tenant);
    e.value = contracts::SerializeDeterministic(e.envelope);
    e.timed = timed;
  }
  return events;
}

// Event i is due at start + i / rate; publisher p sends events p, p + P, ... Open loop: a
// publisher behind schedule sends at once. `send(p, i, due)`.
template <class Send>
void Paced(size_t n, int rate, int publishers, Send send) {
  const auto interval = std::chrono::nanoseconds(1'000'000'000LL / rate);
  const auto start = Clock::now() + std::chrono::milliseconds(5);
  std::vector<std::thread> threads;
  for (int p = 0; p < publishers; ++p) {
    threads.emplace_back([&, p] {
      for (size_t i = static_cast<size_t>(p); i < n; i += static_cast<size_t>(publishers)) {
        const auto due = start + static_cast<int64_t>(i) * interval;
        std::this_thread::sleep_until(due);
        send(p, i, due);
      }
    });
  }
  for (auto& t : threads) t.join();
}

// ---- raw librdkafka ----------------------------------------------------------------
// The gateway producer's settings (kafka/producer.cc, linger from gateway/server.cc);
// delivery reports on their own poll thread, as the gateway's producer has.
class RawProducer {
 public:
  RawProducer(const std::string& bootstrap, Tracker& tracker) : tracker_(tracker) {
    auto conf = kafka::MakeConf(bench::GatewayProducerSettings(bootstrap));
    rd_kafka_conf_set_dr_msg_cb(conf->get(), &OnDelivery);
    rd_kafka_conf_set_opaque(conf->get(), this);
    char err[512];
    rk_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf->release(), err, sizeof(err)));
    poller_ = std::thread([this] {
      while (!stop_.load()) rd_kafka_poll(rk_.get(), 100);
    });
  }
  ~RawProducer() {
    rd_kafka_flush(rk_.get(), 10000);
    stop_ = true;
    poller_.join();
  }
  void Produce(const std::string& topic, const Event& e) {
    while (rd_kafka_producev(rk_.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                             RD_KAFKA_V_KEY(e.tenant.data(), e.tenant.size()),
                             RD_KAFKA_V_VALUE(const_cast<char*>(e.value.data()), e.value.size()),
                             RD_KAFKA_V_HEADER("ce_id", e.id.data(), static_cast<ssize_t>(e.id.size())),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(const_cast<Event*>(&e)),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int64_t failed() const { return failed_.load(); }

 private:
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    const auto now = Clock::now();
    auto* self = static_cast<RawProducer*>(opaque);
    if (m->err) {
      self->failed_++;
      return;
    }
    const auto* e = static_cast<const Event*>(m->_private);
    self->tracker_.Ack(e->id, e->timed, now);
  }
  Tracker& tracker_;
  kafka::KafkaHandle rk_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> failed_{0};
  std::thread poller_;
};

// A plain consumer-group member: one record per rd_kafka_consumer_poll, librdkafka's
// defaults (auto commit in the background). `sync_commit`: instead, commit synchronously
// after each run of already-fetched records, as sluice::kafka::Consumer does after each
// batch; isolates what that commit costs.
class RawConsumer {
 public:
  RawConsumer(const std::string& bootstrap, const std::string& group, const std::string& topic,
              const std::map<std::string, std::string>& extra, bool sync_commit, Tracker& tracker)
      : tracker_(tracker), sync_commit_(sync_commit) {
    std::map<std::string, std::string> settings = {{"bootstrap.servers", bootstrap},
                                                   {"group.id", group},
                                                   {"auto.offset.reset", "earliest"},
                                                   {"enable.partition.eof", "false"}};
    for (const auto& [k, v] : extra) settings[k] = v;
    if (sync_commit) settings["enable.auto.commit"] = "false";
    auto conf = kafka::MakeConf(settings);
    char err[512];
    rk_.reset(rd_kafka_new(RD_KAFKA_CONSUMER, conf->release(), err, sizeof(err)));
    rd_kafka_poll_set_consumer(rk_.get());
    kafka::PartitionListHandle topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk_.get(), topics.get());
    thread_ = std::thread([this] { Loop(); });
  }
  ~RawConsumer() {
    stop_ = true;
    thread_.join();
    rd_kafka_consumer_close(rk_.get());
  }
  std::vector<double> commit_ms() {
    std::lock_guard lock(mu_);
    return commit_ms_;
  }

 private:
  void Loop() {
    bool uncommitted = false;
    while (!stop_.load()) {
      // With sync_commit: block for the first record, then drain what is already fetched.
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), sync_commit_ && uncommitted ? 0 : 100);
      if (m == nullptr) {
        if (uncommitted) {
          Commit();
          uncommitted = false;
        }
        continue;
      }
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const auto now = Clock::now();
        rd_kafka_headers_t* hdrs = nullptr;
        const void* v = nullptr;
        size_t size = 0;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(hdrs, "ce_id", &v, &size) == RD_KAFKA_RESP_ERR_NO_ERROR && v != nullptr)
          tracker_.Recv(std::string(static_cast<const char*>(v), size), now);
        if (sync_commit_ && ++uncommitted_records_ >= 500) {  // the wrapper's max_batch
          Commit();
          uncommitted = false;
        } else if (sync_commit_) {
          uncommitted = true;
        }
      }
      rd_kafka_message_destroy(m);
    }
  }
  // Offsets stored by the polls (enable.auto.offset.store), committed synchronously.
  void Commit() {
    const auto t0 = Clock::now();
    rd_kafka_commit(rk_.get(), nullptr, 0);
    std::lock_guard lock(mu_);
    commit_ms_.push_back(Ms(Clock::now() - t0));
    uncommitted_records_ = 0;
  }
  Tracker& tracker_;
  const bool sync_commit_;
  int uncommitted_records_ = 0;
  kafka::KafkaHandle rk_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<double> commit_ms_;
};

// ---- gateway ---------------------------------------------------------------------
// `streams` PublishStream calls, each on its own connection; publisher p writes to stream
// p % streams. With linger 0 each event is a message of its own. Otherwise a stream buffers
// events like a Kafka producer (or the clients' batching publishers): a message with several
// envelopes goes out when `max_batch` are waiting or `linger` has passed since the first of
// them. A reader thread per stream stamps each Delivery as it is read; a message's events
// are all acknowledged together, when the last of them is stored.
class StreamPublishers {
 public:
  // `mirror`: a second tracker that gets the same acknowledgements (the probe).
  StreamPublishers(const std::string& target, int streams, std::chrono::microseconds linger, size_t max_batch,
                   Tracker& tracker, Tracker* mirror)
      : linger_(linger), max_batch_(max_batch), tracker_(tracker), mirror_(mirror) {
    for (int s = 0; s < streams; ++s) {
      auto st = std::make_unique<Stream>();
      grpc::ChannelArguments args;
      args.SetInt("sluice.bench.channel", s);  // separate connections per stream
      st->stub = v1::EventGateway::NewStub(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
      st->ctx.AddMetadata("authorization", common::Cat("Bearer ", kToken));
      st->stream = st->stub->PublishStream(&st->ctx);
      st->reader = std::thread([this, raw = st.get()] { Read(*raw); });
      if (linger_.count() > 0) st->flusher = std::thread([this, raw = st.get()] { Linger(*raw); });
      streams_.push_back(std::move(st));
    }
  }
  ~StreamPublishers() {
    for (auto& s : streams_) {
      if (s->flusher.joinable()) {
        {
          std::lock_guard lock(s->mu);
          s->closing = true;
        }
        s->cv.notify_all();
        s->flusher.join();
      }
      {
        std::lock_guard lock(s->write_mu);
        s->stream->WritesDone();
      }
      s->reader.join();
      grpc::Status st = s->stream->Finish();
      if (!st.ok()) std::fprintf(stderr, "stream: %s\n", st.error_message().c_str());
    }
  }
  void Publish(int publisher, const Event& e) {
    Stream& s = *streams_[static_cast<size_t>(publisher) % streams_.size()];
    if (linger_.count() == 0) {
      v1::PublishStreamRequest req;
      *req.mutable_envelope() = e.envelope;
      Send(s, req, {e.timed});
      return;
    }
    std::unique_lock lock(s.mu);
    if (s.pending.envelopes_size() == 0) s.first = Clock::now();
    *s.pending.add_envelopes() = e.envelope;
    s.pending_timed.push_back(e.timed);
    if (static_cast<size_t>(s.pending.envelopes_size()) >= max_batch_) {
      Flush(s, lock);
    } else if (s.pending.envelopes_size() == 1) {
      lock.unlock();
      s.cv.notify_all();
    }
  }
  int64_t errors() const { return errors_.load(); }
  // Envelopes per message sent so far.
  double mean_batch() const {
    const int64_t m = messages_.load();
    return m == 0 ? 0 : static_cast<double>(envelopes_.load()) / static_cast<double>(m);
  }

 private:
  struct Stream {
    std::unique_ptr<v1::EventGateway::Stub> stub;
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReaderWriter<v1::PublishStreamRequest, v1::PublishStreamResponse>> stream;
    std::thread reader, flusher;
    std::mutex write_mu;
    uint64_t next_seq = 0;  // under write_mu
    std::mutex timed_mu;
    std::unordered_map<uint64_t, std::vector<bool>> timed;  // per sequence, per envelope
    // The buffer (linger > 0).
    std::mutex mu;
    std::condition_variable cv;
    v1::PublishStreamRequest pending;
    std::vector<bool> pending_timed;
    Clock::time_point first;
    bool closing = false;
  };

  void Send(Stream& s, v1::PublishStreamRequest& req, std::vector<bool> timed) {
    const auto n = static_cast<int64_t>(timed.size());
    std::lock_guard lock(s.write_mu);
    const uint64_t seq = s.next_seq++;
    req.set_sequence(seq);
    {
      std::lock_guard tl(s.timed_mu);
      s.timed[seq] = std::move(timed);
    }
    messages_++;
    envelopes_ += n;
    if (!s.stream->Write(req)) errors_ += n;
  }
  // Sends the buffer; called with s.mu held through `lock`, returns with it released.
  void Flush(Stream& s, std::unique_lock<std::mutex>& lock) {
    v1::PublishStreamRequest req;
    req.Swap(&s.pending);
    std::vector<bool> timed;
    timed.swap(s.pending_timed);
    lock.unlock();
    Send(s, req, std::move(timed));
  }
  void Linger(Stream& s) {
    std::unique_lock lock(s.mu);
    while (true) {
      s.cv.wait(lock, [&] { return s.closing || s.pending.envelopes_size() > 0; });
      if (s.pending.envelopes_size() == 0) return;  // closing, nothing left
      const auto due = s.first + linger_;
      if (!s.closing && Clock::now() < due) {
        s.cv.wait_until(lock, due);
        continue;  // re-check: Publish may have flushed a full buffer meanwhile
      }
      Flush(s, lock);
      lock.lock();
    }
  }
  void Read(Stream& s) {
    v1::PublishStreamResponse r;
    while (s.stream->Read(&r)) {
      const auto now = Clock::now();
      std::vector<bool> timed;
      {
        std::lock_guard lock(s.timed_mu);
        auto it = s.timed.find(r.sequence());
        if (it != s.timed.end()) {
          timed = std::move(it->second);
          s.timed.erase(it);
        }
      }
      if (r.has_error() || (!r.has_ack() && r.results_size() == 0)) {
        if (errors_.fetch_add(static_cast<int64_t>(std::max<size_t>(timed.size(), 1))) == 0)
          std::fprintf(stderr, "stream: %s\n", r.error().message().c_str());
        continue;
      }
      auto ack = [&](const v1::Delivery& d, size_t i) {
        const bool t = i < timed.size() && timed[i];
        tracker_.Ack(d.event_id(), t, now);
        if (mirror_ != nullptr) mirror_->Ack(d.event_id(), t, now);
      };
      if (r.has_ack()) ack(r.ack(), 0);
      for (int i = 0; i < r.results_size(); ++i) {
        if (r.results(i).has_ack()) {
          ack(r.results(i).ack(), static_cast<size_t>(i));
        } else if (errors_++ == 0) {
          std::fprintf(stderr, "stream: %s\n", r.results(i).error().message().c_str());
        }
      }
    }
  }

  const std::chrono::microseconds linger_;
  const size_t max_batch_;
  Tracker& tracker_;
  Tracker* mirror_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::atomic<int64_t> errors_{0}, messages_{0}, envelopes_{0};
};

// sluice::kafka::Consumer::Run on its own thread; the handler stamps each batch once, on
// entry, and records the wrapper's cadence: batch sizes, and the time from one handler
// return to the next call (the synchronous commit plus the next poll).
class WrapperConsumer {
 public:
  WrapperConsumer(kafka::ConsumerConfig config, Tracker& tracker) : tracker_(tracker) {
    auto c = kafka::Consumer::Create(std::move(config));
    if (!c.ok()) {
      std::fprintf(stderr, "consumer: %s\n", std::string(c.status().message()).c_str());
      std::exit(1);
    }
    consumer_ = *std::move(c);
    thread_ = std::thread([this] {
      auto s = consumer_->Run([this](const std::vector<kafka::Record>& batch) {
        const auto now = Clock::now();
        for (const auto& r : batch) tracker_.Recv(r.envelope.id(), now);
        std::lock_guard lock(mu_);
        if (measuring_) {
          if (last_return_.has_value()) gaps_ms_.push_back(Ms(now - *last_return_));
          batch_sizes_.push_back(batch.size());
        }
        last_return_ = Clock::now();
        return absl::OkStatus();
      });
      if (!s.ok()) std::fprintf(stderr, "consumer: %s\n", std::string(s.message()).c_str());
    });
  }
  ~WrapperConsumer() {
    consumer_->Stop();
    thread_.join();
  }
  void Measure(bool on) {
    std::lock_guard lock(mu_);
    measuring_ = on;
    last_return_.reset();
  }
  std::vector<double> gaps_ms() {
    std::lock_guard lock(mu_);
    return gaps_ms_;
  }
  std::vector<size_t> batch_sizes() {
    std::lock_guard lock(mu_);
    return batch_sizes_;
  }

 private:
  Tracker& tracker_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::thread thread_;
  std::mutex mu_;
  bool measuring_ = false;
  std::optional<Clock::time_point> last_return_;
  std::vector<double> gaps_ms_;
  std::vector<size_t> batch_sizes_;
};

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice;
  using namespace sluice::bench;
  int rate = 10000, seconds = 10, rounds = 2, publishers = 4, streams = 1;
  double linger_ms = 1;
  size_t stream_batch = 500;
  size_t max_batch = kafka::ConsumerConfig{}.max_batch;
  int batch_wait_ms = static_cast<int>(absl::ToInt64Milliseconds(kafka::ConsumerConfig{}.batch_wait));
  std::string fetch_wait_max_ms, fetch_min_bytes;
  bool raw_sync_commit = false, probe = false;
  std::string bootstrap = common::DefaultKafkaBootstrap();
  CLI::App app{"e2e_latency_bench: publish ack -> consumer receipt, gateway + sluice Consumer vs raw librdkafka"};
  app.add_option("--rate", rate, "Events per second, all publishers together")->capture_default_str();
  app.add_option("--seconds", seconds, "Length of each timed phase")->capture_default_str();
  app.add_option("--rounds", rounds, "Timed phases per path, alternating raw and gateway")->capture_default_str();
  app.add_option("--publishers", publishers, "Concurrent publisher threads (both paths)")
      ->check(CLI::Range(1, 8))
      ->capture_default_str();
  app.add_option("--streams", streams, "PublishStream calls (one connection each) the gateway path's publishers share")
      ->check(CLI::Range(1, 8))
      ->capture_default_str();
  app.add_option("--linger-ms", linger_ms,
                 "Gateway path: how long a stream's first buffered event waits for others (0: one event per "
                 "message); the raw producer lingers 1 ms")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  app.add_option("--stream-batch", stream_batch, "Gateway path: envelopes per PublishStream message at most")
      ->check(CLI::Range(1, 500))
      ->capture_default_str();
  app.add_option("--max-batch", max_batch, "Consumer max_batch (gateway path)")->capture_default_str();
  app.add_option("--batch-wait-ms", batch_wait_ms, "Consumer batch_wait (gateway path)")->capture_default_str();
  app.add_option("--fetch-wait-max-ms", fetch_wait_max_ms,
                 "fetch.wait.max.ms for both consumers (default: librdkafka's)");
  app.add_option("--fetch-min-bytes", fetch_min_bytes, "fetch.min.bytes for both consumers (default: librdkafka's)");
  app.add_flag("--raw-sync-commit", raw_sync_commit,
               "Raw consumer commits synchronously after each run of fetched records, as the wrapper does");
  app.add_flag("--probe", probe,
               "Also read the gateway's topic with a plain consumer (own group) during gateway phases: "
               "separates the wrapper's share from the gateway producer's");
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  common::InitLogging("e2e_latency_bench", "warn");

  std::map<std::string, std::string> consumer_settings;
  if (!fetch_wait_max_ms.empty()) consumer_settings["fetch.wait.max.ms"] = fetch_wait_max_ms;
  if (!fetch_min_bytes.empty()) consumer_settings["fetch.min.bytes"] = fetch_min_bytes;

  const std::string prefix = common::Cat("bench-e2e-", std::random_device{}(), ".");
  auto catalog = contracts::Catalog::Default().WithTopicPrefix(prefix);
  const v1::TopicSpec* gw_spec = nullptr;
  const std::string gw_topic = catalog.Find("data.refreshed")->topic;
  for (const auto& t : catalog.topics())
    if (t.name() == gw_topic) gw_spec = &t;
  v1::TopicSpec raw_spec = *gw_spec;  // same partitions and retention
  raw_spec.set_name(prefix + "raw");
  if (auto r = kafka::EnsureTopics(bootstrap, catalog); !r.ok()) {
    std::fprintf(stderr, "topics: %s (is the stack up?)\n", std::string(r.status().message()).c_str());
    return 1;
  }
  if (auto r = kafka::EnsureTopics(bootstrap, std::vector<v1::TopicSpec>{raw_spec}); !r.ok()) {
    std::fprintf(stderr, "topics: %s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  std::vector<std::string> all_topics{raw_spec.name()};
  for (const auto& t : catalog.topics()) all_topics.push_back(t.name());

  auto vectors = contracts::LoadVectors(std::string(SLUICE_SOURCE_DIR) + "/contracts/vectors");
  v1::Envelope tmpl;
  for (const auto& v : *vectors)
    if (v.type == "data.refreshed") tmpl = v.envelope;

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

  Tracker raw_tracker, gw_tracker, probe_tracker;
  int64_t gw_errors = 0, raw_failed = 0;
  double envelopes_per_message = 0;
  std::vector<double> gaps;
  std::vector<size_t> batch_sizes;
  std::vector<double> raw_commits;
  bench::CpuMeter raw_cpu, gw_cpu;
  {
    kafka::ConsumerConfig cc{.bootstrap_servers = bootstrap,
                             .group_id = prefix + "gateway-path",
                             .client_id = "e2e-bench",
                             .topics = {gw_topic},
                             .max_batch = max_batch,
                             .batch_wait = absl::Milliseconds(batch_wait_ms)};
    cc.librdkafka = consumer_settings;
    WrapperConsumer wrapper(std::move(cc), gw_tracker);
    RawConsumer raw_consumer(bootstrap, prefix + "raw-path", raw_spec.name(), consumer_settings, raw_sync_commit,
                             raw_tracker);
    std::unique_ptr<RawConsumer> probe_consumer;
    if (probe)
      probe_consumer = std::make_unique<RawConsumer>(bootstrap, prefix + "probe", gw_topic, consumer_settings,
                                                     raw_sync_commit, probe_tracker);
    RawProducer raw_producer(bootstrap, raw_tracker);
    StreamPublishers gw_streams(target, streams, std::chrono::microseconds(static_cast<int64_t>(linger_ms * 1000)),
                                stream_batch, gw_tracker, probe ? &probe_tracker : nullptr);
    auto publish_gw = [&](int p, const Event& e) { gw_streams.Publish(p, e); };

    const size_t n = static_cast<size_t>(rate) * static_cast<size_t>(seconds);
    std::printf(
        "e2e_latency_bench: %d events/s from %d publishers, %d x %d s per path, %zu-byte records, %d "
        "partitions; gateway path: %d PublishStream call(s), %s\n",
        rate, publishers, rounds, seconds, MakeEvents(tmpl, 1, false)[0].value.size(), gw_spec->partitions(), streams,
        linger_ms > 0 ? common::Cat("linger ", linger_ms, " ms, up to ", stream_batch, " envelopes per message").c_str()
                      : "one event per message");
    std::fflush(stdout);

    // Warm-up, untimed: metadata, producer ids, connections and the group joins. Keeps
    // sending until every consumer has received what was sent.
    for (int attempt = 0; attempt < 30; ++attempt) {
      auto warm = MakeEvents(tmpl, static_cast<size_t>(rate / 5), false);
      Paced(warm.size(), rate, publishers,
            [&](int, size_t i, Clock::time_point) { raw_producer.Produce(raw_spec.name(), warm[i]); });
      Paced(warm.size(), rate, publishers, [&](int p, size_t i, Clock::time_point) { publish_gw(p, warm[i]); });
      std::this_thread::sleep_for(std::chrono::seconds(1));
      // Joined when the last warm-up event of each path has arrived.
      bool ok = raw_tracker.Received(warm.back().id) && gw_tracker.Received(warm.back().id);
      if (probe) ok = ok && probe_tracker.Received(warm.back().id);
      if (ok) break;
      if (attempt == 29) {
        std::fprintf(stderr, "warm-up: consumers did not receive within 30 rounds\n");
        return 1;
      }
    }

    auto wait_all = [&](Tracker& t, int64_t expected) {
      if (!t.AwaitReceipts(expected, std::chrono::seconds(30)))
        std::fprintf(stderr, "timed phase: not every acknowledged event was received within 30 s\n");
    };
    int64_t raw_expected = 0, gw_expected = 0;
    for (int r = 0; r < rounds; ++r) {
      auto raw_events = MakeEvents(tmpl, n, true);
      bench::CpuMeter::Mark start = bench::CpuMeter::Now();
      Paced(n, rate, publishers, [&](int, size_t i, Clock::time_point due) {
        raw_tracker.Sent(raw_events[i].id, due);
        raw_producer.Produce(raw_spec.name(), raw_events[i]);
      });
      raw_expected += static_cast<int64_t>(n);
      wait_all(raw_tracker, raw_expected);
      raw_cpu.Add(start, bench::CpuMeter::Now());

      auto gw_events = MakeEvents(tmpl, n, true);
      wrapper.Measure(true);
      start = bench::CpuMeter::Now();
      Paced(n, rate, publishers, [&](int p, size_t i, Clock::time_point due) {
        gw_tracker.Sent(gw_events[i].id, due);
        if (probe) probe_tracker.Sent(gw_events[i].id, due);
        publish_gw(p, gw_events[i]);
      });
      gw_expected += static_cast<int64_t>(n);
      wait_all(gw_tracker, gw_expected - gw_streams.errors());
      gw_cpu.Add(start, bench::CpuMeter::Now());
      wrapper.Measure(false);
      if (probe) wait_all(probe_tracker, gw_expected - gw_streams.errors());
    }
    gw_errors = gw_streams.errors();
    envelopes_per_message = gw_streams.mean_batch();
    raw_failed = raw_producer.failed();
    gaps = wrapper.gaps_ms();
    batch_sizes = wrapper.batch_sizes();
    raw_commits = raw_consumer.commit_ms();
  }

  // Two measures: from the acknowledgement (the target's), and from the hand-over to the
  // publisher, which batching cannot flatter: a batched event is acknowledged only with the
  // last of its message, so its ack -> receipt shrinks (often below zero) while its
  // hand-over -> receipt does not.
  for (const bool from_send : {false, true}) {
    int64_t raw_missing, raw_neg, gw_missing, gw_neg;
    const Percentiles r = Summarize(raw_tracker.Latencies(&raw_missing, &raw_neg, from_send));
    const Percentiles g = Summarize(gw_tracker.Latencies(&gw_missing, &gw_neg, from_send));
    std::printf("\n%-42s events      p50      p90      p99      max\n",
                from_send ? "hand-over -> receipt (ms)" : "ack -> receipt (ms)");
    std::printf(
        "  raw producer -> raw consumer           %8zu  %7.2f  %7.2f  %7.2f  %7.2f   (%lld missing, %lld "
        "negative, %lld failed)\n",
        r.n, r.p50, r.p90, r.p99, r.max, static_cast<long long>(raw_missing), static_cast<long long>(raw_neg),
        static_cast<long long>(raw_failed));
    std::printf(
        "  gateway PublishStream -> Consumer      %8zu  %7.2f  %7.2f  %7.2f  %7.2f   (%lld missing, %lld "
        "negative, %lld errors)\n",
        g.n, g.p50, g.p90, g.p99, g.max, static_cast<long long>(gw_missing), static_cast<long long>(gw_neg),
        static_cast<long long>(gw_errors));
    if (probe) {
      int64_t pm, pn;
      const Percentiles pr = Summarize(probe_tracker.Latencies(&pm, &pn, from_send));
      std::printf(
          "  gateway PublishStream -> raw consumer  %8zu  %7.2f  %7.2f  %7.2f  %7.2f   (%lld missing, %lld "
          "negative; the probe)\n",
          pr.n, pr.p50, pr.p90, pr.p99, pr.max, static_cast<long long>(pm), static_cast<long long>(pn));
    }
    const double bound = 1.5 * r.p99 + 1.0;
    std::printf("  %s: gateway p99 <= 1.5 x raw p99 + 1 ms = %.2f ms: %s (gateway p99 %.2f)\n",
                from_send ? "same bound from the hand-over" : "target", bound, g.p99 <= bound ? "met" : "NOT met",
                g.p99);
  }
  const Percentiles gp = Summarize(gaps);
  std::vector<double> sizes(batch_sizes.begin(), batch_sizes.end());
  const Percentiles bs = Summarize(sizes);
  std::printf(
      "consumer wrapper cadence (timed phases): %zu batches, size p50 %.0f p99 %.0f max %.0f; handler "
      "return -> next call (commit + poll) p50 %.2f p90 %.2f p99 %.2f max %.2f ms\n",
      bs.n, bs.p50, bs.p99, bs.max, gp.p50, gp.p90, gp.p99, gp.max);
  std::printf("gateway path: %.1f envelopes per PublishStream message on average (warm-up included)\n",
              envelopes_per_message);
  std::printf("CPU in the timed phases (cores busy on average; the machine has %u):\n",
              std::thread::hardware_concurrency());
  raw_cpu.Print("raw");
  gw_cpu.Print("gateway");
  if (raw_sync_commit) {
    const Percentiles c = Summarize(raw_commits);
    std::printf("raw consumer synchronous commits: %zu, p50 %.2f p99 %.2f max %.2f ms\n", c.n, c.p50, c.p99, c.max);
  }

  (*gw)->Shutdown(absl::Seconds(5));
  (void)kafka::DeleteTopics(bootstrap, all_topics);
  return 0;
}
