#include "common/otlp.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <mutex>

#include "common/strings.h"

namespace sluice::common {
namespace {

std::string Nanos(absl::Time t) { return Cat("\"", absl::ToUnixNanos(t), "\""); }

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

std::string OtlpJson(const std::vector<Span>& spans, std::string_view service_name) {
  std::string out = Cat(R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":)",
                        JsonQuote(service_name), R"(}}]},"scopeSpans":[{"scope":{"name":"sluice"},"spans":[)");
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& s = spans[i];
    if (i > 0) out.push_back(',');
    out += Cat(R"({"traceId":")", s.trace_id, R"(","spanId":")", s.span_id, "\"");
    if (!s.parent_span_id.empty()) out += Cat(R"(,"parentSpanId":")", s.parent_span_id, "\"");
    out += Cat(R"(,"name":)", JsonQuote(s.name), R"(,"kind":)", static_cast<int>(s.kind), R"(,"startTimeUnixNano":)",
               Nanos(s.start), R"(,"endTimeUnixNano":)", Nanos(s.end), R"(,"attributes":[)");
    for (size_t k = 0; k < s.attributes.size(); ++k) {
      if (k > 0) out.push_back(',');
      out += Cat(R"({"key":)", JsonQuote(s.attributes[k].first), R"(,"value":{"stringValue":)",
                 JsonQuote(s.attributes[k].second), "}}");
    }
    out += Cat(R"(],"status":{"code":)", s.error ? 2 : 1, "}}");
  }
  out += "]}]}]}";
  return out;
}

absl::StatusOr<std::unique_ptr<OtlpExporter>> OtlpExporter::Start(OtlpConfig config, prometheus::Registry& registry) {
  const std::string& e = config.endpoint;
  if (!(e.starts_with("http://") || e.starts_with("https://")) || e.size() < 10 ||
      e.find_first_of(" \t\r\n") != std::string::npos)
    return absl::InvalidArgumentError(
        Cat("otlp-endpoint: \"", e, "\" is not an http(s):// URL of an OTLP/HTTP receiver, e.g. http://otel:4318"));
  if (config.max_queue == 0 || config.max_batch == 0) return absl::InvalidArgumentError("otlp: empty queue or batch");
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return std::unique_ptr<OtlpExporter>(new OtlpExporter(std::move(config), registry));
}

OtlpExporter::OtlpExporter(OtlpConfig config, prometheus::Registry& registry)
    : config_(std::move(config)),
      url_(Cat(
          config_.endpoint.ends_with("/") ? config_.endpoint.substr(0, config_.endpoint.size() - 1) : config_.endpoint,
          "/v1/traces")),
      sent_(prometheus::BuildCounter()
                .Name("sluice_otlp_spans_total")
                .Help("Spans handed to the OTLP exporter, by outcome: sent, failed (the POST failed), dropped (queue "
                      "full)")
                .Register(registry)
                .Add({{"outcome", "sent"}})),
      failed_(
          prometheus::BuildCounter().Name("sluice_otlp_spans_total").Register(registry).Add({{"outcome", "failed"}})),
      dropped_(
          prometheus::BuildCounter().Name("sluice_otlp_spans_total").Register(registry).Add({{"outcome", "dropped"}})),
      thread_([this] { Loop(); }) {}

OtlpExporter::~OtlpExporter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void OtlpExporter::Export(Span span) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (stop_ || queue_.size() >= config_.max_queue) {
      dropped_.Increment();
      return;
    }
    queue_.push_back(std::move(span));
    wake = queue_.size() >= config_.max_batch;
  }
  if (wake) cv_.notify_one();
}

void OtlpExporter::Flush() {
  std::unique_lock lock(mu_);
  const uint64_t ticket = ++flush_asked_;
  cv_.notify_one();
  idle_cv_.wait(lock, [&] { return flush_done_ >= ticket || stop_; });
}

void OtlpExporter::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait_for(lock, absl::ToChronoNanoseconds(config_.interval),
                 [&] { return stop_ || flush_asked_ != flush_done_ || queue_.size() >= config_.max_batch; });
    const uint64_t asked = flush_asked_;  // every Flush so far is served by the drain below
    // On stop, what is queued still goes (one POST per batch, each bounded by the timeout).
    while (!queue_.empty()) {
      std::vector<Span> batch;
      while (!queue_.empty() && batch.size() < config_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      in_flight_ = batch.size();
      lock.unlock();
      const bool ok = Post(OtlpJson(batch, config_.service_name));
      (ok ? sent_ : failed_).Increment(static_cast<double>(batch.size()));
      lock.lock();
      in_flight_ = 0;
      if (!ok && stop_) {
        // Stopping with the collector unreachable: one timeout is all shutdown waits.
        dropped_.Increment(static_cast<double>(queue_.size()));
        queue_.clear();
      }
    }
    flush_done_ = asked;
    idle_cv_.notify_all();
    if (stop_) return;
  }
}

bool OtlpExporter::Post(const std::string& body) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return false;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(config_.timeout)));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK || status < 200 || status >= 300) {
    const std::string why = rc != CURLE_OK ? std::string(curl_easy_strerror(rc)) : Cat("HTTP ", status);
    if (absl::Now() - last_warned_ >= absl::Minutes(1)) {
      spdlog::warn("otlp: POST {} failed: {} (spans dropped; sluice_otlp_spans_total counts them)", url_, why);
      last_warned_ = absl::Now();
    } else {
      spdlog::debug("otlp: POST {} failed: {}", url_, why);
    }
    return false;
  }
  return true;
}

}  // namespace sluice::common
