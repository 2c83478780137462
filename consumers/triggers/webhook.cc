#include "consumers/triggers/webhook.h"

#include <curl/curl.h>
#include <google/protobuf/util/time_util.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>

#include "common/strings.h"
#include "contracts/fast_json.h"

namespace sluice::triggers {

using common::Cat;
using common::JsonQuote;
using google::protobuf::util::TimeUtil;

namespace {

constexpr size_t kMaxError = 300;
// The response body is read and thrown away, up to this much (a receiver that sends more
// has its answer cut: its status code still counts).
constexpr size_t kMaxResponseBody = 64 * 1024;

size_t Discard(char*, size_t size, size_t n, void* userdata) {
  auto* seen = static_cast<size_t*>(userdata);
  *seen += size * n;
  return *seen > kMaxResponseBody ? 0 : size * n;
}

std::string Bounded(std::string s) {
  if (s.size() > kMaxError) s.resize(kMaxError);
  return s;
}

}  // namespace

absl::StatusOr<std::string> PayloadJson(const v1::Envelope& e) {
  const auto* oneof = e.GetDescriptor()->FindOneofByName("payload");
  const auto* field = e.GetReflection()->GetOneofFieldDescriptor(e, oneof);
  if (field == nullptr) return absl::InvalidArgumentError(Cat("event ", e.id(), ": no payload"));
  std::string out;
  if (auto s = contracts::AppendJson(out, e.GetReflection()->GetMessage(e, field)); !s.ok()) return s;
  return out;
}

std::string CloudEventJson(const v1::Envelope& e, std::string_view payload_json) {
  std::string out = Cat(R"({"specversion":"1.0","id":)", JsonQuote(e.id()), R"(,"source":)", JsonQuote(e.source()),
                        R"(,"type":)", JsonQuote(e.type()));
  if (e.has_occurred_at()) out += Cat(R"(,"time":)", JsonQuote(TimeUtil::ToString(e.occurred_at())));
  out += R"(,"datacontenttype":"application/json")";
  out += Cat(R"(,"tenantid":)", JsonQuote(e.tenant_id()));
  if (!e.correlation_id().empty()) out += Cat(R"(,"correlationid":)", JsonQuote(e.correlation_id()));
  if (!e.causation_id().empty()) out += Cat(R"(,"causationid":)", JsonQuote(e.causation_id()));
  if (!e.traceparent().empty()) out += Cat(R"(,"traceparent":)", JsonQuote(e.traceparent()));
  out += Cat(R"(,"data":)", payload_json, "}");
  return out;
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    hex += kHex[mac[i] >> 4];
    hex += kHex[mac[i] & 0xf];
  }
  return hex;
}

std::string Signature(std::string_view secret, int64_t unix_seconds, std::string_view body) {
  return Cat("t=", unix_seconds, ",v1=", HmacSha256Hex(secret, Cat(unix_seconds, ".", body)));
}

WebhookClient::WebhookClient(bool allow_http_loopback)
    : curl_(curl_easy_init()), allow_http_loopback_(allow_http_loopback) {}

WebhookClient::~WebhookClient() {
  if (curl_ != nullptr) curl_easy_cleanup(curl_);
}

std::string WebhookClient::UrlProblem(const std::string& url) const {
  CURLU* u = curl_url();
  if (u == nullptr) return "out of memory";
  std::string problem;
  char* scheme = nullptr;
  char* host = nullptr;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    problem = "not a URL";
  } else if (std::string_view(scheme) == "https") {
  } else if (std::string_view(scheme) != "http") {
    problem = "only https:// is called";
  } else if (!allow_http_loopback_) {
    problem = "http:// is called only with --allow-http-loopback, and only on loopback";
  } else {
    const std::string_view h(host);
    if (h != "127.0.0.1" && h != "[::1]" && h != "localhost") problem = "http:// is called only on loopback";
  }
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  return problem;
}

WebhookResult WebhookClient::Post(const WebhookRequest& req, absl::Time now) {
  WebhookResult out;
  if (curl_ == nullptr) {
    out.error = "no HTTP client";
    return out;
  }
  if (auto problem = UrlProblem(req.url); !problem.empty()) {
    out.error = Bounded(Cat("refused URL: ", problem));
    out.status_code = 0;
    return out;
  }
  CURL* c = curl_;
  curl_easy_reset(c);
  curl_slist* headers = nullptr;
  const std::string lines[] = {
      Cat("Content-Type: ", req.content_type),
      Cat("Idempotency-Key: ", req.event_id),
      Cat("Sluice-Trigger-Id: ", req.trigger_id),
      Cat("Sluice-Delivery-Attempt: ", req.attempt),
      Cat("Sluice-Signature: ", Signature(req.secret, absl::ToUnixSeconds(now), req.body)),
      "Expect:",  // no 100-continue round trip
  };
  for (const auto& l : lines) headers = curl_slist_append(headers, l.c_str());
  size_t seen = 0;
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(req.timeout));
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, allow_http_loopback_ ? "https,http" : "https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  // A proxy from the environment (https_proxy) is used, but never for loopback.
  curl_easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice-triggers/1");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Discard);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &seen);
  const absl::Time start = absl::Now();
  const CURLcode rc = curl_easy_perform(c);
  out.latency = absl::Now() - start;
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(headers);
  out.status_code = static_cast<int>(code);
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && code > 0)) {
    out.status_code = 0;
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT: out.error = Cat("timed out after ", timeout_ms, " ms"); break;
      case CURLE_COULDNT_CONNECT: out.error = "connection refused"; break;
      case CURLE_COULDNT_RESOLVE_HOST: out.error = "host not found"; break;
      default: out.error = Bounded(Cat("no answer: ", curl_easy_strerror(rc)));
    }
    return out;
  }
  if (!out.delivered()) out.error = Cat("HTTP ", out.status_code);
  return out;
}

}  // namespace sluice::triggers
