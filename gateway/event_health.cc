#include "gateway/event_health.h"

#include <google/protobuf/util/time_util.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "common/pg.h"
#include "common/strings.h"
#include "kafka/util.h"

namespace sluice::gateway {
namespace {

using common::Cat;
using google::protobuf::util::TimeUtil;

// A column value known to be an integer.
template <class T>
T Int(std::string_view v) {
  T out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

}  // namespace

absl::StatusOr<std::vector<v1::ConsumerLag>> ConsumerLags(const std::string& bootstrap,
                                                          const std::vector<std::string>& groups,
                                                          const std::vector<std::string>& topics,
                                                          const std::map<std::string, std::string>& librdkafka) {
  constexpr int kTimeoutMs = 5000;
  // One handle per group: rd_kafka_committed asks the group's coordinator for the
  // group.id of the handle. Nothing joins the group.
  auto handle = [&](const std::string& group) -> absl::StatusOr<kafka::KafkaHandle> {
    std::map<std::string, std::string> settings = librdkafka;
    settings["bootstrap.servers"] = bootstrap;
    settings["group.id"] = group;
    settings["client.id"] = "sluice-gateway-health";
    settings["enable.auto.commit"] = "false";
    auto conf = kafka::MakeConf(settings);
    if (!conf.ok()) return conf.status();
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), err, sizeof(err));
    if (rk == nullptr) return absl::InternalError(Cat("health: ", err));
    conf->release();
    return kafka::KafkaHandle(rk);
  };
  std::vector<v1::ConsumerLag> out;
  if (groups.empty() || topics.empty()) return out;
  auto probe = handle("sluice-gateway-health");
  if (!probe.ok()) return probe.status();
  const rd_kafka_metadata_t* md = nullptr;
  if (auto e = rd_kafka_metadata(probe->get(), 1, nullptr, &md, kTimeoutMs); e != RD_KAFKA_RESP_ERR_NO_ERROR)
    return kafka::KafkaStatus(e, "health: cluster metadata");
  std::map<std::string, int> partitions;
  for (int i = 0; i < md->topic_cnt; ++i)
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) partitions[md->topics[i].topic] = md->topics[i].partition_cnt;
  rd_kafka_metadata_destroy(md);
  std::map<std::pair<std::string, int32_t>, int64_t> end;
  for (const auto& t : topics) {
    auto it = partitions.find(t);
    if (it == partitions.end()) continue;
    for (int32_t p = 0; p < it->second; ++p) {
      int64_t lo = 0, hi = 0;
      if (auto s = kafka::QueryWatermarks(probe->get(), t, p, lo, hi); !s.ok()) return s;
      end[{t, p}] = hi;
    }
  }
  for (const auto& group : groups) {
    auto rk = handle(group);
    if (!rk.ok()) return rk.status();
    kafka::PartitionListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(end.size())));
    for (const auto& [tp, hi] : end) rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second);
    if (auto e = rd_kafka_committed(rk->get(), list.get(), kTimeoutMs); e != RD_KAFKA_RESP_ERR_NO_ERROR)
      return kafka::KafkaStatus(e, Cat("health: committed offsets of group ", group));
    std::set<std::string> read;  // topics the group has committed on
    for (int i = 0; i < list->cnt; ++i)
      if (list->elems[i].offset >= 0) read.insert(list->elems[i].topic);
    for (int i = 0; i < list->cnt; ++i) {
      const auto& p = list->elems[i];
      if (!read.contains(p.topic)) continue;
      v1::ConsumerLag lag;
      lag.set_group(group);
      lag.set_topic(p.topic);
      lag.set_partition(p.partition);
      lag.set_end_offset(end[{p.topic, p.partition}]);
      // A partition without a commit yet counts every record in it as lag.
      lag.set_committed_offset(p.offset >= 0 ? p.offset : -1);
      lag.set_lag(std::max<int64_t>(0, lag.end_offset() - std::max<int64_t>(0, p.offset)));
      out.push_back(std::move(lag));
    }
  }
  return out;
}

EventHealth::EventHealth(EventHealthConfig config, SourceActivity& activity, const SourceLimits& limits,
                         prometheus::Registry& registry, common::PgPool* pool)
    : config_(std::move(config)),
      activity_(activity),
      limits_(limits),
      lag_(prometheus::BuildGauge()
               .Name("sluice_consumer_lag")
               .Help("Records in the partition after the group's committed offset")
               .Register(registry)),
      rate_(prometheus::BuildGauge()
                .Name("sluice_source_publish_rate")
                .Help("Events per second the gateway accepted from the source over the last minute")
                .Register(registry)),
      last_seen_(prometheus::BuildGauge()
                     .Name("sluice_source_last_seen_timestamp_seconds")
                     .Help("Unix time of the source's last event accepted by the gateway")
                     .Register(registry)),
      paused_(prometheus::BuildGauge()
                  .Name("sluice_source_paused")
                  .Help("1 while the source is paused by its rate limit")
                  .Register(registry)),
      approvals_pending_(prometheus::BuildGauge()
                             .Name("metadata_approvals_pending")
                             .Help("Approvals waiting for a decision, per tenant")
                             .Register(registry)),
      pool_(pool) {
  if (config_.metrics_interval > absl::ZeroDuration()) thread_ = std::thread([this] { Loop(); });
}

