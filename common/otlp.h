#pragma once

// Exports spans (common/tracing.h) to an OpenTelemetry collector over OTLP/HTTP with the
// JSON encoding: batches POSTed to <endpoint>/v1/traces from a thread of its own. Off
// unless a service runs with --otlp-endpoint. Memory is bounded: spans wait in a queue
// of at most max_queue; past it they are dropped and counted. A failed POST is counted
// and its batch dropped (no retry): traces are best effort, the events are not.

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/tracing.h"

namespace sluice::common {

struct OtlpConfig {
  // http(s)://host:port of the collector's OTLP/HTTP receiver (4318 by convention).
  std::string endpoint;
  std::string service_name;  // the resource's service.name
  size_t max_queue = 2048;
  size_t max_batch = 256;
  absl::Duration interval = absl::Seconds(1);  // how long a span may wait for its batch
  absl::Duration timeout = absl::Seconds(5);   // per POST
};

// The OTLP JSON body (ExportTraceServiceRequest) of `spans` from `service_name`.
std::string OtlpJson(const std::vector<Span>& spans, std::string_view service_name);

class OtlpExporter final : public SpanSink {
 public:
  // InvalidArgument naming "otlp-endpoint" for an endpoint that is not http(s)://...
  static absl::StatusOr<std::unique_ptr<OtlpExporter>> Start(OtlpConfig config, prometheus::Registry& registry);
  // Sends what is still queued (one POST per batch; after a failed one the rest is
  // dropped, so shutdown waits one timeout at most beyond a POST in flight), then stops.
  ~OtlpExporter() override;
  OtlpExporter(const OtlpExporter&) = delete;
  OtlpExporter& operator=(const OtlpExporter&) = delete;

  void Export(Span span) override;
  // Blocks until every span queued before the call was sent, failed or dropped.
  void Flush();

 private:
  OtlpExporter(OtlpConfig config, prometheus::Registry& registry);
  void Loop();
  bool Post(const std::string& body);

  const OtlpConfig config_;
  const std::string url_;
  prometheus::Counter& sent_;
  prometheus::Counter& failed_;
  prometheus::Counter& dropped_;
  std::mutex mu_;
  std::condition_variable cv_;                     // the loop waits on it
  std::condition_variable idle_cv_;                // Flush waits on it
  std::deque<Span> queue_;                         // guarded by mu_
  size_t in_flight_ = 0;                           // guarded by mu_: spans taken by the loop, not yet done
  uint64_t flush_asked_ = 0;                       // guarded by mu_: Flush calls so far
  uint64_t flush_done_ = 0;                        // guarded by mu_: of those, the ones the loop has drained for
  bool stop_ = false;                              // guarded by mu_
  absl::Time last_warned_ = absl::InfinitePast();  // the loop thread's: failures are logged once a minute
  std::thread thread_;
};

}  // namespace sluice::common
