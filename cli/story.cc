#include "cli/story.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "common/pg.h"
#include "common/strings.h"
#include "contracts/envelope.h"
#include "kafka/consumer.h"
#include "sluice/v1/approval_service.grpc.pb.h"
#include "sluice/v1/gateway.grpc.pb.h"

namespace sluice::cli {
namespace {

using common::Cat;

int Fail(std::string_view step, const std::string& why) {
  std::fprintf(stderr, "story: %.*s: %s\n", static_cast<int>(step.size()), step.data(), why.c_str());
  return 1;
}

// A call of the story: its token, and a span of the story's trace as "traceparent".
std::unique_ptr<grpc::ClientContext> Call(const std::string& token, const std::string& trace) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("authorization", "Bearer " + token);
  ctx->AddMetadata("traceparent", contracts::ChildTraceparent(trace));
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  return ctx;
}

std::string GrpcError(const grpc::Status& s) { return Cat(static_cast<int>(s.error_code()), " ", s.error_message()); }

// Events of one correlation id, as they arrive from Kafka.
class Watcher {
 public:
  Watcher(kafka::ConsumerConfig config) : config_(std::move(config)) {}
  ~Watcher() { Stop(); }

  absl::Status Start() {
    auto c = kafka::Consumer::Create(config_);
    if (!c.ok()) return c.status();
    consumer_ = *std::move(c);
    thread_ = std::thread([this] {
      (void)consumer_->Run([this](const std::vector<kafka::Record>& batch) {
        std::lock_guard l(mu_);
        for (const auto& r : batch)
          if (!correlation_.empty() && r.envelope.correlation_id() == correlation_) events_.push_back(r.envelope);
        cv_.notify_all();
        return absl::OkStatus();
      });
    });
    return absl::OkStatus();
  }
  void Follow(const std::string& correlation) {
    std::lock_guard l(mu_);
    correlation_ = correlation;
  }
  // The first event of `type` (after `skip` of them), or nullopt at the deadline.
  std::optional<v1::Envelope> WaitFor(const std::string& type, absl::Time deadline, size_t skip = 0) {
    std::unique_lock l(mu_);
    while (true) {
      size_t seen = 0;
      for (const auto& e : events_)
        if (e.type() == type && seen++ == skip) return e;
      if (absl::Now() >= deadline) return std::nullopt;
      cv_.wait_for(l, std::chrono::milliseconds(200));
    }
  }
  std::vector<v1::Envelope> Events() {
    std::lock_guard l(mu_);
    return events_;
  }
  void Stop() {
    if (consumer_) consumer_->Stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  kafka::ConsumerConfig config_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string correlation_;
  std::vector<v1::Envelope> events_;
};

const char* Grade(v1::QualityGrade g) {
  static const char* kLetters[] = {"?", "A", "B", "C", "D", "F"};
  return (g >= 0 && g <= 5) ? kLetters[g] : "?";
}

}  // namespace

int RunStory(const StoryOptions& o) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they happen, also through a pipe
  const absl::Time deadline = absl::Now() + absl::Seconds(o.timeout_s);
  const std::string run = contracts::NewUuidV7().substr(24, 8);
  const std::string key = Cat("sales_orders_", run);
  // One trace for the whole story: every call is a span of it, and every event the calls
  // cause (through approvals, the outbox and the profiler) carries a span of it too.
  const std::string trace = contracts::NewTraceparent();
  const std::string schema = "demo", table = Cat("sales_orders_", run);

  // 1. The table: clean data, so the first profile grades A.
  auto pg = common::PgConnection::Connect(o.pg_dsn);
  if (!pg.ok()) return Fail("connect to PostgreSQL", std::string(pg.status().message()));
  auto seeded = pg->ExecScript(
      Cat("CREATE SCHEMA IF NOT EXISTS demo;"
          "CREATE TABLE demo.",
          table,
          " (order_id bigint PRIMARY KEY, customer_email text, currency text,"
          "  amount numeric(12,2), ordered_at timestamptz, status text);"
          "INSERT INTO demo.",
          table,
          " SELECT g, 'customer' || g || '@example.com', (ARRAY['EUR','USD','GBP'])[1 + g % 3],"
          "  (g % 5000) / 10.0, timestamptz '2026-01-01' + g * interval '7 minutes', 'open' FROM generate_series(1, ",
          o.rows, ") g;"));
  if (!seeded.ok()) return Fail("seed the demo table", std::string(seeded.message()));
  std::printf("[1/6] seeded %s.%s: %d clean rows\n", schema.c_str(), table.c_str(), o.rows);

