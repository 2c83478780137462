// approvals_bench: approvals per second end to end (Approve call until all of its events
// are in Kafka) through sluice-gateway, PostgreSQL, the outbox and sluice-relay, and the
// relay's lag (row written to broker acknowledgement) p50/p90/p99/max. With --rate the
// Approve calls are paced (open loop) instead of issued as fast as the callers go, so the
// lag is measured at a fixed load rather than at saturation. Baseline in the same run: a
// plain librdkafka producer sending the same number of events of the same size.
// Needs the local stack; creates and drops its own topics and schema.
#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <set>
#include <thread>

#include "common/env.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/json.h"
#include "gateway/server.h"
#include "kafka/consumer.h"
#include "kafka/topic_admin.h"
#include "producers/relay/relay.h"
#include "sluice/v1/approval_service.grpc.pb.h"

namespace {

using namespace sluice;
using Clock = std::chrono::steady_clock;
// Requests are raised by one principal and decided by another: the gateway refuses a
// decision by the approval's own requester.
constexpr char kRequesterToken[] = "bench-requester";
constexpr char kStewardToken[] = "bench-steward";

double RawEventsPerSecond(const std::string& bootstrap, const contracts::Catalog& catalog, int events, size_t bytes) {
  auto p = kafka::Producer::Create({.bootstrap_servers = bootstrap, .linger = absl::Milliseconds(1)}, catalog);
  std::string value(bytes, 'x');
  const std::string topic = catalog.Find("approval.approved")->topic;
  kafka::EncodedRecord warm{.topic = topic, .key = "tenant-bench", .value = value, .event_id = "warm"};
  (void)(*p)->Flush(absl::Seconds(1));
  (*p)->SendRecord(warm, [](auto) {});
  (void)(*p)->Flush(absl::Seconds(30));
  const auto start = Clock::now();
  for (int i = 0; i < events; ++i)
    (*p)->SendRecord({.topic = topic, .key = "tenant-bench", .value = value, .event_id = "e"}, [](auto) {});
  (void)(*p)->Flush(absl::Seconds(60));
  return events / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  int approvals = 1000, clients = 8;
  double rate = 0;
  std::string bootstrap = common::DefaultKafkaBootstrap(), dsn = common::DefaultPgDsn();
  CLI::App app{"approvals_bench: end-to-end approvals/s and relay lag, next to raw librdkafka"};
  app.add_option("--approvals", approvals, "Approvals to decide")->capture_default_str();
  app.add_option("--clients", clients, "Concurrent Approve callers")->capture_default_str();
  app.add_option("--rate", rate, "Approvals per second to offer (paced, open loop); 0 = as fast as the callers go")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  common::InitLogging("approvals_bench", "warn");

  const std::string tag = common::Cat(std::random_device{}());
  const std::string prefix = common::Cat("bench-", tag, "."), schema = common::Cat("bench_", tag);
  auto catalog = contracts::Catalog::Default().WithTopicPrefix(prefix);
  if (auto r = kafka::EnsureTopics(bootstrap, catalog); !r.ok()) {
    std::fprintf(stderr, "topics: %s (is the stack up?)\n", std::string(r.status().message()).c_str());
    return 1;
  }
  auto conn = common::PgConnection::Connect(dsn);
  if (!conn.ok() || !conn->ExecScript(common::Cat("CREATE SCHEMA ", schema, "; SET search_path TO ", schema)).ok() ||
      !common::Migrate(*conn, std::string(SLUICE_SOURCE_DIR) + "/sql/migrations").ok()) {
    std::fprintf(stderr, "postgres set-up failed\n");
    return 1;
  }
  auto tokens = gateway::TokenStore::Parse(
      common::Cat("principals { name: \"bench-requester\" token_sha256: \"", gateway::Sha256Hex(kRequesterToken),
                  "\" tenants: \"*\" } principals { name: \"bench-steward\" token_sha256: \"",
                  gateway::Sha256Hex(kStewardToken), "\" tenants: \"*\" roles: \"metadata_steward\" }"));
  prometheus::Registry registry;
  auto gw = gateway::Gateway::Start(
      {.listen = "127.0.0.1:0", .bootstrap_servers = bootstrap, .pg_dsn = dsn, .pg_schema = schema}, *std::move(tokens),
      gateway::RateLimiter(), catalog, registry);
  auto relay_producer =
      kafka::Producer::Create({.bootstrap_servers = bootstrap, .linger = absl::Milliseconds(1)}, catalog);
  auto relay = relay::Relay::Create({.pg_dsn = dsn, .poll_interval = absl::Milliseconds(100), .pg_schema = schema},
                                    **relay_producer);
  std::thread relay_thread([&] { (*relay)->Run(); });
  auto stub = v1::ApprovalService::NewStub(
      grpc::CreateChannel(common::Cat("127.0.0.1:", (*gw)->port()), grpc::InsecureChannelCredentials()));
  auto ctx = [](const char* token) {
    auto c = std::make_unique<grpc::ClientContext>();
    c->AddMetadata("authorization", common::Cat("Bearer ", token));
    return c;
  };

  // Pending tier1 metadata approvals (3 events each when approved), created untimed.
  // 16 more (one per tenant) are approved before the clock starts, so the relay's producer
  // has looked up every topic an approval writes to: the first record to a new topic waits
  // for its metadata, a one-off that is not the lag under load.
  constexpr int kWarm = 16;
  std::vector<std::string> ids;
  for (int i = 0; i < approvals + kWarm; ++i) {
    v1::CreateApprovalRequest req;
    req.set_tenant_id(common::Cat("tenant-", i % 16));
    req.set_entity_type(v1::ENTITY_TYPE_METADATA);
    req.set_entity_key(common::Cat("metric_", i));
    req.set_tier(v1::TIER_1);
    req.set_lane(v1::LANE_GOVERNED);
    req.set_required_role("metadata_steward");
    (void)contracts::FromJson(R"({"label":"Metric","binding":{"schema":"public","table":"t"}})",
                              *req.mutable_payload());
    v1::CreateApprovalResponse resp;
    auto c = ctx(kRequesterToken);
    if (auto st = stub->CreateApproval(c.get(), req, &resp); !st.ok()) {
      std::fprintf(stderr, "CreateApproval: %s\n", st.error_message().c_str());
      return 1;
    }
    ids.push_back(resp.approval().id());
  }
  for (int i = approvals; i < approvals + kWarm; ++i) {
    v1::ApproveRequest req;
    req.set_tenant_id(common::Cat("tenant-", i % 16));
    req.set_id(ids[i]);
    v1::ApproveResponse resp;
    auto c = ctx(kStewardToken);
    if (auto st = stub->Approve(c.get(), req, &resp); !st.ok()) {
      std::fprintf(stderr, "Approve (warm-up): %s\n", st.error_message().c_str());
      return 1;
    }
  }
  for (int i = 0; i < 300; ++i) {  // let the relay publish the approval.created and warm-up events
    auto r = conn->Exec("SELECT count(*) FROM event_outbox WHERE sent_at IS NULL");
    if (r.ok() && r->Get(0, 0) == "0") break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  (void)conn->ExecScript("TRUNCATE event_outbox");

  // A consumer over every topic, started before the clock, counting approval.approved.
  std::vector<std::string> topics;
  for (const auto& t : catalog.topics()) topics.push_back(t.name());
  auto consumer = kafka::Consumer::Create({.bootstrap_servers = bootstrap,
                                           .group_id = prefix + "reader",
                                           .topics = topics,
                                           .types = {"approval.approved"},
                                           .auto_offset_reset = "latest"});
  std::atomic<int> seen{0};
  std::atomic<bool> reading{true};
  std::thread reader([&] {
    while (reading.load())
      (void)(*consumer)->PollOnce([&](const std::vector<kafka::Record>& b) {
        seen += static_cast<int>(b.size());
        return absl::OkStatus();
      });
  });
  absl::SleepFor(absl::Seconds(3));  // group joined, positioned at the end

  const auto start = Clock::now();
  std::atomic<size_t> next{0};
  std::atomic<int> failed{0}, late{0};
  std::vector<double> call_ms(approvals);  // each caller writes only the slots it took
  std::vector<std::thread> callers;
  for (int t = 0; t < clients; ++t)
    callers.emplace_back([&] {
      for (size_t i; (i = next++) < static_cast<size_t>(approvals);) {
        if (rate > 0) {  // approval i is due at start + i/rate; a caller behind schedule sends at once
          const auto due = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / rate));
          if (Clock::now() > due + std::chrono::milliseconds(10)) ++late;
          std::this_thread::sleep_until(due);
        }
        v1::ApproveRequest req;
        req.set_tenant_id(common::Cat("tenant-", i % 16));
        req.set_id(ids[i]);
        v1::ApproveResponse resp;
        auto c = ctx(kStewardToken);
        const auto sent = Clock::now();
        if (!stub->Approve(c.get(), req, &resp).ok()) ++failed;
        call_ms[i] = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
      }
    });
  for (auto& t : callers) t.join();
  const double approve_s = std::chrono::duration<double>(Clock::now() - start).count();
  while (seen.load() < approvals - failed.load() && std::chrono::duration<double>(Clock::now() - start).count() < 120)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const double e2e_s = std::chrono::duration<double>(Clock::now() - start).count();
  reading = false;
  reader.join();