EventHealth::~EventHealth() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status EventHealth::MeasureLags(absl::Time not_before) const {
  // One measurement at a time (the caller holds lag_mu_): each opens Kafka clients (and
  // their threads), so concurrent callers must not multiply them. A caller that waited
  // for another's measurement, begun at or after `not_before`, takes that one.
  if (lag_measured_at_ >= not_before) return absl::OkStatus();
  const absl::Time started = absl::Now();
  auto lags = ConsumerLags(config_.bootstrap_servers, config_.groups, config_.topics, config_.librdkafka);
  if (!lags.ok()) return lags.status();
  lag_cache_ = *std::move(lags);
  lag_measured_at_ = started;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<int64_t>> EventHealth::GroupLag(const std::string& group, absl::Duration max_age) const {
  if (std::find(config_.groups.begin(), config_.groups.end(), group) == config_.groups.end())
    return absl::InvalidArgumentError(common::Cat("consumer group ", group, " is not measured (--health-group)"));
  // Waits at most 2 s for a measurement under way (one takes the Kafka timeouts while the
  // brokers are away); a failure within max_age is answered again without measuring.
  std::unique_lock lock(lag_mu_, std::defer_lock);
  if (!lock.try_lock_for(std::chrono::seconds(2)))
    return absl::UnavailableError("consumer lag: a measurement is under way");
  const absl::Time now = absl::Now();
  if (!lag_error_.ok() && lag_error_at_ >= now - max_age) return lag_error_;
  if (auto s = MeasureLags(now - max_age); !s.ok()) {
    lag_error_ = s;
    lag_error_at_ = now;
    return s;
  }
  lag_error_ = absl::OkStatus();
  std::optional<int64_t> total;
  for (const auto& l : lag_cache_)
    if (l.group() == group) total = total.value_or(0) + l.lag();
  return total;
}

absl::StatusOr<v1::GetEventHealthResponse> EventHealth::Get(const HealthScope& scope) const {
  v1::GetEventHealthResponse out;
  const absl::Time now = absl::Now();
  *out.mutable_measured_at() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now));
  out.set_replica(config_.replica);
  const auto visible = [&](const std::string& tenant) { return scope.all_tenants || scope.tenants.contains(tenant); };
  if (scope.all_tenants) {  // partitions mix tenants: their lag is for callers who see every tenant
    std::lock_guard lock(lag_mu_);
    if (auto s = MeasureLags(now); !s.ok()) return s;
    for (const auto& l : lag_cache_) *out.add_consumer_lag() = l;
  }
  std::map<std::pair<std::string, std::string>, absl::Time> paused;  // (tenant, source)
  for (const auto& p : limits_.Paused(now))
    if (visible(p.tenant)) paused[{p.tenant, p.source}] = p.until;
  for (const auto& s : activity_.Snapshots(now)) {
    if (!visible(s.tenant)) continue;
    v1::SourceActivity* a = out.add_sources();
    a->set_tenant_id(s.tenant);
    a->set_source(s.source);
    a->set_publish_rate_per_s(s.rate_per_s);
    a->set_published_total(s.published);
    a->set_rate_limited_total(s.rate_limited);
    if (s.last_seen != absl::InfinitePast())
      *a->mutable_last_seen() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(s.last_seen));
    if (s.recent) {
      *a->mutable_lag_latest() = TimeUtil::MicrosecondsToDuration(absl::ToInt64Microseconds(s.lag_latest));
      *a->mutable_lag_avg() = TimeUtil::MicrosecondsToDuration(absl::ToInt64Microseconds(s.lag_avg));
      *a->mutable_lag_max() = TimeUtil::MicrosecondsToDuration(absl::ToInt64Microseconds(s.lag_max));
    }
    if (auto it = paused.find({s.tenant, s.source}); it != paused.end()) {
      *a->mutable_paused_until() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(it->second));
      paused.erase(it);
    }
  }
  for (const auto& [key, until] : paused) {
    v1::SourceActivity* a = out.add_sources();
    a->set_tenant_id(key.first);
    a->set_source(key.second);
    *a->mutable_paused_until() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(until));
  }
  if (pool_ != nullptr && (scope.all_tenants || !scope.tenants.empty())) {
    auto conn = pool_->Acquire();
    if (!conn.ok()) return conn.status();
    const std::vector<std::optional<std::string>> who = {scope.all_tenants ? "true" : "false",
                                                         common::PgTextArray(scope.tenants)};
    // Dead letters; the relay's backlog and the profile jobs not finished, per tenant, at
    // most kMaxBacklogTenants of each (those furthest behind first). The first statement
    // that fails ends the call.
    const std::string statements[] = {
        "SELECT topic, coalesce(tenant_id, ''), count(*), (extract(epoch FROM max(dead_lettered_at)) * 1000000)::bigint"
        " FROM event_dead_letter WHERE $1 OR tenant_id = ANY($2::text[]) GROUP BY 1, 2 ORDER BY 1, 2",
        Cat("SELECT tenant_id, count(*), (extract(epoch FROM min(created_at)) * 1000000)::bigint,"
            " count(*) FILTER (WHERE attempts > 0)"
            " FROM event_outbox WHERE sent_at IS NULL AND ($1 OR tenant_id = ANY($2::text[]))"
            " GROUP BY 1 ORDER BY 3, 1 LIMIT ",
            kMaxBacklogTenants),
        Cat("SELECT tenant_id, count(*) FILTER (WHERE status = 'pending' AND attempts = 0),"
            " count(*) FILTER (WHERE status = 'running'), count(*) FILTER (WHERE status = 'pending' AND attempts > 0),"
            " (extract(epoch FROM min(next_attempt_at) FILTER (WHERE status = 'pending' AND attempts > 0))"
            " * 1000000)::bigint"
            " FROM mdm_profile_job WHERE status IN ('pending', 'running') AND ($1 OR tenant_id = ANY($2::text[]))"
            " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ",
            kMaxBacklogTenants),
        // Triggers: their states, backlog and the last hour's attempts.
        Cat("SELECT t.tenant_id, count(*) FILTER (WHERE NOT t.paused AND coalesce(t.auto_paused_until <= now(), true)),"
            " count(*) FILTER (WHERE t.paused), count(*) FILTER (WHERE NOT t.paused AND t.auto_paused_until > now()),"
            " coalesce(sum(d.pending), 0), coalesce(sum(d.retrying), 0), coalesce(sum(a.delivered), 0),"
            " coalesce(sum(a.failed), 0)"
            " FROM event_trigger t"
            " LEFT JOIN LATERAL (SELECT count(*) AS pending, count(*) FILTER (WHERE attempts > 0) AS retrying"
            "   FROM trigger_delivery d WHERE d.tenant_id = t.tenant_id AND d.trigger_id = t.id"
            "   AND d.state = 'pending') d ON true"
            " LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE outcome = 'delivered') AS delivered,"
            "   count(*) FILTER (WHERE outcome <> 'delivered') AS failed"
            "   FROM trigger_delivery_attempt a WHERE a.tenant_id = t.tenant_id AND a.trigger_id = t.id"
            "   AND a.attempted_at > now() - interval '1 hour') a ON true"
            " WHERE $1 OR t.tenant_id = ANY($2::text[]) GROUP BY 1 ORDER BY 1 LIMIT ",
            kMaxBacklogTenants)};
    std::vector<common::PgResult> results;
    absl::Status failed;
    for (const auto& sql : statements) {
      auto r = (*conn)->Exec(sql, who);
      if (!r.ok()) {
        failed = r.status();
        break;
      }
      results.push_back(*std::move(r));
    }
    pool_->Release(*std::move(conn), failed);
    if (!failed.ok()) return failed;
    const common::PgResult* r = &results[0];
    const common::PgResult* outbox = &results[1];
    const common::PgResult* jobs = &results[2];
    const common::PgResult* triggers = &results[3];
    for (int i = 0; i < triggers->rows(); ++i) {
      v1::TriggerHealth* t = out.add_triggers();
      t->set_tenant_id(std::string(triggers->Get(i, 0)));
      t->set_active(Int<int64_t>(triggers->Get(i, 1)));
      t->set_paused(Int<int64_t>(triggers->Get(i, 2)));
      t->set_auto_paused(Int<int64_t>(triggers->Get(i, 3)));
      t->set_pending(Int<int64_t>(triggers->Get(i, 4)));
      t->set_retrying(Int<int64_t>(triggers->Get(i, 5)));
      t->set_delivered_last_hour(Int<int64_t>(triggers->Get(i, 6)));
      t->set_failed_last_hour(Int<int64_t>(triggers->Get(i, 7)));
    }
    for (int i = 0; i < outbox->rows(); ++i) {
      v1::OutboxBacklog* o = out.add_outbox();
      o->set_tenant_id(std::string(outbox->Get(i, 0)));
      o->set_unsent(Int<int64_t>(outbox->Get(i, 1)));
      *o->mutable_oldest_unsent() = TimeUtil::MicrosecondsToTimestamp(Int<int64_t>(outbox->Get(i, 2)));
      o->set_retrying(Int<int64_t>(outbox->Get(i, 3)));
    }
    for (int i = 0; i < jobs->rows(); ++i) {
      v1::ProfileJobBacklog* j = out.add_profile_jobs();
      j->set_tenant_id(std::string(jobs->Get(i, 0)));
      j->set_pending(Int<int64_t>(jobs->Get(i, 1)));
      j->set_running(Int<int64_t>(jobs->Get(i, 2)));
      j->set_waiting_retry(Int<int64_t>(jobs->Get(i, 3)));
      if (!jobs->IsNull(i, 4))
        *j->mutable_next_retry() = TimeUtil::MicrosecondsToTimestamp(Int<int64_t>(jobs->Get(i, 4)));
    }
    for (int i = 0; i < r->rows(); ++i) {
      v1::DeadLetterCount* d = out.add_dead_letters();
      d->set_topic(std::string(r->Get(i, 0)));
      d->set_tenant_id(std::string(r->Get(i, 1)));
      d->set_count(Int<int64_t>(r->Get(i, 2)));
      *d->mutable_newest() = TimeUtil::MicrosecondsToTimestamp(Int<int64_t>(r->Get(i, 3)));
    }
  }
  return out;
}

