#include "gateway/publisher.h"

#include <absl/strings/ascii.h>
#include <google/protobuf/util/time_util.h>

#include <map>

#include "common/strings.h"
#include "contracts/validate.h"

namespace sluice::gateway {
namespace {

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// The type and source label of events the catalog does not know.
const std::string& UnknownLabel() {
  static const std::string* label = new std::string("unknown");
  return *label;
}

// One of the fixed set of status-code names.
std::string StatusLabel(const absl::Status& s) {
  return s.ok() ? "ok" : absl::AsciiStrToLower(absl::StatusCodeToString(s.code()));
}

std::string_view Meta(const grpc::ServerContextBase& ctx, std::string_view key) {
  auto [b, e] = ctx.client_metadata().equal_range(grpc::string_ref(key.data(), key.size()));
  if (b == e) return {};
  return {b->second.data(), b->second.size()};
}

}  // namespace

WorkflowContext WorkflowContextOf(const grpc::ServerContextBase& ctx) {
  WorkflowContext w;
  w.traceparent = std::string(Meta(ctx, "traceparent"));
  constexpr std::string_view kPrefix = "sluice-workflow-";
  for (const auto& [k, v] : ctx.client_metadata()) {
    std::string_view key(k.data(), k.size());
    if (key.substr(0, kPrefix.size()) != kPrefix || key.ends_with("-bin")) continue;
    std::string name(key.substr(kPrefix.size()));
    for (char& c : name)
      if (c == '-') c = '_';
    w.workflow[name] = std::string(v.data(), v.size());
  }
  return w;
}

bool ApplyWorkflowContext(const WorkflowContext& ctx, v1::Envelope& envelope) {
  std::string tp = Trim(ctx.traceparent);
  if (envelope.traceparent().empty() && contracts::IsValidTraceparent(tp)) envelope.set_traceparent(tp);
  if (ctx.workflow.empty()) return true;
  size_t bytes = 0;
  for (const auto& [k, v] : envelope.metadata()) {
    if (k.rfind("sluice.workflow.", 0) == 0) return true;  // the envelope's own context wins
    bytes += k.size() + v.size();
  }
  std::map<std::string, std::string> add;
  for (const auto& [name, value] : ctx.workflow) {
    std::string key = common::Cat("sluice.workflow.", Trim(name));
    std::string val = Trim(value);
    if (val.empty()) continue;
    bytes += key.size() + val.size();
    add.emplace(std::move(key), std::move(val));
  }
  if (bytes > contracts::kMaxMetadataBytes) return false;
  for (auto& [k, v] : add) (*envelope.mutable_metadata())[k] = std::move(v);
  return true;
}

PublisherMetrics::PublisherMetrics(prometheus::Registry& registry)
    : events(prometheus::BuildCounter()
                 .Name("sluice_gateway_events_total")
                 .Help("Events received by the gateway, by type, source and outcome")
                 .Register(registry)),
      rate_limited(prometheus::BuildCounter()
                       .Name("sluice_gateway_rate_limited_total")
                       .Help("Events refused because their source was paused by its rate limit")
                       .Register(registry)),
      latency(prometheus::BuildHistogram()
                  .Name("sluice_gateway_publish_latency_seconds")
                  .Help("Time from receiving an event to the broker's acknowledgement")
                  .Register(registry)
                  .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                   0.5, 1, 5})),
      in_flight(prometheus::BuildGauge()
                    .Name("sluice_gateway_in_flight")
                    .Help("Events sent to the broker and not yet acknowledged")
                    .Register(registry)
                    .Add({})),
      workflow_dropped(prometheus::BuildCounter()
                           .Name("sluice_gateway_workflow_context_dropped_total")
                           .Help("Workflow context metadata dropped for exceeding 2 KiB")
                           .Register(registry)
                           .Add({})) {}

prometheus::Counter& PublisherMetrics::Events(const std::string& type, const std::string& source,
                                              const std::string& status) {
  // Built in a buffer of this thread's: the delivery thread looks a counter up per event.
  thread_local std::string key;
  key.clear();
  key.append(type).append(1, '\0').append(source).append(1, '\0').append(status);
  std::lock_guard lock(cache_mu_);
  auto it = cache_.find(std::string_view(key));
  if (it != cache_.end()) return *it->second;
  prometheus::Counter& c = events.Add({{"type", type}, {"source", source}, {"status", status}});
  cache_.emplace(key, &c);
  return c;
}

void Publisher::Publish(const v1::Principal& who, v1::Envelope envelope, const WorkflowContext& ctx, Done done) {
  const absl::Time start = absl::Now();
  if (!ApplyWorkflowContext(ctx, envelope)) metrics_.workflow_dropped.Increment();
  auto record = producer_.Encode(envelope);  // defaults, validation, routing, encoding
  absl::Status refused = record.ok() ? authz_.MayPublish(who, envelope) : record.status();
  if (refused.ok()) refused = limiter_.Admit(envelope.tenant_id(), envelope.source(), absl::Now());
  const std::string source = envelope.source();
  // Metric labels come from closed sets: a refused event's type and source are whatever
  // the caller sent, and each new label value would be a new series kept for the life of
  // the process (and in every /metrics scrape).
  const contracts::Catalog& catalog = producer_.catalog();
  const contracts::Route* route = catalog.Find(envelope.type());
  const std::string& type_label = route != nullptr ? route->type : UnknownLabel();
  const auto known_source = catalog.sources().find(source);
  const std::string& source_label = known_source != catalog.sources().end() ? *known_source : UnknownLabel();
  if (!refused.ok()) {
    if (refused.code() == absl::StatusCode::kResourceExhausted) {
      metrics_.rate_limited.Add({{"source", source_label}}).Increment();
      if (activity_ != nullptr) activity_->RateLimited(envelope.tenant_id(), source);
    }
    metrics_.Events(type_label, source_label, StatusLabel(refused)).Increment();
    return done(refused);
  }
  // How late the event arrived (occurred_at is set: Encode filled the defaults).
  const absl::Duration lag =
      start - absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(envelope.occurred_at()));
  // The labels are the catalog's own strings (or UnknownLabel's), which outlive the call.
  auto finish = [this, type_label = &type_label, source_label = &source_label, source, tenant = envelope.tenant_id(),
                 start, lag, done = std::move(done)](absl::StatusOr<v1::Delivery> r) {
    metrics_.Events(*type_label, *source_label, StatusLabel(r.status())).Increment();
    metrics_.latency.Observe(absl::ToDoubleSeconds(absl::Now() - start));
    if (r.ok() && activity_ != nullptr && !r->duplicate()) activity_->Published(tenant, source, absl::Now(), lag);
    done(std::move(r));
  };
  // Keyed by tenant: another tenant's event with the same id is its own event, not a
  // duplicate. Ids are canonical (lower-case) after Encode.
  dedup_.Publish(
      common::Cat(envelope.tenant_id(), "/", envelope.id()),
      [this, &record](DedupWindow::Done sent) {
        metrics_.in_flight.Increment();
        producer_.SendRecord(*std::move(record),
                             [this, sent = std::move(sent)](absl::StatusOr<kafka::DeliveryReport> r) {
                               metrics_.in_flight.Decrement();
                               if (!r.ok()) return sent(r.status());
                               v1::Delivery d;
                               d.set_event_id(std::move(r->event_id));
                               d.set_topic(std::move(r->topic));
                               d.set_partition(r->partition);
                               d.set_offset(r->offset);
                               sent(std::move(d));
                             });
      },
      std::move(finish));
}

}  // namespace sluice::gateway
