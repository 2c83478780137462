#include "gateway/event_query.h"

#include <absl/strings/str_join.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/time_util.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "common/strings.h"
#include "kafka/replay.h"
#include "contracts/envelope.h"
#include "contracts/json.h"
#include "contracts/validate.h"
#include "gateway/grpc_status.h"
#include "gateway/list_request.h"

namespace sluice::gateway {
namespace {

using common::Cat;
using common::PgConnection;
using google::protobuf::util::TimeUtil;

absl::Status Invalid(std::string_view field, std::string_view what) {
  return contracts::WithFieldPath(absl::InvalidArgumentError(Cat(field, ": ", what)), field);
}

// A stream slot, or none to hold when the service runs without caps.
absl::StatusOr<std::optional<StreamSlot>> OpenStreamSlot(StreamSlots* slots, const std::string& principal) {
  if (slots == nullptr) return std::optional<StreamSlot>();
  auto slot = slots->Acquire(principal);
  if (!slot.ok()) return slot.status();
  return std::optional<StreamSlot>(*std::move(slot));
}

// A column value known to be an integer.
template <class T>
T Int(std::string_view v) {
  T out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

constexpr char kEventCols[] =
    "id::text, type, source, tenant_id, (extract(epoch FROM occurred_at) * 1000000)::bigint,"
    " (extract(epoch FROM received_at) * 1000000)::bigint, payload::text, coalesce(correlation_id, ''),"
    " coalesce(causation_id, ''), coalesce(ttl_ms, 0), metadata::text, topic, \"partition\", \"offset\","
    " coalesce(version, ''), coalesce(traceparent, '')";

absl::StatusOr<v1::StoredEvent> ToStoredEvent(const common::PgResult& r, int i, const contracts::Catalog& catalog) {
  v1::StoredEvent out;
  v1::Envelope& e = *out.mutable_envelope();
  e.set_id(std::string(r.Get(i, 0)));
  e.set_type(std::string(r.Get(i, 1)));
  e.set_source(std::string(r.Get(i, 2)));
  e.set_tenant_id(std::string(r.Get(i, 3)));
  *e.mutable_occurred_at() = TimeUtil::MicrosecondsToTimestamp(Int<int64_t>(r.Get(i, 4)));
  *out.mutable_received_at() = TimeUtil::MicrosecondsToTimestamp(Int<int64_t>(r.Get(i, 5)));
  e.set_correlation_id(std::string(r.Get(i, 7)));
  e.set_causation_id(std::string(r.Get(i, 8)));
  e.set_ttl_ms(Int<int64_t>(r.Get(i, 9)));
  google::protobuf::Struct metadata;
  if (auto s = contracts::FromJson(r.Get(i, 10), metadata); !s.ok())
    return absl::DataLossError(Cat("event ", e.id(), ": stored metadata is not a JSON object: ", s.message()));
  for (const auto& [k, v] : metadata.fields()) (*e.mutable_metadata())[k] = v.string_value();
  out.set_topic(std::string(r.Get(i, 11)));
  out.set_partition(Int<int32_t>(r.Get(i, 12)));
  out.set_offset(Int<int64_t>(r.Get(i, 13)));
  e.set_version(std::string(r.Get(i, 14)));
  e.set_traceparent(std::string(r.Get(i, 15)));
  // The payload goes back into its oneof field by the type's route; a type this build's
  // catalog does not know keeps an empty payload.
  if (const contracts::Route* route = catalog.Find(e.type())) {
    const auto* field = e.GetDescriptor()->FindFieldByName(route->payload_field);
    if (field != nullptr) {
      google::protobuf::Message* payload = e.GetReflection()->MutableMessage(&e, field);
      if (auto s = contracts::FromJson(r.Get(i, 6), *payload); !s.ok())
        return absl::DataLossError(Cat("event ", e.id(), ": stored payload does not parse as ", route->payload_message,
                                       ": ", s.message()));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<v1::ListEventsResponse> EventLog::List(const v1::Principal& who, const v1::ListEventsRequest& req) {
  const v1::EventFilter& f = req.filter();
  auto q = CheckListRequest(catalog_, authz_, who, req);
  if (!q.ok()) return q.status();
  const int limit = q->limit;
  const std::string sql =
      Cat("SELECT ", kEventCols, " FROM event_log WHERE ", q->where, " ORDER BY occurred_at, id LIMIT ", limit + 1);

  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  absl::StatusOr<v1::ListEventsResponse> result = [&]() -> absl::StatusOr<v1::ListEventsResponse> {
    if (!f.json_path().empty()) {
      // Checked on its own so a bad path is the caller's error, not a failed query.
      if (auto p = (*conn)->Exec("SELECT $1::jsonpath", {f.json_path()}); !p.ok()) {
        if (p.status().code() == absl::StatusCode::kUnavailable) return p.status();
        // PostgreSQL's own text is not passed on (it can quote other data); the operator's
        // log has it.
        spdlog::info("gateway: ListEvents json_path refused: {}", p.status().message());
        return Invalid("filter.json_path", "not a valid SQL/JSON path expression");
      }
    }
    auto r = (*conn)->Exec(sql, q->params);
    if (!r.ok()) return r.status();
    v1::ListEventsResponse out;
    const int n = std::min(r->rows(), limit);
    for (int i = 0; i < n; ++i) {
      auto e = ToStoredEvent(*r, i, catalog_);
      if (!e.ok()) return e.status();
      *out.add_events() = *std::move(e);
    }
    if (r->rows() > limit) {
      out.set_has_more(true);
      out.set_next_cursor(EncodeCursor(Int<int64_t>(r->Get(n - 1, 4)), std::string(r->Get(n - 1, 0)), f));
    }
    return out;
  }();
  pool_.Release(*std::move(conn), result.status());
  return result;
}

absl::StatusOr<std::vector<v1::ConsumerLag>> ConsumerLags(const std::string& bootstrap,
                                                          const std::vector<std::string>& groups,
                                                          const std::vector<std::string>& topics) {
  constexpr int kTimeoutMs = 5000;
  // One handle per group: rd_kafka_committed asks the group's coordinator for the
  // group.id of the handle. Nothing joins the group.
  auto handle = [&](const std::string& group) -> absl::StatusOr<kafka::KafkaHandle> {
    auto conf = kafka::MakeConf({{"bootstrap.servers", bootstrap},
                                 {"group.id", group},
                                 {"client.id", "sluice-gateway-health"},
                                 {"enable.auto.commit", "false"}});
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

EventHealth::EventHealth(EventHealthConfig config, SourceActivity& activity, const RateLimiter& limits,
                         prometheus::Registry& registry, PgPool* pool)
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

absl::StatusOr<v1::GetEventHealthResponse> EventHealth::Get(const HealthScope& scope) const {
  v1::GetEventHealthResponse out;
  const absl::Time now = absl::Now();
  *out.mutable_measured_at() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now));
  const auto visible = [&](const std::string& tenant) { return scope.all_tenants || scope.tenants.contains(tenant); };
  if (scope.all_tenants) {  // partitions mix tenants: their lag is for callers who see every tenant
    // One measurement at a time: each opens Kafka clients (and their threads), so
    // concurrent callers must not multiply them. A caller that waited for another's
    // measurement, begun after it asked, takes that one; nothing older is reused.
    std::lock_guard lock(lag_mu_);
    if (lag_measured_at_ < now) {
      const absl::Time started = absl::Now();
      auto lags = ConsumerLags(config_.bootstrap_servers, config_.groups, config_.topics);
      if (!lags.ok()) return lags.status();
      lag_cache_ = *std::move(lags);
      lag_measured_at_ = started;
    }
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
    auto r = (*conn)->Exec(
        "SELECT topic, coalesce(tenant_id, ''), count(*), (extract(epoch FROM max(dead_lettered_at)) * 1000000)::bigint"
        " FROM event_dead_letter WHERE $1 OR tenant_id = ANY($2::text[]) GROUP BY 1, 2 ORDER BY 1, 2",
        {scope.all_tenants ? "true" : "false", TextArray(scope.tenants)});
    pool_->Release(*std::move(conn), r.status());
    if (!r.ok()) return r.status();
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
  auto r = (*conn)->Exec(common::Cat("SELECT tenant_id, count(*) FROM mdm_approval WHERE status = 'pending'"
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
    prometheus::Gauge& g = approvals_pending_.Add({{"tenant", tenant}});
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

grpc::Status EventQueryServiceImpl::ListEvents(grpc::ServerContext* ctx, const v1::ListEventsRequest* req,
                                               v1::ListEventsResponse* resp) {
  auto who = d_.tokens.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  if (d_.log == nullptr)
    return ToGrpcStatus(absl::FailedPreconditionError("ListEvents: this gateway has no --pg-dsn (event_log)"));
  auto r = d_.log->List(**who, *req);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status EventQueryServiceImpl::Subscribe(grpc::ServerContext* ctx, const v1::SubscribeRequest* req,
                                              grpc::ServerWriter<v1::SubscribeResponse>* writer) {
  auto who = d_.tokens.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  // Held for the whole call: each open feed costs a thread and a Kafka reader's threads.
  auto slot = OpenStreamSlot(d_.streams, (*who)->name());
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  const v1::EventFilter& f = req->filter();
  if (f.has_from_time() || f.has_to_time())
    return ToGrpcStatus(Invalid("filter.from_time", "a live feed has no time range (use ListEvents or Replay)"));
  if (!f.json_path().empty()) return ToGrpcStatus(Invalid("filter.json_path", "not supported by Subscribe"));
  auto tenants = d_.authz.ReadableTenants(**who, f.tenant_ids(), "filter.tenant_ids");
  if (!tenants.ok()) return ToGrpcStatus(tenants.status());
  if (auto s = CheckTypesAndSources(d_.catalog, f); !s.ok()) return ToGrpcStatus(s);
  kafka::RecordFilter filter{.tenants = *tenants,
                                .types = {f.types().begin(), f.types().end()},
                                .sources = {f.sources().begin(), f.sources().end()},
                                .correlation_id = f.correlation_id()};
  std::vector<std::string> topic_names;
  for (const auto& t : d_.catalog.topics()) topic_names.push_back(t.name());
  auto topics = f.types_size() > 0 ? kafka::ReplayTopics(d_.catalog, {}, {f.types().begin(), f.types().end()})
                                   : absl::StatusOr<std::vector<std::string>>(topic_names);
  if (!topics.ok()) return ToGrpcStatus(topics.status());
  auto reader = kafka::TopicReader::OpenLive(
      {.bootstrap_servers = d_.bootstrap_servers, .client_id = "sluice-gateway-subscribe"}, *topics);
  if (!reader.ok()) return ToGrpcStatus(reader.status());
  // Headers go out once the reader holds its start offsets: a client that waits for them
  // sees every event published afterwards.
  writer->SendInitialMetadata();
  spdlog::info("gateway: {} subscribed ({} topics)", (*who)->name(), topics->size());
  while (!ctx->IsCancelled() && !d_.stopping.load()) {
    auto batch = (*reader)->Next(200, absl::Milliseconds(200));
    if (!batch.ok()) return ToGrpcStatus(batch.status());
    for (const auto& r : *batch) {
      if (!filter.Matches(r.envelope)) continue;
      v1::SubscribeResponse out;
      v1::StoredEvent* e = out.mutable_event();
      *e->mutable_envelope() = r.envelope;
      e->set_topic(r.topic);
      e->set_partition(r.partition);
      e->set_offset(r.offset);
      *e->mutable_received_at() = TimeUtil::MillisecondsToTimestamp(r.timestamp_ms);
      if (!writer->Write(out)) return grpc::Status::OK;  // the caller went away
    }
  }
  return d_.stopping.load() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "gateway shutting down") : grpc::Status::OK;
}

grpc::Status EventQueryServiceImpl::Replay(grpc::ServerContext* ctx, const v1::ReplayRequest* req,
                                           grpc::ServerWriter<v1::ReplayResponse>* writer) {
  auto who = d_.tokens.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  auto slot = OpenStreamSlot(d_.streams, (*who)->name());  // like Subscribe's
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  auto tenants = d_.authz.ReadableTenants(**who, req->tenant_ids(), "tenant_ids");
  if (!tenants.ok()) return ToGrpcStatus(tenants.status());
  if (!req->target_topic().empty()) {
    if (auto s = d_.authz.MayRepublish(**who, req->target_topic()); !s.ok()) return ToGrpcStatus(s);
  }
  for (int i = 0; i < req->topics_size(); ++i)
    if (auto s = d_.authz.MayReadTopic(req->topics(i), Cat("topics[", i, "]")); !s.ok()) return ToGrpcStatus(s);
  kafka::ReplaySpec spec;
  auto topics = kafka::ReplayTopics(d_.catalog, {req->topics().begin(), req->topics().end()},
                                       {req->types().begin(), req->types().end()});
  if (!topics.ok()) {
    const bool no_topic = req->topics_size() == 0 && req->types_size() == 0;
    return ToGrpcStatus(contracts::WithFieldPath(topics.status(), no_topic ? "topics" : "types"));
  }
  spec.topics = *topics;
  if (req->has_from_offset() && req->from_offset() < 0)
    return ToGrpcStatus(Invalid("from_offset", "must not be negative"));
  if (req->has_to_offset() && req->to_offset() < 0) return ToGrpcStatus(Invalid("to_offset", "must not be negative"));
  if (req->has_from_offset() && req->has_to_offset() && req->to_offset() < req->from_offset())
    return ToGrpcStatus(Invalid("to_offset", "before from_offset"));
  if (req->has_partition() && req->partition() < 0) return ToGrpcStatus(Invalid("partition", "must not be negative"));
  if (req->has_from_time())
    if (auto s = CheckTime(req->from_time(), "from_time"); !s.ok()) return ToGrpcStatus(s);
  if (req->has_to_time())
    if (auto s = CheckTime(req->to_time(), "to_time"); !s.ok()) return ToGrpcStatus(s);
  if (req->has_from_time() && req->has_to_time() &&
      TimeUtil::TimestampToMicroseconds(req->to_time()) < TimeUtil::TimestampToMicroseconds(req->from_time()))
    return ToGrpcStatus(Invalid("to_time", "before from_time"));
  if (req->has_from_offset()) spec.range.from_offset = req->from_offset();
  if (req->has_to_offset()) spec.range.to_offset = req->to_offset();
  if (req->has_partition()) spec.range.partition = req->partition();
  if (req->has_from_time()) spec.range.from_time = absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(req->from_time()));
  if (req->has_to_time()) spec.range.to_time = absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(req->to_time()));
  spec.filter = {.tenants = *tenants,
                 .types = {req->types().begin(), req->types().end()},
                 .sources = {req->sources().begin(), req->sources().end()}};
  spec.target_topic = req->target_topic();
  auto stats = kafka::Replay(
      {.bootstrap_servers = d_.bootstrap_servers, .client_id = "sluice-gateway-replay"}, spec, &d_.producer,
      [&](const kafka::Record& r, const kafka::DeliveryReport* sent) -> absl::Status {
        if (ctx->IsCancelled() || d_.stopping.load()) return absl::CancelledError("replay cancelled");
        v1::ReplayResponse out;
        v1::StoredEvent* e = out.mutable_event();
        *e->mutable_envelope() = r.envelope;
        e->set_topic(r.topic);
        e->set_partition(r.partition);
        e->set_offset(r.offset);
        *e->mutable_received_at() = TimeUtil::MillisecondsToTimestamp(r.timestamp_ms);
        if (sent != nullptr) {
          v1::Delivery* d = out.mutable_republished();
          d->set_event_id(sent->event_id);
          d->set_topic(sent->topic);
          d->set_partition(sent->partition);
          d->set_offset(sent->offset);
        }
        if (!writer->Write(out)) return absl::CancelledError("the caller went away");
        return absl::OkStatus();
      });
  if (!stats.ok()) {
    const auto code = stats.status().code();
    // Range errors come back from the reader without a field path: name the request field.
    if (code == absl::StatusCode::kInvalidArgument && !contracts::FieldPathOf(stats.status())) {
      std::string msg(stats.status().message());
      std::string field = msg.substr(0, msg.find(':'));
      return ToGrpcStatus(contracts::WithFieldPath(stats.status(), field));
    }
    return ToGrpcStatus(stats.status());
  }
  spdlog::info("gateway: {} replayed {} events from {}{}", (*who)->name(), stats->matched, absl::StrJoin(spec.topics, ","),
               spec.target_topic.empty() ? "" : Cat(" into ", spec.target_topic));
  v1::ReplayResponse last;
  v1::ReplaySummary* s = last.mutable_summary();
  s->set_matched(static_cast<int64_t>(stats->matched));
  s->set_filtered_out(static_cast<int64_t>(stats->filtered_out));
  s->set_outside_window(static_cast<int64_t>(stats->reader.outside_window));
  s->set_republished(static_cast<int64_t>(stats->republished));
  writer->Write(last);
  return grpc::Status::OK;
}

grpc::Status EventQueryServiceImpl::GetEventHealth(grpc::ServerContext* ctx, const v1::GetEventHealthRequest*,
                                                   v1::GetEventHealthResponse* resp) {
  auto who = d_.tokens.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  // Each caller sees its own tenants' sources; consumer lag only with every tenant.
  HealthScope scope{.all_tenants = contracts::Authorizer::SeesAllTenants(**who)};
  if (!scope.all_tenants) {
    auto tenants = d_.authz.ReadableTenants(**who, {}, "tenant_ids");
    if (!tenants.ok()) return ToGrpcStatus(tenants.status());
    scope.tenants = *std::move(tenants);
  }
  auto h = d_.health.Get(scope);
  if (!h.ok()) return ToGrpcStatus(h.status());
  *resp = *std::move(h);
  return grpc::Status::OK;
}

}  // namespace sluice::gateway
