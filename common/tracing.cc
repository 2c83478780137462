#include "common/tracing.h"

#include <atomic>
#include <mutex>
#include <shared_mutex>

namespace sluice::common {
namespace {

std::shared_mutex g_mu;
SpanSink* g_sink = nullptr;  // guarded by g_mu
std::atomic<bool> g_wanted{false};

bool LowerHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return s.find_first_not_of('0') != std::string_view::npos;
}

// "00-<trace 32>-<span 16>-<flags 2>"
bool Parse(std::string_view tp, std::string_view* trace, std::string_view* span) {
  if (tp.size() != 55 || tp.substr(0, 3) != "00-" || tp[35] != '-' || tp[52] != '-') return false;
  *trace = tp.substr(3, 32);
  *span = tp.substr(36, 16);
  return LowerHex(*trace) && LowerHex(*span);
}

}  // namespace

std::optional<Span> SpanOf(std::string_view traceparent, std::string_view parent, std::string name, Span::Kind kind,
                           absl::Time start, absl::Time end) {
  std::string_view trace, span, parent_trace, parent_span;
  if (!Parse(traceparent, &trace, &span)) return std::nullopt;
  if (!parent.empty() && (!Parse(parent, &parent_trace, &parent_span) || parent_trace != trace)) return std::nullopt;
  Span s;
  s.trace_id = std::string(trace);
  s.span_id = std::string(span);
  s.parent_span_id = std::string(parent_span);
  s.name = std::move(name);
  s.kind = kind;
  s.start = start;
  s.end = end < start ? start : end;
  return s;
}

void SetSpanSink(SpanSink* sink) {
  std::unique_lock lock(g_mu);
  g_sink = sink;
  g_wanted.store(sink != nullptr);
}

void ExportSpan(Span span) {
  if (!g_wanted.load(std::memory_order_relaxed)) return;
  std::shared_lock lock(g_mu);
  if (g_sink != nullptr) g_sink->Export(std::move(span));
}

bool SpansWanted() { return g_wanted.load(std::memory_order_relaxed); }

}  // namespace sluice::common