  std::set<std::string> topics;
  auto catalog = contracts::Catalog::Default().WithTopicPrefix(o.topic_prefix);
  for (const auto& t : catalog.topics()) topics.insert(t.name());
  Watcher watcher({.bootstrap_servers = o.bootstrap,
                   .group_id = Cat("sluicectl-story-", run),
                   .client_id = "sluicectl-story",
                   .topics = {topics.begin(), topics.end()},
                   .librdkafka = o.librdkafka});
  if (auto s = watcher.Start(); !s.ok()) return Fail("consume", std::string(s.message()));

  // 2. Ask for the metadata entry, bound to the table, with its column rules.
  auto gateway = GatewayChannel(o.gateway);
  if (!gateway.ok()) return Fail("connect to the gateway", std::string(gateway.status().message()));
  auto channel = *std::move(gateway);
  auto approvals = v1::ApprovalService::NewStub(channel);
  v1::CreateApprovalRequest create;
  create.set_tenant_id(o.tenant);
  create.set_entity_type(v1::ENTITY_TYPE_METADATA);
  create.set_entity_key(key);
  create.set_tier(v1::TIER_1);
  create.set_lane(v1::LANE_GOVERNED);
  create.set_required_role("metadata_steward");
  const std::string payload =
      Cat(R"({"label":"Sales orders","tier":"tier1","domain":"sales","entityUrn":"urn:sluice:demo:)", key,
          R"(","binding":{"schema":")", schema, R"(","table":")", table,
          R"("},"columnRules":[{"column":"order_id","unique":true},)"
          R"({"column":"customer_email","unique":true,"regex":"^[^@ ]+@[^@ ]+\\.[a-z]{2,}$"},)"
          R"({"column":"currency","allowed_values":["EUR","USD","GBP"],"max_length":3},)"
          R"({"column":"amount","min":0,"max":1000000}]})");
  if (auto s = google::protobuf::util::JsonStringToMessage(payload, create.mutable_payload()); !s.ok())
    return Fail("approval payload", std::string(s.message()));
  v1::CreateApprovalResponse created;
  if (auto s = approvals->CreateApproval(Call(o.requester_token, trace).get(), create, &created); !s.ok())
    return Fail("CreateApproval (is sluice-gateway running with --pg-dsn?)", GrpcError(s));
  const std::string approval_id = created.approval().id();
  watcher.Follow(approval_id);
  std::printf("[2/6] approval %s requested by %s: tier1 metadata \"%s\" bound to %s.%s\n", approval_id.c_str(),
              created.approval().requested_by().c_str(), key.c_str(), schema.c_str(), table.c_str());

  // 3. The steward approves: entity upsert and events commit together (outbox).
  v1::ApproveRequest approve;
  approve.set_tenant_id(o.tenant);
  approve.set_id(approval_id);
  v1::ApproveResponse approved;
  if (auto s = approvals->Approve(Call(o.steward_token, trace).get(), approve, &approved); !s.ok())
    return Fail("Approve", GrpcError(s));
  std::printf("[3/6] approved by %s: entity %s\n", approved.approval().decided_by().c_str(),
              approved.approval().entity_id().c_str());

  // 4. The profiler picks it up (metadata.approved / metadata.profile.due).
  auto first = watcher.WaitFor("metadata.profile.completed", deadline);
  if (!first) {
    auto failed = watcher.WaitFor("metadata.profile.failed", absl::Now());
    return Fail(
        "profile",
        failed ? Cat("failed: ", failed->profile_failed().error_code(), " ", failed->profile_failed().error_message())
               : "no metadata.profile.completed in time (are sluice-relay and sluice-profiler running?)");
  }
  const auto& p1 = first->profile_completed();
  std::printf(
      "[4/6] profiled: rows=%lld completeness=%.2f uniqueness=%.2f validity=%.2f score=%.2f grade=%s (%s, %lld ms)\n",
      static_cast<long long>(p1.row_count()), p1.completeness(), p1.uniqueness(), p1.validity(), p1.quality_score(),
      Grade(p1.quality_grade()), p1.method().c_str(),
      static_cast<long long>(p1.duration().seconds() * 1000 + p1.duration().nanos() / 1000000));

  // 5. A bad load: two rows in three lose their email (or get a placeholder) and get an
  // unknown currency.
  auto worse = pg->Exec(Cat("UPDATE demo.", table,
                            " SET customer_email = CASE WHEN order_id % 2 = 0 THEN NULL ELSE 'n/a' END,"
                            "     currency = CASE WHEN order_id % 2 = 0 THEN 'XXX' ELSE 'EURO' END"
                            " WHERE order_id % 3 <> 0"));
  if (!worse.ok()) return Fail("degrade the table", std::string(worse.status().message()));
  auto refresh_stub = v1::DataRefreshService::NewStub(channel);
  v1::NotifyDataRefreshedRequest refresh;
  refresh.set_tenant_id(o.tenant);
  refresh.set_entity_urn(Cat("urn:sluice:demo:", key));
  refresh.set_schema(schema);
  refresh.set_table(table);
  refresh.set_rows_affected(worse->affected());
  refresh.set_refresh_type(v1::REFRESH_TYPE_INCREMENTAL);
  refresh.mutable_triggered_by()->set_actor_id("nightly-orders-load");
  refresh.mutable_triggered_by()->set_actor_type(v1::ACTOR_TYPE_SYSTEM);
  refresh.set_correlation_id(approval_id);  // one story, one chain
  v1::NotifyDataRefreshedResponse refreshed;
  if (auto s = refresh_stub->NotifyDataRefreshed(Call(o.etl_token, trace).get(), refresh, &refreshed); !s.ok())
    return Fail("NotifyDataRefreshed", GrpcError(s));
  std::printf("[5/6] made %lld rows worse; data.refreshed %s acknowledged at %s[%d]@%lld\n",
              static_cast<long long>(worse->affected()), refreshed.delivery().event_id().c_str(),
              refreshed.delivery().topic().c_str(), refreshed.delivery().partition(),
              static_cast<long long>(refreshed.delivery().offset()));

  // 6. The second profile sees it.
  auto degraded = watcher.WaitFor("data.quality.degraded", deadline);
  if (!degraded) {
    auto second = watcher.WaitFor("metadata.profile.completed", absl::Now(), 1);
    return Fail("degradation", second ? Cat("no data.quality.degraded: the second profile scored ",
                                            second->profile_completed().quality_score())
                                      : std::string("no second profile in time"));
  }
  const auto& d = degraded->data_quality_degraded();
  std::printf("[6/6] data.quality.degraded: score %.2f -> %.2f (-%.1f%%), grade %s -> %s\n", d.previous_score(),
              d.current_score(), d.drop_percent(), Grade(d.previous_grade()), Grade(d.current_grade()));
  std::string json;
  google::protobuf::util::JsonPrintOptions pretty;
  pretty.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(*degraded, &json, pretty);
  std::printf("%s", json.c_str());

  absl::SleepFor(absl::Seconds(1));  // let stragglers of the chain arrive
  watcher.Stop();
  std::printf("\nThe chain, correlation id %s, trace %s (type, event id, caused by, source, trace/span):\n",
              approval_id.c_str(), trace.substr(3, 32).c_str());
  auto events = watcher.Events();
  std::map<std::string, std::string> type_of;
  for (const auto& e : events) type_of[e.id()] = e.type();
  std::sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
    return std::pair(a.occurred_at().seconds(), a.occurred_at().nanos()) <
           std::pair(b.occurred_at().seconds(), b.occurred_at().nanos());
  });
  for (const auto& e : events) {
    std::string cause = e.causation_id().empty() ? "-" : e.causation_id();
    if (auto it = type_of.find(e.causation_id()); it != type_of.end()) cause = Cat(it->second, " ", cause);
    const std::string span = e.traceparent().empty() ? "-" : e.traceparent().substr(3, 49);
    std::printf("  %-27s %s  <- %s  (%s)  %s\n", e.type().c_str(), e.id().c_str(), cause.c_str(), e.source().c_str(),
                span.c_str());
  }
  return 0;
}

}  // namespace sluice::cli
