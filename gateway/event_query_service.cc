#include "gateway/event_query_service.h"

#include <absl/strings/str_join.h>
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <optional>

#include "common/strings.h"
#include "contracts/derived.h"
#include "contracts/validate.h"
#include "gateway/grpc_status.h"
#include "gateway/list_request.h"
#include "kafka/replay.h"

namespace sluice::gateway {
namespace {

using common::Cat;
using google::protobuf::util::TimeUtil;

absl::Status Invalid(std::string_view field, std::string_view what) { return contracts::InvalidField(field, what); }

// A stream slot, or none to hold when the service runs without caps.
absl::StatusOr<std::optional<StreamSlot>> OpenStreamSlot(StreamSlots* slots, const std::string& principal) {
  if (slots == nullptr) return std::optional<StreamSlot>();
  auto slot = slots->Acquire(principal);
  if (!slot.ok()) return slot.status();
  return std::optional<StreamSlot>(*std::move(slot));
}

}  // namespace

absl::StatusOr<v1::ListEventsResponse> EventQueryServiceImpl::List(const v1::Principal& who,
                                                                   const v1::ListEventsRequest& req) const {
  if (d_.log == nullptr) return absl::FailedPreconditionError("ListEvents: this gateway has no --pg-dsn (event_log)");
  auto r = d_.log->List(who, req);
  if (!r.ok()) return r.status();
  if (r->events_size() == 0 && req.cursor().empty() && !d_.event_log_group.empty()) r->set_notice(EventLogNotice());
  return r;
}

absl::StatusOr<v1::GetEventResponse> EventQueryServiceImpl::Get(const v1::Principal& who,
                                                                const v1::GetEventRequest& req) const {
  if (d_.log == nullptr) return absl::FailedPreconditionError("GetEvent: this gateway has no --pg-dsn (event_log)");
  return d_.log->Get(who, req);
}

absl::StatusOr<v1::GetEventHealthResponse> EventQueryServiceImpl::Health(const v1::Principal& who) const {
  // Each caller sees its own tenants' sources; consumer lag only with every tenant.
  HealthScope scope{.all_tenants = contracts::Authorizer::SeesAllTenants(who)};
  if (!scope.all_tenants) {
    auto tenants = d_.authz.ReadableTenants(who, {}, "tenant_ids");
    if (!tenants.ok()) return tenants.status();
    scope.tenants = *std::move(tenants);
  }
  return d_.health.Get(scope);
}

absl::StatusOr<std::optional<StreamSlot>> EventQueryServiceImpl::OpenFeed(const v1::Principal& who,
                                                                          const v1::EventFilter& f) const {
  // Held for the whole feed: each open feed costs a thread and a Kafka reader's threads.
  auto slot = OpenStreamSlot(d_.streams, who.name());
  if (!slot.ok()) return slot.status();
  if (f.has_from_time() || f.has_to_time())
    return Invalid("filter.from_time", "a live feed has no time range (use ListEvents or Replay)");
  if (!f.json_path().empty()) return Invalid("filter.json_path", "not supported by a live feed");
  if (auto tenants = d_.authz.ReadableTenants(who, f.tenant_ids(), "filter.tenant_ids"); !tenants.ok())
    return tenants.status();
  if (auto s = CheckTypesAndSources(d_.catalog, f); !s.ok()) return s;
  return slot;
}

absl::Status EventQueryServiceImpl::Feed(const v1::Principal& who, const v1::EventFilter& f,
                                         const FeedCalls& calls) const {
  auto tenants = d_.authz.ReadableTenants(who, f.tenant_ids(), "filter.tenant_ids");
  if (!tenants.ok()) return tenants.status();
  const std::set<v1::EventSeverity> severities = Severities(f);
  kafka::RecordFilter filter{.tenants = *tenants,
                             .types = {f.types().begin(), f.types().end()},
                             .sources = {f.sources().begin(), f.sources().end()},
                             .correlation_id = f.correlation_id()};
  std::vector<std::string> topic_names;
  for (const auto& t : d_.catalog.topics()) topic_names.push_back(t.name());
  auto topics = f.types_size() > 0 ? kafka::ReplayTopics(d_.catalog, {}, {f.types().begin(), f.types().end()})
                                   : absl::StatusOr<std::vector<std::string>>(topic_names);
  if (!topics.ok()) return topics.status();
  auto reader = kafka::TopicReader::OpenLive({.bootstrap_servers = d_.bootstrap_servers,
                                              .client_id = "sluice-gateway-subscribe",
                                              .librdkafka = d_.kafka_client},
                                             *topics);
  if (!reader.ok()) return reader.status();
  // The caller hears "live" once the reader holds its start offsets: a client that waits
  // for it sees every event published afterwards.
  if (!calls.live()) return absl::OkStatus();
  spdlog::info("gateway: {} subscribed ({} topics)", who.name(), topics->size());
  while (!calls.cancelled() && !d_.stopping.load()) {
    auto batch = (*reader)->Next(200, absl::Milliseconds(200));
    if (!batch.ok()) return batch.status();
    for (const auto& r : *batch) {
      if (!filter.Matches(r.envelope)) continue;
      if (!severities.empty() && !severities.contains(contracts::SeverityOf(r.envelope))) continue;
      v1::StoredEvent e;
      *e.mutable_envelope() = r.envelope;
      e.set_topic(r.topic);
      e.set_partition(r.partition);
      e.set_offset(r.offset);
      *e.mutable_received_at() = TimeUtil::MillisecondsToTimestamp(r.timestamp_ms);
      contracts::Derive(e);
      if (!calls.write(e)) return absl::OkStatus();  // the caller went away
    }
  }
  return d_.stopping.load() ? absl::UnavailableError("gateway shutting down") : absl::OkStatus();
}

grpc::Status EventQueryServiceImpl::ListEvents(grpc::ServerContext* ctx, const v1::ListEventsRequest* req,
                                               v1::ListEventsResponse* resp) {
  auto who = d_.tokens.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  auto r = List(**who, *req);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status EventQueryServiceImpl::GetEvent(grpc::ServerContext* ctx, const v1::GetEventRequest* req,
                                             v1::GetEventResponse* resp) {
  auto who = d_.tokens.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  auto r = Get(**who, *req);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

std::string EventQueryServiceImpl::EventLogNotice() const {
  // Says nothing of how far behind (the lag mixes every tenant's events): only whether the
  // log can be expected to hold what was published.
  auto lag = d_.health.GroupLag(d_.event_log_group, d_.notice_max_age);
  if (!lag.ok()) {
    // (The health loop logs failed measurements; this one only skips the notice.)
    spdlog::debug("gateway: ListEvents notice skipped: {}", lag.status().message());
    return "";
  }
  if (!lag->has_value())
    return common::Cat("the event log is written by the audit sink (sluice-audit, consumer group ", d_.event_log_group,
                       "), which has not stored anything yet: is it running?");
  if (**lag > 0)
    return common::Cat("the audit sink (consumer group ", d_.event_log_group,
                       ") is behind the topics: events published recently may not be in the event log yet");
  return "";
}

grpc::Status EventQueryServiceImpl::Subscribe(grpc::ServerContext* ctx, const v1::SubscribeRequest* req,
                                              grpc::ServerWriter<v1::SubscribeResponse>* writer) {
  auto who = d_.tokens.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  auto slot = OpenFeed(**who, req->filter());
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  return ToGrpcStatus(Feed(**who, req->filter(),
                           {.live =
                                [&] {
                                  // Headers go out once the feed is live.
                                  writer->SendInitialMetadata();
                                  return true;
                                },
                            .write =
                                [&](const v1::StoredEvent& e) {
                                  v1::SubscribeResponse out;
                                  *out.mutable_event() = e;
                                  return writer->Write(out);
                                },
                            .cancelled = [&] { return ctx->IsCancelled(); }}));
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
  if (auto s = CheckTimeRange(req->has_from_time() ? &req->from_time() : nullptr,
                              req->has_to_time() ? &req->to_time() : nullptr, "from_time", "to_time");
      !s.ok())
    return ToGrpcStatus(s);
  if (req->has_from_offset()) spec.range.from_offset = req->from_offset();
  if (req->has_to_offset()) spec.range.to_offset = req->to_offset();
  if (req->has_partition()) spec.range.partition = req->partition();
  if (req->has_from_time())
    spec.range.from_time = absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(req->from_time()));
  if (req->has_to_time()) spec.range.to_time = absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(req->to_time()));
  spec.filter = {.tenants = *tenants,
                 .types = {req->types().begin(), req->types().end()},
                 .sources = {req->sources().begin(), req->sources().end()}};
  spec.target_topic = req->target_topic();
  const kafka::ReaderConfig reader{
      .bootstrap_servers = d_.bootstrap_servers, .client_id = "sluice-gateway-replay", .librdkafka = d_.kafka_client};
  auto stats = kafka::Replay(reader, spec, &d_.producer,
                             [&](const kafka::Record& r, const kafka::DeliveryReport* sent) -> absl::Status {
                               if (ctx->IsCancelled() || d_.stopping.load())
                                 return absl::CancelledError("replay cancelled");
                               v1::ReplayResponse out;
                               v1::StoredEvent* e = out.mutable_event();
                               *e->mutable_envelope() = r.envelope;
                               e->set_topic(r.topic);
                               e->set_partition(r.partition);
                               e->set_offset(r.offset);
                               *e->mutable_received_at() = TimeUtil::MillisecondsToTimestamp(r.timestamp_ms);
                               contracts::Derive(*e);
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
  spdlog::info("gateway: {} replayed {} events from {}{}", (*who)->name(), stats->matched,
               absl::StrJoin(spec.topics, ","), spec.target_topic.empty() ? "" : Cat(" into ", spec.target_topic));
  v1::ReplayResponse last;
  v1::ReplaySummary* s = last.mutable_summary();
  s->set_matched(static_cast<int64_t>(stats->matched));
  s->set_filtered_out(static_cast<int64_t>(stats->filtered_out));
  s->set_outside_window(static_cast<int64_t>(stats->reader.outside_window));
  s->set_republished(static_cast<int64_t>(stats->republished));
  writer->Write(last);
  return grpc::Status::OK;
}

absl::StatusOr<v1::CreateSavedViewResponse> EventQueryServiceImpl::CreateView(
    const v1::Principal& who, const v1::CreateSavedViewRequest& req) const {
  if (d_.views == nullptr) return absl::FailedPreconditionError("saved views: this gateway has no --pg-dsn");
  return d_.views->Create(who, req);
}

absl::StatusOr<v1::ListSavedViewsResponse> EventQueryServiceImpl::ListViews(
    const v1::Principal& who, const v1::ListSavedViewsRequest& req) const {
  if (d_.views == nullptr) return absl::FailedPreconditionError("saved views: this gateway has no --pg-dsn");
  return d_.views->List(who, req);
}

absl::StatusOr<v1::UseSavedViewResponse> EventQueryServiceImpl::UseView(const v1::Principal& who,
                                                                        const v1::UseSavedViewRequest& req) const {
  if (d_.views == nullptr) return absl::FailedPreconditionError("saved views: this gateway has no --pg-dsn");
  return d_.views->Use(who, req);
}

absl::StatusOr<v1::DeleteSavedViewResponse> EventQueryServiceImpl::DeleteView(
    const v1::Principal& who, const v1::DeleteSavedViewRequest& req) const {
  if (d_.views == nullptr) return absl::FailedPreconditionError("saved views: this gateway has no --pg-dsn");
  return d_.views->Delete(who, req);
}

template <class Resp, class Core>
grpc::Status EventQueryServiceImpl::Unary(grpc::ServerContext* ctx, Resp* resp, Core&& core) const {
  auto who = d_.tokens.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  absl::StatusOr<Resp> r = core(**who);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status EventQueryServiceImpl::CreateSavedView(grpc::ServerContext* ctx, const v1::CreateSavedViewRequest* req,
                                                    v1::CreateSavedViewResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who) { return CreateView(who, *req); });
}

grpc::Status EventQueryServiceImpl::ListSavedViews(grpc::ServerContext* ctx, const v1::ListSavedViewsRequest* req,
                                                   v1::ListSavedViewsResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who) { return ListViews(who, *req); });
}

grpc::Status EventQueryServiceImpl::UseSavedView(grpc::ServerContext* ctx, const v1::UseSavedViewRequest* req,
                                                 v1::UseSavedViewResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who) { return UseView(who, *req); });
}

grpc::Status EventQueryServiceImpl::DeleteSavedView(grpc::ServerContext* ctx, const v1::DeleteSavedViewRequest* req,
                                                    v1::DeleteSavedViewResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who) { return DeleteView(who, *req); });
}

grpc::Status EventQueryServiceImpl::GetEventHealth(grpc::ServerContext* ctx, const v1::GetEventHealthRequest*,
                                                   v1::GetEventHealthResponse* resp) {
  auto who = d_.tokens.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  auto h = Health(**who);
  if (!h.ok()) return ToGrpcStatus(h.status());
  *resp = *std::move(h);
  return grpc::Status::OK;
}

}  // namespace sluice::gateway
