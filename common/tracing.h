#pragma once

// Spans of the work Sluice does for a trace, handed to whatever sink the process set up:
// none by default (ExportSpan does nothing), the OTLP exporter when a service runs with
// --otlp-endpoint (common/otlp.h), a recording sink in tests. The trace itself travels in
// the envelopes' W3C traceparent whether spans are exported or not.

#include <absl/time/time.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::common {

struct Span {
  enum Kind { kInternal = 1, kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5 };
  std::string trace_id;        // 32 lower-case hex
  std::string span_id;         // 16 lower-case hex
  std::string parent_span_id;  // 16 lower-case hex; "" for a root span
  std::string name;
  Kind kind = kInternal;
  absl::Time start, end;
  bool error = false;
  std::vector<std::pair<std::string, std::string>> attributes;  // string values
};

// The span whose own ids are `traceparent`'s, below `parent` (another traceparent of the
// same trace, or "" for a root). nullopt when `traceparent` is not a valid W3C
// traceparent, or `parent` is neither empty nor one of the same trace.
std::optional<Span> SpanOf(std::string_view traceparent, std::string_view parent, std::string name, Span::Kind kind,
                           absl::Time start, absl::Time end);

// Where finished spans go. Export must not block for long (it runs on request threads).
class SpanSink {
 public:
  virtual ~SpanSink() = default;
  virtual void Export(Span span) = 0;
};

// The process's sink; nullptr (the default) drops spans. The caller keeps `sink` alive
// until it sets another (or nullptr). Thread-safe.
void SetSpanSink(SpanSink* sink);
// Hands `span` to the process's sink, if any. Thread-safe.
void ExportSpan(Span span);
// Whether a sink is set: callers may skip building spans when not.
bool SpansWanted();

}  // namespace sluice::common