absl::Status EventHealth::UpdateApprovalsPending() {
  if (pool_ == nullptr) return absl::OkStatus();
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  // The tenants with the most pending approvals, at most kMaxPendingTenants of them: one
  // series per tenant, and a "*" caller can create approvals for any number of tenants.
  auto r =
      (*conn)->Exec(common::Cat("SELECT tenant_id, count(*) FROM mdm_approval WHERE status = 'pending'"
                                " GROUP BY tenant_id ORDER BY count(*) DESC, tenant_id LIMIT ",
                                kMaxPendingTenants));
  pool_->Release(*std::move(conn), r.status());
  if (!r.ok()) return r.status();
  std::map<std::string, double> now;
  for (int i = 0; i < r->rows(); ++i) now[std::string(r->Get(i, 0))] = std::stod(std::string(r->Get(i, 1)));
  // A tenant reported before and absent now has nothing pending (or fell out of the top):
  // 0 for one refresh, then its series is removed, so the count stays bounded.
  for (auto it = pending_series_.begin(); it != pending_series_.end();) {
    if (now.contains(it->first)) {
      ++it;
    } else if (it->second.second) {  // already reported as 0
      approvals_pending_.Remove(it->second.first);
      it = pending_series_.erase(it);
    } else {
      it->second.first->Set(0);
      it->second.second = true;
      ++it;
    }
  }
  for (const auto& [tenant, n] : now) {
    prometheus::Gauge& g = approvals_pending_.Add({{"tenant_id", tenant}});
    g.Set(n);
    pending_series_[tenant] = {&g, false};
  }
  return absl::OkStatus();
}

