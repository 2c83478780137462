#pragma once

#include <absl/status/statusor.h>
#include <grpcpp/server_context.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "contracts/authz.h"
#include "gateway/auth.h"
#include "gateway/dedup.h"
#include "gateway/rate_limiter.h"
#include "gateway/source_activity.h"
#include "kafka/producer.h"
#include "sluice/v1/gateway.pb.h"

namespace sluice::gateway {

// Workflow context a caller sent as gRPC metadata.
struct WorkflowContext {
  std::string traceparent;
  // "sluice-workflow-run-id: r1" arrives here as {"run_id", "r1"}.
  std::map<std::string, std::string> workflow;
};

// The workflow context of a gRPC call: its "traceparent" metadata, and each
// "sluice-workflow-<name>" entry (not "-bin" ones) as <name> with '-' turned into '_'.
WorkflowContext WorkflowContextOf(const grpc::ServerContextBase& ctx);

// Copies `ctx` into the envelope: traceparent when the envelope has none (and the value
// is valid), and the workflow entries as metadata "sluice.workflow.<name>" when the
// envelope has no sluice.workflow.* key. Values are trimmed; the workflow entries are
// dropped (returns false) when they, with the envelope's metadata, would pass 2 KiB.
bool ApplyWorkflowContext(const WorkflowContext& ctx, v1::Envelope& envelope);

struct PublisherMetrics {
  explicit PublisherMetrics(prometheus::Registry& registry);
  // The events_total counter of (type, source, status), from a cache of this object's
  // (prometheus-cpp's Family::Add builds and hashes a label map on every call).
  prometheus::Counter& Events(const std::string& type, const std::string& source, const std::string& status);

  // Labels from closed sets only: type and source as the catalog names them, else
  // "unknown"; status a status-code name.
  prometheus::Family<prometheus::Counter>& events;        // {type, source, status}
  prometheus::Family<prometheus::Counter>& rate_limited;  // {source}
  prometheus::Histogram& latency;
  prometheus::Gauge& in_flight;
  prometheus::Counter& workflow_dropped;

 private:
  std::mutex cache_mu_;
  std::map<std::string, prometheus::Counter*, std::less<>> cache_;
};

// The gateway's publishing path, shared by every RPC: fill defaults and validate
// (InvalidArgument naming the field), authorize (PermissionDenied), rate-limit the
// tenant's source (ResourceExhausted), deduplicate by (tenant, id), produce, and report
// the broker's acknowledgement.
// Thread-safe.
class Publisher {
 public:
  using Done = std::function<void(absl::StatusOr<v1::Delivery>)>;
  // `activity` (optional) learns every accepted and every rate-limited event per tenant
  // and source. `authz` decides who may publish what (contracts/authz.h).
  Publisher(kafka::Producer& producer, const contracts::Authorizer& authz, SourceLimits& limiter, DedupWindow& dedup,
            PublisherMetrics& metrics, SourceActivity* activity = nullptr)
      : producer_(producer), authz_(authz), limiter_(limiter), dedup_(dedup), metrics_(metrics), activity_(activity) {}

  // `done` runs exactly once, possibly on this thread.
  void Publish(const v1::Principal& who, v1::Envelope envelope, const WorkflowContext& ctx, Done done);

 private:
  kafka::Producer& producer_;
  const contracts::Authorizer& authz_;
  SourceLimits& limiter_;
  DedupWindow& dedup_;
  PublisherMetrics& metrics_;
  SourceActivity* activity_;
};

}  // namespace sluice::gateway
