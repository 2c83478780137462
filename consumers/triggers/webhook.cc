#include "consumers/triggers/webhook.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <google/protobuf/util/time_util.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>

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

bool InV4(uint32_t a, uint32_t net, int bits) { return bits == 0 || (a >> (32 - bits)) == (net >> (32 - bits)); }

bool PrivateV4(uint32_t a, bool loopback_ok) {
  if (InV4(a, 0x7F000000, 8)) return !loopback_ok;  // 127/8
  struct Net {
    uint32_t net;
    int bits;
  };
  static constexpr Net kNets[] = {
      {0x00000000, 8},   // "this" network
      {0x0A000000, 8},   // 10/8
      {0x64400000, 10},  // 100.64/10, carrier-grade NAT
      {0xA9FE0000, 16},  // 169.254/16, link-local (cloud metadata services)
      {0xAC100000, 12},  // 172.16/12
      {0xC0000000, 24},  // 192.0.0/24
      {0xC0A80000, 16},  // 192.168/16
      {0xC6120000, 15},  // 198.18/15, benchmarking
      {0xE0000000, 4},   // multicast
      {0xF0000000, 4},   // reserved, broadcast
  };
  for (const Net& n : kNets)
    if (InV4(a, n.net, n.bits)) return true;
  return false;
}

}  // namespace

bool IsPrivateAddress(const sockaddr* addr, bool loopback_ok) {
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return PrivateV4(ntohl(in->sin_addr.s_addr), loopback_ok);
  }
  if (addr->sa_family != AF_INET6) return true;  // only IP is called
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
  const uint8_t* b = in6->sin6_addr.s6_addr;
  static constexpr uint8_t kZero[16] = {};
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  static constexpr uint8_t kNat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
  auto v4_of = [&] { return (uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) | b[15]; };
  if (std::memcmp(b, kZero, 15) == 0 && b[15] == 1) return !loopback_ok;  // ::1
  if (std::memcmp(b, kZero, 16) == 0) return true;                        // ::
  // IPv4-mapped, IPv4-compatible and NAT64 addresses: the IPv4 address inside decides.
  if (std::memcmp(b, kMapped, 12) == 0 || std::memcmp(b, kZero, 12) == 0 || std::memcmp(b, kNat64, 12) == 0)
    return PrivateV4(v4_of(), loopback_ok);
  static constexpr uint8_t kLocalNat64[6] = {0, 0x64, 0xFF, 0x9B, 0, 1};
  if (std::memcmp(b, kLocalNat64, 6) == 0) return true;    // 64:ff9b:1::/48, local-use NAT64
  if ((b[0] & 0xFE) == 0xFC) return true;                  // fc00::/7, unique local
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return true;  // fe80::/10, link-local
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0) return true;  // fec0::/10, site-local (deprecated)
  if (b[0] == 0xFF) return true;                           // multicast
  return false;
}

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

namespace {

// Opens the socket curl connects through, unless the address is one IsPrivateAddress
// refuses. It is the address curl is about to connect to (after DNS): no rebinding
// between check and use.
template <class Policy>
curl_socket_t OpenSocket(void* data, curlsocktype purpose, curl_sockaddr* address) {
  auto* policy = static_cast<Policy*>(data);
  if (purpose == CURLSOCKTYPE_IPCXN && !policy->private_ok && IsPrivateAddress(&address->addr, policy->loopback_ok)) {
    policy->refused = true;
    return CURL_SOCKET_BAD;
  }
  ++policy->opened;
  return socket(address->family, address->socktype, address->protocol);
}

}  // namespace

WebhookClient::WebhookClient(bool allow_http_loopback, bool allow_private)
    : curl_(curl_easy_init()),
      allow_http_loopback_(allow_http_loopback),
      policy_{.loopback_ok = allow_http_loopback, .private_ok = allow_private} {}

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
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, &OpenSocket<ConnectPolicy>);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &policy_);
  policy_.refused = false;
  policy_.opened = 0;
  const absl::Time start = absl::Now();
  const CURLcode rc = curl_easy_perform(c);
  out.latency = absl::Now() - start;
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(headers);
  out.status_code = static_cast<int>(code);
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && code > 0)) {
    out.status_code = 0;
    // Refused only when no other address of the host was tried (that one's failure may
    // be transient).
    if (policy_.refused && policy_.opened == 0) {
      out.error =
          "refused: the host is a private, loopback or link-local address (sluice-triggers --allow-private-addresses "
          "allows internal addresses, --allow-http-loopback loopback)";
      out.permanent = true;
      return out;
    }
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
