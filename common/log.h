#pragma once

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

namespace sluice::common {

// Sets up the process-wide logger on stderr. `level` is trace|debug|info|warn|error
// (default info; SLUICE_LOG_LEVEL overrides it). The format is SLUICE_LOG_FORMAT:
//   text (default): "2026-11-22T08:00:00.123Z info sluice-relay: message"
//   json: one JSON object per line, {"ts","level","service","msg"} plus "event_id",
//         "correlation_id" and "traceparent" while a ScopedLogContext is active on the
//         logging thread (what log pipelines index on).
// Call once from main before starting threads.
void InitLogging(std::string_view service, std::string_view level = "");

// The JSON-lines formatter InitLogging installs for SLUICE_LOG_FORMAT=json.
std::unique_ptr<spdlog::formatter> MakeJsonFormatter(std::string service);

// The event a thread is working on, added to its JSON log lines until the scope ends.
// Scopes nest; the innermost wins. Empty strings are left out of the line.
class ScopedLogContext {
 public:
  ScopedLogContext(std::string event_id, std::string correlation_id, std::string traceparent = "");
  ~ScopedLogContext();
  ScopedLogContext(const ScopedLogContext&) = delete;
  ScopedLogContext& operator=(const ScopedLogContext&) = delete;

  struct Fields {
    std::string event_id, correlation_id, traceparent;
  };
  // The innermost context of this thread; nullptr when none.
  static const Fields* Current();

 private:
  Fields fields_;
  const Fields* previous_;
};

}  // namespace sluice::common