  for (int i = 0; i < 300; ++i) {  // the relay's last commit may trail the broker's acks
    auto r = conn->Exec("SELECT count(*) FROM event_outbox WHERE sent_at IS NULL");
    if (r.ok() && r->Get(0, 0) == "0") break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  // created_at is the writer's transaction start (now()), so the lag includes the Approve
  // transaction itself (commit with fsync); sent_at is taken after the broker's ack.
  auto lag = conn->Exec(
      "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)) * 1000,"
      " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)) * 1000,"
      " count(*), avg(length(envelope)),"
      " percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)) * 1000,"
      " max(extract(epoch FROM sent_at - created_at)) * 1000"
      " FROM event_outbox WHERE sent_at IS NOT NULL");
  if (!lag.ok() || lag->Get(0, 2) == "0") {
    std::fprintf(stderr, "no approval reached Kafka (%d of %d Approve calls failed)\n", failed.load(), approvals);
    return 1;
  }
  const int events = std::stoi(std::string(lag->Get(0, 2)));
  const size_t bytes = static_cast<size_t>(std::stod(std::string(lag->Get(0, 3))));
  const double raw =
      RawEventsPerSecond(bootstrap, catalog, std::max(events, 100000), bytes);  // long enough to be stable

  std::printf(
      "approvals_bench: %d tier1 metadata approvals (3 events each, %zu-byte envelopes), %d callers, 2 shared cores\n",
      approvals, bytes, clients);
  if (rate > 0)
    std::printf("  offered (paced)                  %8.0f approvals/s  (%d calls more than 10 ms behind)\n", rate,
                late.load());
  std::printf("  Approve calls answered          %8.0f approvals/s  (%d failed)\n", approvals / approve_s,
              failed.load());
  std::sort(call_ms.begin(), call_ms.end());
  // The lag below counts from the Approve transaction's start, so part of it is this call.
  std::printf("  Approve call latency             p50 %.1f ms  p99 %.1f ms\n", call_ms[call_ms.size() / 2],
              call_ms[call_ms.size() * 99 / 100]);
  std::printf("  end to end (all events in Kafka) %8.0f approvals/s  = %.0f events/s\n", approvals / e2e_s,
              events / e2e_s);
  std::printf("  raw librdkafka, same events      %8.0f events/s\n", raw);
  std::printf("  ratio events/s approvals/raw     %8.3f\n", events / e2e_s / raw);
  std::printf("  relay lag (row written -> broker ack)  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n",
              std::stod(std::string(lag->Get(0, 0))), std::stod(std::string(lag->Get(0, 4))),
              std::stod(std::string(lag->Get(0, 1))), std::stod(std::string(lag->Get(0, 5))));

  (*relay)->Stop();
  relay_thread.join();
  (*gw)->Shutdown(absl::Seconds(5));
  (void)conn->ExecScript(common::Cat("DROP SCHEMA ", schema, " CASCADE"));
  (void)kafka::DeleteTopics(bootstrap, topics);
  return 0;
}
