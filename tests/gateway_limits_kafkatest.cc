// sluice-gateway under a hostile client: what it keeps per caller stays bounded (metric
// series, PublishStream buffering, open streams and their threads). Against the real
// local broker, with the gateway in this process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "contracts/test_util.h"
#include "sluice/v1/event_query.grpc.pb.h"
#include "tests/gateway_fixture.h"

namespace sluice {
namespace {

using contracts::testing::Golden;
using ::testing::HasSubstr;

// Resident memory of this process (the gateway runs in it), in bytes.
int64_t ResidentBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmRSS:  1234 kB"
  return -1;
}

// Events the gateway has answered with `status`, summed over types and sources.
double Answered(prometheus::Registry& registry, const std::string& status) {
  double n = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != "sluice_gateway_events_total") continue;
    for (const auto& m : family.metric)
      for (const auto& l : m.label)
        if (l.name == "status" && l.value == status) n += m.counter.value;
  }
  return n;
}

// Threads of this process.
int Threads() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    (void)e;
    ++n;
  }
  return n;
}

std::string RandomText(std::mt19937_64& rng, size_t n) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789.-_";
  std::string s(n, 'x');
  for (char& c : s) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return s;
}

class GatewayLimits : public testing::GatewayTest {
 protected:
  static constexpr size_t kInFlight = 16;
  static constexpr size_t kStreamsPerPrincipal = 2;

  void SetUp() override {
    config_overrides_ = [](gateway::GatewayConfig& c) {
      c.max_in_flight_per_stream = kInFlight;
      c.max_streams_per_principal = kStreamsPerPrincipal;
      c.max_streams = 16;
    };
    testing::GatewayTest::SetUp();
    if (HasFatalFailure()) return;
    query_ = v1::EventQueryService::NewStub(channel_);
  }
  void TearDown() override {
    query_.reset();
    testing::GatewayTest::TearDown();
  }

  std::unique_ptr<grpc::ClientContext> ShortCtx(const char* token, int seconds) {
    auto ctx = Ctx(token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
    return ctx;
  }

  std::unique_ptr<v1::EventQueryService::Stub> query_;
};

TEST_F(GatewayLimits, RefusedEventsWithInventedTypesAndSourcesAddNoMetricSeries) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    v1::Envelope e = Golden("data.refreshed");
    e.clear_id();
    if (i % 2 == 0) e.set_type(RandomText(rng, 40));  // odd ones keep a known type
    e.set_source(RandomText(rng, 40));
    v1::PublishRequest req;
    *req.mutable_envelope() = e;
    v1::PublishResponse resp;
    auto ctx = Ctx(testing::kTokenA);
    grpc::Status s = events_->Publish(ctx.get(), req, &resp);
    ASSERT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << i << ": " << s.error_message();
  }

  // Every label value comes from the catalog or is "unknown".
  size_t events_series = 0;
  for (const auto& family : registry_.Collect()) {
    if (family.name != "sluice_gateway_events_total" && family.name != "sluice_gateway_rate_limited_total") continue;
    if (family.name == "sluice_gateway_events_total") events_series = family.metric.size();
    for (const auto& m : family.metric) {
      for (const auto& l : m.label) {
        if (l.name == "type") {
          EXPECT_TRUE(l.value == "unknown" || catalog_->Find(l.value) != nullptr) << l.value;
        } else if (l.name == "source") {
          EXPECT_TRUE(l.value == "unknown" || catalog_->IsKnownSource(l.value)) << l.value;
        }
      }
    }
  }
  // Two series here: {unknown, unknown, invalid_argument} and {data.refreshed, unknown, invalid_argument}.
  EXPECT_GT(events_series, 0u);
  EXPECT_LT(events_series, 100u);
  // And so what a scrape of /metrics carries.
  const std::string text = prometheus::TextSerializer().Serialize(registry_.Collect());
  size_t lines = 0;
  for (size_t at = text.find("\nsluice_gateway_events_total{"); at != std::string::npos;
       at = text.find("\nsluice_gateway_events_total{", at + 1))
    ++lines;
  EXPECT_LT(lines, 100u);
}

