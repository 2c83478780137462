#include "common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <string>

#include "common/env.h"
#include "common/strings.h"

namespace sluice::common {
namespace {

thread_local const ScopedLogContext::Fields* t_context = nullptr;

class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::string service) : service_(std::move(service)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(micros / 1000000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char ts[80];
    std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>((micros / 1000) % 1000));
    const auto level = spdlog::level::to_string_view(msg.level);
    std::string line = Cat("{\"ts\":\"", ts, "\",\"level\":\"", std::string_view(level.data(), level.size()),
                           "\",\"service\":", JsonQuote(service_),
                           ",\"msg\":", JsonQuote(std::string_view(msg.payload.data(), msg.payload.size())));
    if (const auto* c = t_context) {
      if (!c->event_id.empty()) line += Cat(",\"event_id\":", JsonQuote(c->event_id));
      if (!c->correlation_id.empty()) line += Cat(",\"correlation_id\":", JsonQuote(c->correlation_id));
      if (!c->traceparent.empty()) line += Cat(",\"traceparent\":", JsonQuote(c->traceparent));
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(service_); }

 private:
  const std::string service_;
};

}  // namespace

ScopedLogContext::ScopedLogContext(std::string event_id, std::string correlation_id, std::string traceparent)
    : fields_{std::move(event_id), std::move(correlation_id), std::move(traceparent)}, previous_(t_context) {
  t_context = &fields_;
}

ScopedLogContext::~ScopedLogContext() { t_context = previous_; }

const ScopedLogContext::Fields* ScopedLogContext::Current() { return t_context; }

std::unique_ptr<spdlog::formatter> MakeJsonFormatter(std::string service) {
  return std::make_unique<JsonFormatter>(std::move(service));
}

void InitLogging(std::string_view service, std::string_view level) {
  spdlog::drop(std::string(service));  // a second call (tests) replaces the logger
  auto logger = spdlog::stderr_logger_mt(std::string(service));
  const std::string format = EnvOr("SLUICE_LOG_FORMAT", "text");
  if (format == "json") {
    logger->set_formatter(MakeJsonFormatter(std::string(service)));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %n: %v", spdlog::pattern_time_type::utc);
  }
  std::string lvl = EnvOr("SLUICE_LOG_LEVEL", level.empty() ? "info" : level);
  logger->set_level(spdlog::level::from_str(lvl));
  spdlog::set_default_logger(std::move(logger));
  if (format != "json" && format != "text")
    spdlog::warn("SLUICE_LOG_FORMAT={:?}: want text or json; using text", format);
}

}  // namespace sluice::common
