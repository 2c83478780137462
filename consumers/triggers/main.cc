// sluice-triggers: evaluates every event of every catalog topic against its tenant's
// triggers and delivers each match to the trigger's webhook, or publishes the trigger's
// derived event (see
// consumers/triggers/README.md).
#include <curl/curl.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "common/pg.h"
#include "common/service.h"
#include "common/strings.h"
#include "consumers/triggers/delivery_store.h"
#include "consumers/triggers/evaluator.h"
#include "consumers/triggers/publish.h"
#include "consumers/triggers/trigger_set.h"
#include "consumers/triggers/webhook.h"
#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"

namespace {

using sluice::common::Cat;
using sluice::common::PgConnection;
namespace tr = sluice::triggers;

// Wakes the delivery workers when new deliveries were queued (they poll otherwise).
class Doorbell {
 public:
  void Ring() {
    {
      std::lock_guard<std::mutex> l(mu_);
      ++rings_;
    }
    cv_.notify_all();
  }
  // Waits until rung after `seen`, or `timeout`; returns the ring count.
  uint64_t Wait(uint64_t seen, absl::Duration timeout) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, absl::ToChronoMilliseconds(timeout), [&] { return rings_ != seen; });
    return rings_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t rings_ = 0;
};

// A connection that reconnects after it broke.
class Db {
 public:
  Db(std::string dsn, std::string schema) : dsn_(std::move(dsn)), schema_(std::move(schema)) {}
  absl::StatusOr<PgConnection*> Get() {
    if (conn_ && PQstatus(conn_->raw()) != CONNECTION_OK) conn_.reset();
    if (!conn_) {
      auto c = sluice::common::Connect(dsn_, schema_);
      if (!c.ok()) return c.status();
      conn_.emplace(*std::move(c));
    }
    return &*conn_;
  }

 private:
  std::string dsn_, schema_;
  std::optional<PgConnection> conn_;
};

std::string Say(const absl::Status& s) {
  // libpq's own words can name hosts and rows: they stay at debug level.
  if (sluice::common::IsPgError(s)) return Cat("PostgreSQL error (SQLSTATE ", sluice::common::SqlState(s), ")");
  return std::string(s.message());
}

}  // namespace