void EventHealth::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    auto h = Get(HealthScope{.all_tenants = true});
    if (h.ok()) {
      for (const auto& l : h->consumer_lag())
        lag_.Add({{"group", l.group()}, {"topic", l.topic()}, {"partition", std::to_string(l.partition())}})
            .Set(static_cast<double>(l.lag()));
      // Gauges are per source (a closed set from the catalog), summed over tenants, so the
      // series count does not grow with the number of tenants.
      struct PerSource {
        double rate = 0;
        int64_t last_seen = 0;
        int paused = 0;
      };
      std::map<std::string, PerSource> per_source;
      for (const auto& s : h->sources()) {
        PerSource& p = per_source[s.source()];
        p.rate += s.publish_rate_per_s();
        if (s.has_last_seen()) p.last_seen = std::max<int64_t>(p.last_seen, s.last_seen().seconds());
        if (s.has_paused_until()) p.paused = 1;
      }
      for (const auto& [source, p] : per_source) {
        rate_.Add({{"source", source}}).Set(p.rate);
        if (p.last_seen > 0) last_seen_.Add({{"source", source}}).Set(static_cast<double>(p.last_seen));
        paused_.Add({{"source", source}}).Set(p.paused);
      }
    } else {
      spdlog::warn("gateway: event health: {}", h.status().message());
    }
    if (auto s = UpdateApprovalsPending(); !s.ok()) spdlog::warn("gateway: approvals pending gauge: {}", s.message());
    lock.lock();
    cv_.wait_for(lock, absl::ToChronoMilliseconds(config_.metrics_interval), [&] { return stop_; });
  }
}

}  // namespace sluice::gateway
