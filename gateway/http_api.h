#pragma once

#include <absl/status/statusor.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "gateway/event_query_service.h"
#include "gateway/quality_service.h"

namespace httplib {
class Server;
}

namespace sluice::gateway {

struct HttpApiConfig {
  std::string listen;  // host:port; port 0 picks a free one
  // Requests served at once (one request per connection); past them as many connections
  // wait for a thread, then the kernel's listen backlog. A live feed holds one for its
  // whole life, so at most half of them serve feeds.
  int threads = 16;
};

// The event log, one event with its chain, health, a live feed and data quality over HTTP/JSON, for
// browsers and scripts: the same calls as EventQueryService (the same authorization,
// limits and errors), bodies in the protobuf JSON mapping (lowerCamelCase field names,
// enum names, RFC 3339 times, int64 as strings). Routes, all GET with
// "Authorization: Bearer <token>":
//   /v1/events       ListEvents; query parameters are EventFilter's JSON names (types,
//                    sources, tenantIds, correlationId, fromTime, toTime, jsonPath,
//                    severities) plus limit and cursor; a repeated one may be given
//                    several times or comma-separated
//   /v1/events/{id}  GetEvent; optional tenantId
//   /v1/health       GetEventHealth
//   /v1/live         Subscribe as Server-Sent Events: the filters of /v1/events except
//                    time range and JSONPath; a comment ": live" once the feed is live,
//                    then one `event: event` per event (data: the StoredEvent's JSON, id:
//                    its id), a ": keepalive" comment after 2 s without one (how a closed
//                    connection is noticed), and `event: error` with
//                    the error's JSON if the feed fails
//   /v1/quality/latest, /v1/quality/profiles, /v1/quality/worst,
//   /v1/quality/jobs/{jobId}
//                    QualityService (GetLatestProfile, ListProfiles, ListWorstEntities,
//                    GetProfileJob): tenantId, and entityId or canonicalKey, fromTime,
//                    toTime, tier, limit, cursor as each request has them
// Errors: {"error": {"code": <HTTP status>, "status": "INVALID_ARGUMENT", "message": ...,
// "fieldViolations": [{"field": ..., "description": ...}]}}, the fields named as in the
// gRPC request (filter.types[0]); never PostgreSQL's text. Served by its own threads.
class HttpApi {
 public:
  // `quality` null: no /v1/quality routes.
  static absl::StatusOr<std::unique_ptr<HttpApi>> Start(const HttpApiConfig& config,
                                                        const EventQueryServiceImpl& events,
                                                        const QualityServiceImpl* quality,
                                                        const std::atomic<bool>& stopping);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  int port() const { return port_; }
  // Stops accepting and ends the live feeds; idempotent.
  void Stop();

 private:
  HttpApi() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace sluice::gateway
