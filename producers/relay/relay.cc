#include "producers/relay/relay.h"

#include <spdlog/spdlog.h>
#include <sys/select.h>

#include <algorithm>
#include <cmath>
#include <future>

#include "common/log.h"
#include "common/pg.h"
#include "common/strings.h"
#include "contracts/cloudevents.h"

namespace sluice::relay {
namespace {

// bytea in text form ("\x0a24...") to bytes.
std::string FromHexBytea(std::string_view text) {
  if (text.substr(0, 2) == "\\x") text.remove_prefix(2);
  auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::string out(text.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>(nibble(text[2 * i]) << 4 | nibble(text[2 * i + 1]));
  return out;
}

struct Row {
  int64_t id;
  int attempts;
  std::string bytes;
};

}  // namespace

Relay::Metrics::Metrics(prometheus::Registry& r)
    : published(prometheus::BuildCounter()
                    .Name("sluice_relay_published_total")
                    .Help("Outbox rows published to Kafka and marked sent")
                    .Register(r)
                    .Add({})),
      errors(prometheus::BuildCounter()
                 .Name("sluice_relay_errors_total")
                 .Help("Failed publish attempts of outbox rows (retried with back-off)")
                 .Register(r)
                 .Add({})),
      backlog(prometheus::BuildGauge()
                  .Name("sluice_outbox_backlog")
                  .Help("Outbox rows not yet published")
                  .Register(r)
                  .Add({})),
      oldest(prometheus::BuildGauge()
                 .Name("sluice_outbox_oldest_unsent_seconds")
                 .Help("Age of the oldest outbox row not yet published; 0 when none")
                 .Register(r)
                 .Add({})) {}

absl::StatusOr<std::unique_ptr<Relay>> Relay::Create(RelayConfig config, kafka::Producer& producer,
                                                     prometheus::Registry* registry) {
  if (config.pg_dsn.empty()) return absl::InvalidArgumentError("relay: pg_dsn is required");
  if (config.batch_size <= 0) return absl::InvalidArgumentError("relay: batch_size must be positive");
  std::unique_ptr<Relay> relay(new Relay(std::move(config), producer));
  if (registry != nullptr) relay->metrics_ = std::make_unique<Metrics>(*registry);
  return relay;
}

absl::Status Relay::UpdateBacklogMetrics() {
  if (!metrics_) return absl::OkStatus();
  if (!conn_) {
    if (auto s = Connect(); !s.ok()) return s;
  }
  auto r = conn_->Exec(
      "SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8"
      " FROM event_outbox WHERE sent_at IS NULL");
  if (!r.ok()) return r.status();
  metrics_->backlog.Set(std::stod(std::string(r->Get(0, 0))));
  metrics_->oldest.Set(std::stod(std::string(r->Get(0, 1))));
  return absl::OkStatus();
}

absl::Status Relay::Connect() {
  conn_.reset();
  auto c = common::Connect(config_.pg_dsn, config_.pg_schema);
  if (!c.ok()) return c.status();
  if (auto s = c->ExecScript("LISTEN event_outbox"); !s.ok()) return s;
  conn_.emplace(*std::move(c));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Relay::RunOnce() {
  if (!conn_) {
    if (auto s = Connect(); !s.ok()) return s;
  }
  // Rows announced so far are visible to the query below; notifications arriving from here
  // on stay queued in libpq and wake WaitForWork at once.
  (void)TakeNotifies();
  auto tenants =
      conn_->Exec("SELECT DISTINCT tenant_id FROM event_outbox WHERE sent_at IS NULL AND next_attempt_at <= now()");
  if (!tenants.ok()) return tenants.status();
  if (tenants->rows() == 0) return 0;
  // One transaction for the round: every tenant this relay can lock, published together,
  // marked sent with one commit. The commit need not wait for its WAL flush: if PostgreSQL
  // loses it in a crash, those rows are unsent again and republished in order with the same
  // ids, exactly as when the relay dies between the broker's ack and its commit (at least
  // once). Not waiting for the flush takes an fsync out of every round, which each row
  // committed meanwhile would otherwise wait for.
  auto tx = common::PgTransaction::Begin(*conn_, "BEGIN; SET LOCAL synchronous_commit TO off");
  if (!tx.ok()) return tx.status();
  auto n = RelayTenants(*tenants);
  if (!n.ok()) return n.status();  // rolled back with tx
  if (auto s = tx->Commit(); !s.ok()) return s;
  published_ += *n;
  if (metrics_) metrics_->published.Increment(static_cast<double>(*n));
  return n;
}

absl::StatusOr<int64_t> Relay::RelayTenants(const common::PgResult& tenants) {
  struct Pending {
    Row row;
    std::string tenant;
    std::future<absl::StatusOr<kafka::DeliveryReport>> ack;
  };
  std::vector<std::vector<Pending>> per_tenant;
  // Two statements for the whole round rather than two per tenant: under load each round
  // trip waits for a CPU, and rows committed meanwhile wait for the round. The rows are
  // read by a statement after the locks are held, so its snapshot includes what a relay
  // that held a tenant before us committed (no republishing of its rows).
  std::vector<std::string> wanted;
  for (int t = 0; t < tenants.rows(); ++t) wanted.emplace_back(tenants.Get(t, 0));
  auto locked = conn_->Exec(
      "SELECT t FROM unnest($1::text[]) AS t WHERE pg_try_advisory_xact_lock(hashtext('sluice.outbox.relay:' || t))",
      {common::PgTextArray(wanted)});  // a tenant another relay holds is skipped
  if (!locked.ok()) return locked.status();
  if (locked->rows() == 0) return 0;
  std::vector<std::string> mine;
  for (int t = 0; t < locked->rows(); ++t) mine.emplace_back(locked->Get(t, 0));
  auto rows = conn_->Exec(
      "SELECT r.tenant_id, r.id, r.attempts, r.next_attempt_at <= now(), r.envelope"
      " FROM unnest($1::text[]) WITH ORDINALITY AS t(tenant, n) CROSS JOIN LATERAL"
      " (SELECT tenant_id, id, attempts, next_attempt_at, envelope FROM event_outbox"
      "  WHERE tenant_id = t.tenant AND sent_at IS NULL ORDER BY id LIMIT $2) AS r"
      " ORDER BY t.n, r.id",
      {common::PgTextArray(mine), std::to_string(config_.batch_size)});
  if (!rows.ok()) return rows.status();
  std::string current;  // the tenant of per_tenant.back()
  bool held = false;    // a row of `current` is still waiting out its back-off
  for (int i = 0; i < rows->rows(); ++i) {
    const std::string tenant(rows->Get(i, 0));
    if (per_tenant.empty() || tenant != current) {
      current = tenant;
      held = false;
      per_tenant.emplace_back();
    }
    // Up to the first row still waiting out its back-off: order within a tenant is kept.
    if (held || (held = rows->Get(i, 3) != "t")) continue;
    Pending p{{std::stoll(std::string(rows->Get(i, 1))), std::stoi(std::string(rows->Get(i, 2))),
               FromHexBytea(rows->Get(i, 4))},
              tenant,
              {}};
    auto promise = std::make_shared<std::promise<absl::StatusOr<kafka::DeliveryReport>>>();
    p.ack = promise->get_future();
    v1::Envelope env;
    const contracts::Route* route = nullptr;
    if (env.ParseFromString(p.row.bytes)) route = producer_.catalog().Find(env.type());
    if (route == nullptr) {
      promise->set_value(absl::DataLossError(common::Cat("outbox row ", p.row.id, " holds no routable envelope")));
    } else {
      producer_.SendRecord({.topic = route->topic,
                            .key = env.tenant_id(),
                            .value = p.row.bytes,
                            .headers = contracts::ToKafkaHeaders(env),
                            .event_id = env.id()},
                           [promise](absl::StatusOr<kafka::DeliveryReport> r) { promise->set_value(std::move(r)); });
    }
    per_tenant.back().push_back(std::move(p));
  }

  // Per tenant: the acknowledged prefix is marked sent; the first failure backs off and
  // holds the rest of its tenant.
  std::string ids = "{", topics = "{", partitions = "{", offsets = "{";
  int64_t ok = 0;
  for (auto& batch : per_tenant) {
    bool failed = false;
    for (auto& p : batch) {
      auto r = p.ack.get();
      if (failed) continue;
      if (r.ok()) {
        const char* sep = ok == 0 ? "" : ",";
        ids += common::Cat(sep, p.row.id);
        topics += common::Cat(sep, r->topic);
        partitions += common::Cat(sep, r->partition);
        offsets += common::Cat(sep, r->offset);
        ++ok;
        continue;
      }
      failed = true;
      double secs = std::min(absl::ToDoubleSeconds(config_.max_backoff),
                             absl::ToDoubleSeconds(config_.backoff) * std::pow(2.0, p.row.attempts));
      auto u = conn_->Exec(
          "UPDATE event_outbox SET attempts = attempts + 1, last_error = $2,"
          " next_attempt_at = clock_timestamp() + make_interval(secs => $3::double precision) WHERE id = $1",
          {std::to_string(p.row.id), std::string(r.status().message()), std::to_string(secs)});
      if (!u.ok()) return u.status();
      v1::Envelope env;
      (void)env.ParseFromString(p.row.bytes);
      common::ScopedLogContext log_ctx(env.id(), env.correlation_id(), env.traceparent());
      spdlog::warn("relay: tenant {} row {} failed (attempt {}), retry in {:.1f}s: {}", p.tenant, p.row.id,
                   p.row.attempts + 1, secs, r.status().message());
      ++failed_;
      if (metrics_) metrics_->errors.Increment();
    }
  }
  if (ok > 0) {
    auto u = conn_->Exec(
        "UPDATE event_outbox o SET sent_at = clock_timestamp(), sent_topic = s.topic, sent_partition = s.part,"
        " sent_offset = s.off, last_error = NULL"
        " FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bigint[]) AS s(id, topic, part, off) WHERE o.id = s.id",
        {ids + "}", topics + "}", partitions + "}", offsets + "}"});
    if (!u.ok()) return u.status();
  }
  return ok;
}

absl::StatusOr<int64_t> Relay::Prune() {
  if (config_.retention <= absl::ZeroDuration()) return 0;
  if (!conn_) {
    if (auto s = Connect(); !s.ok()) return s;
  }
  const absl::Time until = absl::Now() + config_.prune_budget;
  const int batch = std::max(1, config_.prune_batch);
  int64_t deleted = 0;
  while (true) {
    // The oldest first, through event_outbox_sent_idx.
    auto r = conn_->Exec(
        "DELETE FROM event_outbox WHERE id IN (SELECT id FROM event_outbox WHERE sent_at IS NOT NULL AND sent_at < "
        "now() - make_interval(secs => $1::double precision) ORDER BY sent_at LIMIT $2)",
        {std::to_string(absl::ToDoubleSeconds(config_.retention)), std::to_string(batch)});
    if (!r.ok()) return r.status();  // what earlier statements deleted stays deleted (and counted)
    deleted += r->affected();
    pruned_ += r->affected();
    if (r->affected() < batch || absl::Now() >= until || stop_.load()) return deleted;
  }
}

bool Relay::TakeNotifies() {
  PQconsumeInput(conn_->raw());
  bool notified = false;
  while (PGnotify* n = PQnotifies(conn_->raw())) {
    notified = true;
    PQfreemem(n);
  }
  return notified;
}

void Relay::WaitForWork() {
  // A NOTIFY that arrived while RunOnce's queries ran was read by libpq along with their
  // results and never makes the socket readable again: without this check the commit it
  // announces would wait a whole poll interval.
  if (TakeNotifies()) return;
  const absl::Time until = absl::Now() + config_.poll_interval;
  while (!stop_.load() && absl::Now() < until) {
    int fd = PQsocket(conn_->raw());
    if (fd < 0) return;
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    timeval tv{0, 100000};  // re-check stop every 100 ms
    if (select(fd + 1, &set, nullptr, nullptr, &tv) > 0 && TakeNotifies()) return;
    if (PQstatus(conn_->raw()) == CONNECTION_BAD) return;
  }
}

void Relay::Run() {
  absl::Time next_prune = absl::Now(), next_backlog = absl::Now();
  absl::Duration backoff = config_.backoff;
  while (!stop_.load()) {
    if (metrics_ && absl::Now() >= next_backlog) {
      if (auto s = UpdateBacklogMetrics(); !s.ok()) spdlog::warn("relay: backlog gauges: {}", s.message());
      next_backlog = absl::Now() + config_.backlog_interval;
    }
    auto n = RunOnce();
    if (!n.ok()) {
      spdlog::warn("relay: {}; retrying in {}", n.status().message(), absl::FormatDuration(backoff));
      if (conn_ && PQstatus(conn_->raw()) == CONNECTION_BAD) conn_.reset();
      if (n.status().code() == absl::StatusCode::kUnavailable) conn_.reset();
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, config_.max_backoff);
      continue;
    }
    backoff = config_.backoff;
    if (absl::Now() >= next_prune) {
      if (auto p = Prune(); !p.ok()) spdlog::warn("relay: prune: {}", p.status().message());
      next_prune = absl::Now() + absl::Minutes(1);
    }
    if (*n == 0 && conn_) WaitForWork();
  }
}

}  // namespace sluice::relay