TEST_F(GatewayLimits, PublishStreamStopsReadingForAClientThatNeverReadsItsAcks) {
  // Invalid events of ~200 KiB: each is answered at once (never waits for the broker), and
  // its error echoes the unknown type. Before the fix the gateway kept reading them all
  // and queued every ack behind the blocked writer.
  constexpr size_t kEvents = 400;  // 25 x the cap: ~80 MiB sent if nothing pushed back
  constexpr size_t kMessage = 200 * 1024;
  std::mt19937_64 rng(7);
  v1::PublishStreamRequest req;
  *req.mutable_envelope() = Golden("data.refreshed");
  req.mutable_envelope()->set_type(RandomText(rng, kMessage));

  // A client that takes in little of what is sent to it: a small HTTP/2 window that
  // does not grow (as one that stops reading its socket would). Its unread acks fill
  // that window, and then the gateway's Write blocks. (With gRPC's default growing
  // window the client itself absorbs a few hundred of these short acks.)
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = v1::EventGateway::NewStub(
      grpc::CreateCustomChannel(common::Cat("127.0.0.1:", gateway_->port()), grpc::InsecureChannelCredentials(), args));

  const int64_t before = ResidentBytes();
  ASSERT_GT(before, 0);
  auto ctx = Ctx(testing::kTokenA);
  auto stream = stub->PublishStream(ctx.get());
  std::atomic<size_t> written{0};
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (size_t i = 0; i < kEvents; ++i) {
      req.set_sequence(i);
      if (!stream->Write(req)) break;
      ++written;
    }
    writing = false;
  });
  // Wait until the client's writes stop making progress (or all went through, which is
  // the failure): no progress for 3 s, at most 60 s in all.
  size_t last = 0;
  absl::Time progressed = absl::Now();
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (writing && absl::Now() < give_up && absl::Now() - progressed < absl::Seconds(3)) {
    absl::SleepFor(absl::Milliseconds(100));
    if (size_t n = written.load(); n != last) {
      last = n;
      progressed = absl::Now();
    }
  }
  const int64_t after = ResidentBytes();
  const size_t sent = written.load();
  const double read = Answered(registry_, "invalid_argument");  // events the gateway took in

  // The gateway reads kInFlight events past the acks the client has taken (its small
  // window holds a dozen or so); what else the client wrote sits in gRPC's flow-control
  // windows and the loopback socket buffers. Before the fix it read all 400.
  EXPECT_LT(sent, kEvents) << "the gateway read every event of a client that reads no acks";
  EXPECT_LE(read, 4.0 * kInFlight) << "sent " << sent;
  // Memory bound (client and gateway share this process): the gateway holds at most
  // kInFlight requests of ~200 KiB (+ their decoded envelopes, ~6 MiB) and acks of at
  // most ~1 KiB; the messages written but not read sit in the transports' windows,
  // (sent - read) x 200 KiB, ~6 MiB here. 48 MiB leaves room for allocator slack. Before
  // the fix: 400 acks echoing the 200 KiB type (80 MiB) plus the same type as a metric
  // label per event (another 80 MiB at least).
  EXPECT_LT(after - before, int64_t{48} << 20) << "RSS " << before << " -> " << after << ", sent " << sent;

  ctx->TryCancel();
  writer.join();
  (void)stream->Finish();
}