int main(int argc, char** argv) {
  sluice::common::Service service(
      "sluice-triggers",
      "deliver every event that matches a tenant's trigger to its webhook (a signed CloudEvent) or publish the "
      "trigger's derived event, and a tenant's "
      "quality and approval notifications to its sinks: at least once, retried with back-off, every attempt "
      "recorded");
  std::string pg_dsn, pg_schema, bootstrap, topic_prefix, group = "sluice-triggers";
  size_t max_batch = 1000;
  int workers = 4, poll_ms = 500, refresh_ms = 1000;
  int retry_base_ms = 1000, retry_max_ms = 300000, lease_slack_ms = 10000;
  int failure_window_s = 300, cool_off_s = 300, history_days = 30, sweep_interval_s = 3600, stats_interval_s = 15;
  bool allow_http_loopback = false, allow_private_addresses = false;
  int publish_timeout_ms = 8000;
  std::string tokens_path;
  tr::DeliveryPolicy policy;
  service.AddPostgres(pg_dsn, pg_schema,
                      "event_trigger, trigger_delivery and trigger_delivery_attempt (and mdm_approval, read for the "
                      "requester of a decided approval)");
  service.AddKafka(bootstrap, topic_prefix);
  service.Flag("group", group, "Kafka consumer group");
  service.Flag("max-batch", max_batch, "Most events evaluated per batch (offsets are committed per batch)")
      ->check(CLI::Range(1, 100000));
  service.Flag("workers", workers, "Deliveries in flight at once (one thread and PostgreSQL connection each)")
      ->check(CLI::Range(1, 256));
  service.Flag("poll-ms", poll_ms, "How often an idle worker looks for due deliveries queued by other replicas")
      ->check(CLI::Range(10, 60000));
  service.Flag("refresh-ms", refresh_ms, "How often event_trigger is checked for changed triggers")
      ->check(CLI::Range(10, 600000));
  service.Flag("max-attempts", policy.max_attempts, "Attempts at one delivery before it is given up")
      ->check(CLI::Range(1, 100));
  service.Flag("retry-base-ms", retry_base_ms, "Wait before the second attempt; doubled for each further one")
      ->check(CLI::Range(1, 3600000));
  service.Flag("retry-max-ms", retry_max_ms, "Longest wait between two attempts")->check(CLI::Range(1, 86400000));
  service
      .Flag("pause-after-failures", policy.pause_after_failures,
            "Failed attempts within --failure-window-s that pause a trigger for --cool-off-s")
      ->check(CLI::Range(1, 100000));
  service.Flag("failure-window-s", failure_window_s, "Window the failures that pause a trigger are counted in")
      ->check(CLI::Range(1, 86400));
  service.Flag("cool-off-s", cool_off_s, "How long a trigger that failed too often stays paused")
      ->check(CLI::Range(1, 86400));
  service
      .Flag("lease-slack-ms", lease_slack_ms,
            "A delivery whose attempt recorded no answer within its timeout plus this is attempted again (its "
            "process died)")
      ->check(CLI::Range(100, 3600000));
  service.Flag("history-days", history_days, "Days delivery attempts and finished deliveries are kept")
      ->check(CLI::Range(1, 3650));
  service.Flag("sweep-interval-s", sweep_interval_s, "Seconds between two sweeps of old history")
      ->check(CLI::Range(1, 86400));
  service.Flag("stats-interval-s", stats_interval_s, "Seconds between two readings of the backlog gauges")
      ->check(CLI::Range(1, 3600));
  service.app()
      .add_flag("--allow-http-loopback", allow_http_loopback,
                "Call http:// webhooks on 127.0.0.1, [::1] or localhost (development and tests; otherwise https:// "
                "only)")
      ->envname(service.EnvName("allow-http-loopback"));
  service.app()
      .add_flag("--allow-private-addresses", allow_private_addresses,
                "Let webhooks reach private, link-local and other internal addresses (10/8, 172.16/12, 192.168/16, "
                "169.254/16, fc00::/7, ...); otherwise such a delivery fails at once. Needed for receivers inside "
                "the cluster and behind an egress proxy (its address is the one checked)")
      ->envname(service.EnvName("allow-private-addresses"));
  service
      .Flag("tokens", tokens_path,
            "The gateway's token file (sluice.v1.TokenFile): names the approvers an approval.created notification is "
            "for (re-read when it changes); empty: notifications name only the role")
      ->check(CLI::ExistingFile);
  service
      .Flag("publish-timeout-ms", publish_timeout_ms,
            "How long a publishing trigger's attempt waits for the broker's acknowledgement of its derived event "
            "before it fails (retried; within the trigger's 10 s lease)")
      ->check(CLI::Range(1000, 9000));
  service.AddMetrics("127.0.0.1:9468");
  if (auto rc = service.Parse(argc, argv)) return *rc;
  policy.retry_base = absl::Milliseconds(retry_base_ms);
  policy.retry_max = absl::Milliseconds(retry_max_ms);
  policy.failure_window = absl::Seconds(failure_window_s);
  policy.cool_off = absl::Seconds(cool_off_s);
  policy.lease_slack = absl::Milliseconds(lease_slack_ms);
  if (policy.retry_max < policy.retry_base) {
    spdlog::critical("--retry-max-ms: must not be less than --retry-base-ms");
    return 1;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);

  auto& registry = service.registry();
  auto& events = prometheus::BuildCounter()
                     .Name("sluice_triggers_events_total")
                     .Help(
                         "Events evaluated against the triggers: matched, unmatched, or refused (failed Validate or "
                         "SourceMayEmit)")
                     .Register(registry);
  auto& matched = events.Add({{"outcome", "matched"}});
  auto& unmatched = events.Add({{"outcome", "unmatched"}});
  auto& refused = events.Add({{"outcome", "refused"}});
  auto& queued = prometheus::BuildCounter()
                     .Name("sluice_triggers_queued_total")
                     .Help("Deliveries queued (one per trigger and matching event)")
                     .Register(registry)
                     .Add({});
  auto& attempts = prometheus::BuildCounter()
                       .Name("sluice_triggers_attempts_total")
                       .Help("Delivery attempts by outcome (delivered, retry, failed, interrupted)")
                       .Register(registry);
  prometheus::Counter* by_outcome[] = {&attempts.Add({{"outcome", "delivered"}}), &attempts.Add({{"outcome", "retry"}}),
                                       &attempts.Add({{"outcome", "failed"}})};
  auto& interrupted = attempts.Add({{"outcome", "interrupted"}});
  auto& auto_pauses = prometheus::BuildCounter()
                          .Name("sluice_triggers_auto_paused_total")
                          .Help("Triggers paused after too many failed attempts within the window")
                          .Register(registry)
                          .Add({});
  auto& latency = prometheus::BuildHistogram()
                      .Name("sluice_triggers_delivery_seconds")
                      .Help("Time from POST to the receiver's answer (or the error)")
                      .Register(registry)
                      .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30});
  auto& backlog = prometheus::BuildGauge()
                      .Name("sluice_triggers_backlog")
                      .Help("Deliveries not yet made: all pending, and those waiting to retry")
                      .Register(registry);
  auto& pending_gauge = backlog.Add({{"state", "pending"}});
  auto& retrying_gauge = backlog.Add({{"state", "retrying"}});
  auto& paused_family = prometheus::BuildGauge()
                            .Name("sluice_triggers_paused")
                            .Help("Paused triggers, by who paused them (caller, auto)")
                            .Register(registry);
  auto& paused_caller = paused_family.Add({{"by", "caller"}});
  auto& paused_auto = paused_family.Add({{"by", "auto"}});
  if (auto s = service.StartMetrics(); !s.ok()) return service.Fail("--metrics-listen", s);

  auto catalog = sluice::contracts::Catalog::Default().WithTopicPrefix(topic_prefix);
  const sluice::contracts::Authorizer authz(catalog);
  tr::Notifier notifier(authz, tokens_path);
  if (auto s = notifier.Refresh(); !s.ok()) return service.Fail("--tokens", s);

  // Fails early on an unreachable database or a schema without migration 0020.
  Db consumer_db(pg_dsn, pg_schema);
  tr::TriggerSet trigger_set;
  {
    auto c = consumer_db.Get();
    if (!c.ok()) return service.Fail("postgres", c.status());
    if (auto s = (*c)->Exec("SELECT publish_type FROM event_trigger, trigger_delivery LIMIT 0"); !s.ok())
      return service.Fail("postgres (is the schema migrated? sluicectl migrate)", s.status());
    if (auto s = trigger_set.Refresh(**c); !s.ok()) return service.Fail("postgres", s);
  }

  // Publishing triggers' derived events (acknowledged before their attempt is recorded).
  auto producer = sluice::kafka::Producer::Create(
      {.bootstrap_servers = bootstrap,
       .client_id = "sluice-triggers",
       .delivery_timeout = absl::Milliseconds(publish_timeout_ms),
       .linger = absl::Milliseconds(1),
       .librdkafka = service.kafka_settings(),
       .on_auth_failure = [&](const absl::Status&) { service.RequestStop("kafka authentication failed"); }},
      catalog);
  if (!producer.ok()) return service.Fail("producer", producer.status());
  const tr::Publisher publish = [&](const tr::ClaimedDelivery& d) {
    return tr::PublishDerived(**producer, catalog, d, absl::Milliseconds(publish_timeout_ms));
  };

  Doorbell doorbell;
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      Db db(pg_dsn, pg_schema);
      tr::WebhookClient client(allow_http_loopback, allow_private_addresses);
      std::mt19937 rng(std::random_device{}() + static_cast<unsigned>(w));
      std::uniform_real_distribution<double> jitter(0.0, 1.0);
      uint64_t rung = 0;
      while (!service.stopping().load()) {
        auto conn = db.Get();
        if (!conn.ok()) {
          spdlog::warn("triggers: worker {}: PostgreSQL unreachable, retrying in 1 s: {}", w, Say(conn.status()));
          service.WaitForStop(absl::Seconds(1));
          continue;
        }
        auto round = tr::DeliverRound(
            **conn, client, policy, [&] { return jitter(rng); },
            [&](const tr::ClaimedDelivery& d, const tr::WebhookResult& result, tr::Outcome outcome, bool paused) {
              latency.Observe(absl::ToDoubleSeconds(result.latency));
              by_outcome[static_cast<int>(outcome)]->Increment();
              if (outcome != tr::Outcome::kDelivered)
                spdlog::info("triggers: trigger {} of tenant {}: event {} attempt {}: {} ({})", d.trigger_id,
                             d.tenant_id, d.event_id, d.attempt, result.error, tr::OutcomeLabel(outcome));
              if (paused) {
                auto_pauses.Increment();
                spdlog::warn("triggers: trigger {} of tenant {} paused for {} s after {} failed attempts within {} s",
                             d.trigger_id, d.tenant_id, cool_off_s, policy.pause_after_failures, failure_window_s);
              }
            },
            publish);
        if (!round.ok()) {
          // An attempt whose record was lost is made again once its lease runs out, under
          // the same idempotency key.
          spdlog::warn("triggers: worker {}: delivering failed, retrying in 1 s: {}", w, Say(round.status()));
          service.WaitForStop(absl::Seconds(1));
          continue;
        }
        interrupted.Increment(static_cast<double>(round->interrupted));
        if (round->claimed == 0) rung = doorbell.Wait(rung, absl::Milliseconds(poll_ms));
      }
    });
  }
  // Backlog gauges and the history sweep.
  threads.emplace_back([&] {
    Db db(pg_dsn, pg_schema);
    absl::Time next_sweep = absl::Now();
    while (!service.stopping().load()) {
      if (auto conn = db.Get(); conn.ok()) {
        if (auto b = tr::Backlog(**conn); b.ok()) {
          pending_gauge.Set(static_cast<double>(b->pending));
          retrying_gauge.Set(static_cast<double>(b->retrying));
          paused_caller.Set(static_cast<double>(b->paused));
          paused_auto.Set(static_cast<double>(b->auto_paused));
        }
        if (absl::Now() >= next_sweep) {
          auto swept = tr::Sweep(**conn, absl::Hours(24) * history_days);
          if (!swept.ok())
            spdlog::warn("triggers: history sweep failed: {}", Say(swept.status()));
          else if (*swept > 0)
            spdlog::info("triggers: history sweep deleted {} rows older than {} days", *swept, history_days);
          next_sweep = absl::Now() + absl::Seconds(sweep_interval_s);
        }
      }
      service.WaitForStop(absl::Seconds(stats_interval_s));
    }
  });

  std::vector<std::string> topics;
  for (const auto& t : catalog.topics()) topics.push_back(t.name());
  auto consumer = sluice::kafka::Consumer::Create({.bootstrap_servers = bootstrap,
                                                   .group_id = group,
                                                   .client_id = "sluice-triggers",
                                                   .topics = topics,
                                                   .max_batch = max_batch,
                                                   .librdkafka = service.kafka_settings()});
  if (!consumer.ok()) {
    service.RequestStop("consumer failed");
    doorbell.Ring();
    for (auto& t : threads) t.join();
    return service.Fail("consumer", consumer.status());
  }
  auto stop = service.OnStop([&] {
    (*consumer)->Stop();
    doorbell.Ring();
  });
  spdlog::info("triggers: started (group {}, {} topics, {} triggers, {} workers)", group, topics.size(),
               trigger_set.size(), workers);
  absl::Time next_refresh = absl::Now() + absl::Milliseconds(refresh_ms);
  auto s = (*consumer)->Run([&](const std::vector<sluice::kafka::Record>& batch) -> absl::Status {
    auto conn = consumer_db.Get();
    if (!conn.ok()) return conn.status();
    if (absl::Now() >= next_refresh) {
      if (auto r = trigger_set.Refresh(**conn); !r.ok()) return r;
      // A token file that stopped parsing keeps the approvers read before.
      if (auto r = notifier.Refresh(); !r.ok()) spdlog::warn("triggers: {}", std::string(r.message()));
      next_refresh = absl::Now() + absl::Milliseconds(refresh_ms);
    }
    auto n = tr::Evaluate(**conn, trigger_set, notifier, batch);
    if (!n.ok()) return n.status();
    matched.Increment(static_cast<double>(n->matched));
    unmatched.Increment(static_cast<double>(n->unmatched));
    refused.Increment(static_cast<double>(n->refused));
    queued.Increment(static_cast<double>(n->queued));
    if (n->queued > 0) doorbell.Ring();
    return absl::OkStatus();
  });
  if (auto c = (*consumer)->Close(); !c.ok()) spdlog::warn("triggers: close: {}", std::string(c.message()));
  service.RequestStop("consumer ended");
  doorbell.Ring();
  for (auto& t : threads) t.join();
  curl_global_cleanup();
  if (!s.ok()) return service.Fail("consumer", s);
  spdlog::info("triggers: stopped");
  return 0;
}
