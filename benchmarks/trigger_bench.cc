// trigger_bench: sluice-triggers' two halves against baselines measured in the same run.
//   evaluation: events/s through Evaluate (match 100 triggers per tenant, JSONPaths in
//     memory or, for the forms only it evaluates, in PostgreSQL, queue the matches) against
//     the same consumer reading the same events and discarding them. Target: >= 0.5x
//     consume-only. --evaluate-only stops there.
//   delivery: deliveries/s by DeliverRound (claim, signed POST, record) to a receiver on
//     loopback, against the same client POSTing the same bodies with no database.
// Needs the local stack; creates and drops its own topics and schema.
#include <CLI/CLI.hpp>
#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <random>
#include <thread>

#include "benchmarks/drain.h"
#include "common/env.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/strings.h"
#include "consumers/triggers/evaluator.h"
#include "contracts/authz.h"
#include "contracts/envelope.h"
#include "contracts/vectors.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "kafka/topic_admin.h"

namespace {

using namespace sluice;
using common::Cat;

using bench::Drain;

}  // namespace

int main(int argc, char** argv) {
  std::string bootstrap = common::DefaultKafkaBootstrap(), dsn = common::DefaultPgDsn();
  int64_t events = 200'000;
  int tenants = 10, per_tenant = 100, workers = 4, path_triggers = 8;
  size_t max_batch = 1000;
  CLI::App app{"trigger_bench: trigger evaluation and delivery vs consume-only and plain POSTs, same run"};
  app.add_option("--events", events, "Events to publish and evaluate")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--tenants", tenants, "Tenants the events are spread over")->capture_default_str();
  app.add_option("--triggers-per-tenant", per_tenant, "Triggers of each tenant (at least 10)")
      ->capture_default_str()
      ->check(CLI::Range(10, 100));
  app.add_option("--path-triggers", path_triggers,
                 "Triggers per tenant with a JSONPath (evaluated for the events of their type)")
      ->capture_default_str()
      ->check(CLI::Range(0, 8));
  bool paths_in_postgres = false;
  app.add_flag("--paths-in-postgres", paths_in_postgres,
               "Give those triggers a JSONPath of a form only PostgreSQL evaluates (like_regex) instead of one "
               "evaluated in memory");
  app.add_option("--workers", workers, "Delivery workers (sluice-triggers --workers)")->capture_default_str();
  app.add_option("--max-batch", max_batch, "Events per batch (sluice-triggers --max-batch)")->capture_default_str();
  bool evaluate_only = false;
  app.add_flag("--evaluate-only", evaluate_only, "Measure evaluation only; skip the delivery half");
  app.add_option("--bootstrap", bootstrap, "Kafka")->capture_default_str();
  app.add_option("--dsn", dsn, "PostgreSQL")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  common::InitLogging("trigger_bench", "warn");

  const std::string id = std::to_string(std::random_device{}());
  auto catalog = contracts::Catalog::Default().WithTopicPrefix("bench-triggers-" + id + ".");
  if (auto r = kafka::EnsureTopics(bootstrap, catalog); !r.ok()) {
    std::fprintf(stderr, "topics: %s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  std::vector<std::string> topics;
  for (const auto& t : catalog.topics()) topics.push_back(t.name());
  const std::string schema = "bench_triggers_" + id;
  auto conn = common::PgConnection::Connect(dsn);
  if (!conn.ok() || !conn->ExecScript("CREATE SCHEMA " + schema + "; SET search_path TO " + schema).ok() ||
      !common::Migrate(*conn, std::string(SLUICE_SOURCE_DIR) + "/sql/migrations").ok()) {
    std::fprintf(stderr, "postgres: cannot prepare schema %s\n", schema.c_str());
    return 1;
  }
  auto cleanup = [&] {
    (void)conn->ExecScript("DROP SCHEMA " + schema + " CASCADE");
    (void)kafka::DeleteTopics(bootstrap, topics);
  };

  // The receiver: answers every POST with 204.
  httplib::Server receiver;
  std::atomic<int64_t> received{0};
  receiver.Post("/hook", [&](const httplib::Request&, httplib::Response& res) {
    received.fetch_add(1);
    res.status = 204;
  });
  const int port = receiver.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { receiver.listen_after_bind(); });
  const std::string url = Cat("http://127.0.0.1:", port, "/hook");

  // Each tenant's triggers: 2 that match (every data.quality.degraded, every
  // approval.created: 2 of the 13 types), --path-triggers (8) whose type matches 1 event
  // in 13 each and whose JSONPath PostgreSQL evaluates and finds nothing, and the rest on
  // a type and a source no event has (ruled out in memory).
  std::vector<std::string> types;
  for (const auto& r : catalog.routes()) types.push_back(r.type);
  for (int t = 0; t < tenants; ++t) {
    for (int k = 0; k < per_tenant; ++k) {
      std::string type, source, path;
      if (k == 0) {
        type = "data.quality.degraded";
      } else if (k == 1) {
        type = "approval.created";
      } else if (k < 2 + path_triggers) {
        type = types[static_cast<size_t>(k) % types.size()];
        path = paths_in_postgres ? "$.noSuchField ? (@ like_regex \"x\")" : "$.noSuchField ? (@ == \"x\")";
      } else {
        type = types[static_cast<size_t>(k) % types.size()];
        source = Cat("bench.other-", k);
      }
      auto r = conn->Exec(
          "INSERT INTO event_trigger (tenant_id, id, name, types, sources, json_path, webhook_url, webhook_secret,"
          " webhook_timeout_ms, created_by, updated_by)"
          " VALUES ($1, gen_random_uuid(), $2, $3::text[], $4::text[], $5, $6, $7, 5000, 'bench', 'bench')",
          {Cat("tenant-", t), Cat("trigger-", k), common::PgTextArray(std::vector<std::string>{type}),
           source.empty() ? "{}" : common::PgTextArray(std::vector<std::string>{source}), path, url,
           std::string(40, 's')});
      if (!r.ok()) {
        std::fprintf(stderr, "insert trigger: %s\n", std::string(r.status().message()).c_str());
        cleanup();
        return 1;
      }
    }
  }

  auto goldens = contracts::LoadVectors(std::string(SLUICE_SOURCE_DIR) + "/contracts/vectors");
  auto p = kafka::Producer::Create({.bootstrap_servers = bootstrap}, catalog);
  if (!goldens.ok() || !p.ok()) {
    cleanup();
    return 1;
  }
  std::vector<v1::Envelope> mix;
  for (const auto& v : *goldens) mix.push_back(v.envelope);
  std::printf(
      "publishing %lld events (the 13 golden types, round robin, %d tenants); %d triggers per tenant, 2 matching, %d "
      "with a JSONPath ...\n",
      static_cast<long long>(events), tenants, per_tenant, path_triggers);
  std::fflush(stdout);
  for (int64_t i = 0; i < events; ++i) {
    v1::Envelope e = mix[static_cast<size_t>(i) % mix.size()];
    e.set_id(contracts::NewUuidV7());
    e.clear_occurred_at();
    e.set_tenant_id(Cat("tenant-", i % tenants));
    (*p)->Send(std::move(e), [](absl::StatusOr<kafka::DeliveryReport>) {});
  }
  if (auto s = (*p)->Flush(absl::Minutes(2)); !s.ok()) {
    cleanup();
    return 1;
  }

  // Evaluation against consume-only.
  auto consume_only = Drain(bootstrap, topics, "bench-consume-" + id, events, max_batch,
                            [](const std::vector<kafka::Record>&) { return absl::OkStatus(); });
  triggers::TriggerSet set;
  if (auto s = set.Refresh(*conn); !s.ok()) {
    cleanup();
    return 1;
  }
  const contracts::Authorizer authz(catalog);
  const triggers::Notifier notifier(authz, "");
  triggers::EvaluateStats totals;
  absl::Duration in_evaluate;
  auto evaluated = Drain(bootstrap, topics, "bench-evaluate-" + id, events, max_batch,
                         [&](const std::vector<kafka::Record>& batch) -> absl::Status {
                           const absl::Time t0 = absl::Now();
                           auto r = triggers::Evaluate(*conn, set, notifier, batch);
                           in_evaluate += absl::Now() - t0;
                           if (!r.ok()) return r.status();
                           totals.matched += r->matched;
                           totals.unmatched += r->unmatched;
                           totals.queued += r->queued;
                           totals.path_checks += r->path_checks;
                           totals.pg_path_checks += r->pg_path_checks;
                           totals.in_paths += r->in_paths;
                           totals.in_enqueue += r->in_enqueue;
                           return absl::OkStatus();
                         });
  if (!consume_only.ok() || !evaluated.ok()) {
    std::fprintf(stderr, "failed: %s\n",
                 std::string((consume_only.ok() ? evaluated.status() : consume_only.status()).message()).c_str());
    cleanup();
    return 1;
  }

  // Delivery: the queued deliveries through DeliverRound by `workers` threads.
  triggers::DeliveryPolicy policy;
  std::atomic<int64_t> delivered{0}, failed{0};
  std::vector<std::thread> threads;
  const absl::Time d0 = absl::Now();
  for (int w = 0; w < (evaluate_only ? 0 : workers); ++w)
    threads.emplace_back([&] {
      auto c = common::Connect(dsn, schema);
      if (!c.ok()) return;
      triggers::WebhookClient client(/*allow_http_loopback=*/true);
      while (delivered.load() + failed.load() < totals.queued) {
        auto round = triggers::DeliverRound(
            *c, client, policy, [] { return 0.0; },
            [&](const triggers::ClaimedDelivery&, const triggers::WebhookResult&, triggers::Outcome o, bool) {
              (o == triggers::Outcome::kDelivered ? delivered : failed).fetch_add(1);
            });
        if (!round.ok() || round->claimed == 0) break;
      }
    });
  for (auto& t : threads) t.join();
  const double delivery_s = absl::ToDoubleSeconds(absl::Now() - d0);
  // The same client POSTing the same number of bodies, no database.
  std::string body;
  {
    auto r = conn->Exec("SELECT body FROM trigger_delivery LIMIT 1");
    if (r.ok() && r->rows() == 1) body = std::string(r->Get(0, 0));
  }
  const int64_t plain_n = evaluate_only ? 0 : std::max<int64_t>(delivered.load(), 1000);
  std::atomic<int64_t> plain_left{plain_n};
  threads.clear();
  const absl::Time h0 = absl::Now();
  for (int w = 0; w < (evaluate_only ? 0 : workers); ++w)
    threads.emplace_back([&] {
      triggers::WebhookClient client(true);
      while (plain_left.fetch_sub(1) > 0)
        (void)client.Post(
            {.url = url, .secret = std::string(40, 's'), .body = body, .event_id = "e", .trigger_id = "t"});
    });
  for (auto& t : threads) t.join();
  const double plain = static_cast<double>(plain_n) / absl::ToDoubleSeconds(absl::Now() - h0);
  receiver.stop();
  serving.join();

  const double eval_ratio = *evaluated / *consume_only;
  const double delivery_rate = static_cast<double>(delivered.load()) / delivery_s;
  std::printf("\n%-52s %12s %8s\n", "", "per s", "ratio");
  std::printf("%-52s %12.0f %8s\n", "baseline: consume and decode only (events)", *consume_only, "1.00");
  std::printf("%-52s %12.0f %8.2f   (%zu of %lld events matched, %lld deliveries queued; %.2f s in Evaluate)\n",
              "evaluate against the triggers and queue (events)", *evaluated, eval_ratio, totals.matched,
              static_cast<long long>(events), static_cast<long long>(totals.queued),
              absl::ToDoubleSeconds(in_evaluate));
  std::printf("%-52s JSONPaths %.2f s (%zu pairs, %zu by PostgreSQL), queueing %.2f s\n",
              "  of which:", absl::ToDoubleSeconds(totals.in_paths), totals.path_checks, totals.pg_path_checks,
              absl::ToDoubleSeconds(totals.in_enqueue));
  if (!evaluate_only) {
    std::printf("%-52s %12.0f %8s\n", "baseline: plain signed POSTs, no database", plain, "1.00");
    std::printf("%-52s %12.0f %8.2f   (%lld delivered, %lld failed, %d workers)\n",
                "deliver: claim, POST, record (deliveries)", delivery_rate, delivery_rate / plain,
                static_cast<long long>(delivered.load()), static_cast<long long>(failed.load()), workers);
  }
  std::printf("\ntarget: evaluation >= 0.50x consume-only: %.2f (%s)\n", eval_ratio,
              eval_ratio >= 0.5 ? "met" : "NOT met");
  // A consumer that commits a batch only once its matches are queued (nothing lost on a
  // crash) spends at least the consume-only time plus the queueing time: whatever else
  // gets faster, its ratio cannot exceed C / (C + Q), both measured above.
  const double consume_s = static_cast<double>(events) / *consume_only;
  const double queue_s = absl::ToDoubleSeconds(totals.in_enqueue);
  std::printf(
      "bound for evaluation that queues before it commits: consume-only %.2f s / (%.2f s + queueing %.2f s) = "
      "%.2f\n",
      consume_s, consume_s, queue_s, consume_s / (consume_s + queue_s));
  cleanup();
  return evaluate_only || delivered.load() == totals.queued ? 0 : 1;
}