TEST_F(GatewayLimits, OpenStreamsAreCappedPerPrincipalAndThreadsStayBounded) {
  const int threads_before = Threads();
  v1::SubscribeRequest all;  // every event of the caller's tenants
  struct Open {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> reader;
  };
  auto subscribe = [&](const char* token, int seconds) {
    Open o{ShortCtx(token, seconds), nullptr};
    o.reader = query_->Subscribe(o.ctx.get(), all);
    o.reader->WaitForInitialMetadata();  // a live feed, or the refusal
    return o;
  };

  std::vector<Open> held;
  for (size_t i = 0; i < kStreamsPerPrincipal; ++i) held.push_back(subscribe(testing::kTokenA, 60));
  // Twenty more from the same principal, all at once.
  std::vector<Open> extra;
  for (int i = 0; i < 20; ++i) {
    Open o{ShortCtx(testing::kTokenA, 20), nullptr};
    o.reader = query_->Subscribe(o.ctx.get(), all);
    extra.push_back(std::move(o));
  }
  for (auto& o : extra) o.reader->WaitForInitialMetadata();
  Open other = subscribe(testing::kTokenB, 60);  // another principal still gets a feed

  // Two feeds of "a", one of "b": each Kafka reader has a handful of librdkafka threads.
  // Twenty-three open feeds would add well over a hundred.
  const int threads_open = Threads();
  EXPECT_LT(threads_open - threads_before, 60) << threads_before << " -> " << threads_open;

  for (auto& o : extra) {
    grpc::Status s = o.reader->Finish();  // a feed opened after all ends at its 20 s deadline
    EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("--max-streams-per-principal"));
  }
  // The count is shared with PublishStream and Replay.
  {
    auto ctx = ShortCtx(testing::kTokenA, 20);
    auto stream = events_->PublishStream(ctx.get());
    stream->WritesDone();
    EXPECT_EQ(stream->Finish().error_code(), grpc::RESOURCE_EXHAUSTED);
    auto rctx = ShortCtx(testing::kTokenA, 20);
    v1::ReplayRequest replay;
    replay.add_types("data.refreshed");
    auto r = query_->Replay(rctx.get(), replay);
    EXPECT_EQ(r->Finish().error_code(), grpc::RESOURCE_EXHAUSTED);
  }

  // "b"'s feed is live: it gets "b"'s event.
  {
    v1::Envelope e = Golden("data.refreshed");
    e.clear_id();
    e.set_tenant_id("tenant-b");
    v1::PublishRequest req;
    *req.mutable_envelope() = e;
    v1::PublishResponse resp;
    auto ctx = Ctx(testing::kTokenB);
    ASSERT_TRUE(events_->Publish(ctx.get(), req, &resp).ok());
    v1::SubscribeResponse got;
    ASSERT_TRUE(other.reader->Read(&got));
    EXPECT_EQ(got.event().envelope().id(), resp.delivery().event_id());
  }

  // Once "a"'s feeds end, "a" may open a new one (its slot frees when the gateway notices
  // the cancellation: retried for up to 30 s).
  for (auto& o : held) {
    o.ctx->TryCancel();
    (void)o.reader->Finish();
  }
  bool live = false;
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (!live && absl::Now() < give_up) {
    Open o = subscribe(testing::kTokenA, 30);
    v1::Envelope e = Golden("data.refreshed");
    e.clear_id();
    v1::PublishRequest req;
    *req.mutable_envelope() = e;
    v1::PublishResponse resp;
    auto ctx = Ctx(testing::kTokenA);
    ASSERT_TRUE(events_->Publish(ctx.get(), req, &resp).ok());
    v1::SubscribeResponse got;
    if (o.reader->Read(&got)) {
      EXPECT_EQ(got.event().envelope().id(), resp.delivery().event_id());
      live = true;
      o.ctx->TryCancel();
    }
    grpc::Status s = o.reader->Finish();
    if (!live) {
      ASSERT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED) << s.error_message();
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
  EXPECT_TRUE(live) << "no new feed for \"a\" after its feeds ended";
  other.ctx->TryCancel();
  (void)other.reader->Finish();
}

// A gateway whose gRPC sync-call threads are capped at 8.
class GatewayThreadQuota : public testing::GatewayTest {
 protected:
  void SetUp() override {
    config_overrides_ = [](gateway::GatewayConfig& c) {
      c.max_streams = 4;
      c.max_rpc_threads = 8;
    };
    testing::GatewayTest::SetUp();
  }
};

TEST_F(GatewayThreadQuota, AFloodOfSyncCallsIsAnsweredWithoutAThreadEach) {
  // GetEventHealth for an all-tenant caller asks the broker for consumer lag with a Kafka
  // client of its own (several threads) on a gRPC sync thread: 64 at once would be 64 of
  // each without the quota. With it, at most 8 run; the others are answered
  // RESOURCE_EXHAUSTED by gRPC or wait for a thread.
  auto stub = v1::EventQueryService::NewStub(channel_);
  const int threads_before = Threads();
  std::atomic<bool> sampling{true};
  std::atomic<int> peak{threads_before};
  std::thread sampler([&] {
    while (sampling) {
      peak = std::max(peak.load(), Threads());
      absl::SleepFor(absl::Milliseconds(5));
    }
  });
  constexpr int kCalls = 64;
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx;
    v1::GetEventHealthRequest req;
    v1::GetEventHealthResponse resp;
    grpc::Status status;
  };
  std::vector<Call> calls(kCalls);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  for (auto& c : calls) {
    c.ctx = Ctx(testing::kTokenOps);
    stub->async()->GetEventHealth(c.ctx.get(), &c.req, &c.resp, [&, call = &c](grpc::Status s) {
      std::lock_guard lock(mu);
      call->status = std::move(s);
      ++done;
      cv.notify_all();
    });
  }
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done == kCalls; });  // each call has its 60 s deadline
  }
  sampling = false;
  sampler.join();
  int ok = 0;
  for (const auto& c : calls) {
    if (c.status.ok()) ++ok;
    EXPECT_TRUE(c.status.ok() || c.status.error_code() == grpc::RESOURCE_EXHAUSTED) << c.status.error_message();
  }
  EXPECT_GT(ok, 0);
  // 8 sync threads with a Kafka client each (~5 threads) and the client's own threads.
  EXPECT_LT(peak - threads_before, 100) << threads_before << " -> peak " << peak << ", " << ok << " ok";
}

}  // namespace
}  // namespace sluice
