#pragma once
// What one webhook delivery sends and how: the event as a CloudEvent (JSON, structured
// mode), its HMAC-SHA256 signature header, and an HTTP client (libcurl) that POSTs it
// within the trigger's timeout and says what happened in a few words.
#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/v1/envelope.pb.h"

typedef void CURL;
struct sockaddr;

namespace sluice::triggers {

// The envelope as a CloudEvents 1.0 JSON document: specversion, id, source, type, time,
// datacontenttype, the extensions tenantid, correlationid, causationid and traceparent
// (each only when set), and `data`, the typed payload in protobuf's JSON mapping (what
// event_log.payload holds and JSONPath predicates read). `payload_json` is that payload.
std::string CloudEventJson(const v1::Envelope& e, std::string_view payload_json);

// The typed payload of `e` in protobuf's JSON mapping.
absl::StatusOr<std::string> PayloadJson(const v1::Envelope& e);

// The Sluice-Signature header value: "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<unix seconds>.<body>" keyed with the trigger's secret>". A receiver recomputes v1
// with its copy of the secret and refuses old timestamps to stop replays.
std::string Signature(std::string_view secret, int64_t unix_seconds, std::string_view body);

// Lower-case hex HMAC-SHA256 (exposed for tests).
std::string HmacSha256Hex(std::string_view key, std::string_view data);

inline constexpr char kCloudEventContentType[] = "application/cloudevents+json; charset=utf-8";
inline constexpr char kJsonContentType[] = "application/json; charset=utf-8";

struct WebhookRequest {
  std::string url;
  std::string secret;
  absl::Duration timeout = absl::Seconds(5);
  std::string body;
  std::string event_id;    // Idempotency-Key
  std::string trigger_id;  // Sluice-Trigger-Id
  int attempt = 1;         // Sluice-Delivery-Attempt
  std::string content_type = kCloudEventContentType;
};

struct WebhookResult {
  // The receiver's HTTP status; 0 when no answer came.
  int status_code = 0;
  // Why it did not deliver ("" when 2xx): "timed out after 5000 ms", "connection
  // refused", "HTTP 503", ... at most 300 characters, never the response body.
  std::string error;
  absl::Duration latency;
  // A publishing trigger's attempt (no HTTP): the broker acknowledged the derived event;
  // or it cannot be made at all (trying again would not change that).
  bool published = false, permanent = false;
  bool delivered() const { return published || (status_code >= 200 && status_code < 300); }
  // Worth another attempt: no answer, 408, 429 or 5xx. Other answers (3xx, 4xx) will not
  // change by trying again.
  bool retryable() const {
    return !permanent && (status_code == 0 || status_code == 408 || status_code == 429 || status_code >= 500);
  }
};

// Whether a webhook may not reach `addr`: loopback (unless `loopback_ok`), private
// (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16, where cloud metadata
// services answer; fe80::/10), carrier-grade NAT, multicast, reserved, and IPv6 forms of
// these (IPv4-mapped, NAT64). Anything that is not IPv4 or IPv6 too.
bool IsPrivateAddress(const sockaddr* addr, bool loopback_ok);

// One connection-reusing HTTP client. Not thread-safe: one per delivery worker.
class WebhookClient {
 public:
  // `allow_http_loopback`: http:// is accepted for 127.0.0.1, [::1] and localhost (local
  // development and tests), and loopback addresses may be called; otherwise only https://
  // (certificates verified). Unless `allow_private`, an address IsPrivateAddress refuses
  // is never connected to, whatever name resolved to it (checked on the address curl
  // connects to, so a DNS answer that changes between check and use does not get
  // through); such a delivery fails at once (not retried). With a proxy (from the
  // environment) the address checked is the proxy's; the target's is not checked at all.
  explicit WebhookClient(bool allow_http_loopback, bool allow_private = false);
  ~WebhookClient();
  WebhookClient(const WebhookClient&) = delete;
  WebhookClient& operator=(const WebhookClient&) = delete;

  WebhookResult Post(const WebhookRequest& req, absl::Time now = absl::Now());

  // Why `url` may not be called, or "" (https, or http to loopback when allowed).
  std::string UrlProblem(const std::string& url) const;

 private:
  // What the socket callback reads and reports (webhook.cc).
  struct ConnectPolicy {
    bool loopback_ok = false, private_ok = false;
    bool refused = false;  // the last Post refused an address (IsPrivateAddress)
    int opened = 0;        // and opened this many sockets to others
  };
  CURL* curl_;
  bool allow_http_loopback_;
  ConnectPolicy policy_;
};

}  // namespace sluice::triggers
