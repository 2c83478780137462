#include "kafka/util.h"

#include <absl/time/clock.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "common/kafka_config.h"
#include "common/strings.h"

namespace sluice::kafka {

namespace {

// librdkafka's log lines (syslog levels) into the process logger, from its own threads.
void LogToSpdlog(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  const char* name = rk ? rd_kafka_name(rk) : "kafka";
  spdlog::level::level_enum lvl = level <= 3   ? spdlog::level::err
                                  : level == 4 ? spdlog::level::warn
                                  : level <= 6 ? spdlog::level::info
                                               : spdlog::level::debug;
  spdlog::log(lvl, "librdkafka {} {}: {}", name, facility, message);
}

}  // namespace

absl::StatusOr<ConfHandle> MakeConf(const std::map<std::string, std::string>& settings) {
  ConfHandle conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), &LogToSpdlog);
  char err[512];
  for (const auto& [k, v] : settings) {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK)
      return absl::InvalidArgumentError(
          common::Cat("kafka setting ", k, "=", common::IsSecretKafkaSetting(k) ? "(secret)" : v, ": ", err));
  }
  return conf;
}

bool UsesAuthentication(const std::map<std::string, std::string>& settings) {
  auto it = settings.find("security.protocol");
  if (it == settings.end()) return false;
  std::string p;
  for (char c : it->second) p += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return p != "plaintext";
}

bool IsAuthenticationError(rd_kafka_resp_err_t err, std::string_view reason) {
  if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED) return true;
  if (err != RD_KAFKA_RESP_ERR__SSL && err != RD_KAFKA_RESP_ERR__TRANSPORT) return false;
  // OpenSSL's words for our verification of the broker's certificate, and for the TLS
  // alerts a broker sends when it refuses ours (with TLS 1.3 the alert arrives after the
  // handshake, as a failed receive: RD_KAFKA_RESP_ERR__TRANSPORT).
  for (std::string_view refused : {"certificate verify failed", "alert bad certificate", "alert certificate required",
                                   "alert unknown ca", "alert certificate unknown", "alert certificate expired",
                                   "alert certificate revoked", "alert unsupported certificate", "alert access denied"})
    if (reason.find(refused) != std::string_view::npos) return true;
  return false;
}

absl::Status AuthenticationFailed(std::string_view context, std::string_view reason) {
  return absl::UnauthenticatedError(common::Cat("kafka authentication failed (", context, "): ", reason));
}

bool AuthFailureLatch::OnError(rd_kafka_t* rk, int err, const char* reason) {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (!IsAuthenticationError(code, reason)) {
    // What librdkafka would have logged had no error callback been set.
    spdlog::error("{} {}: {} ({})", kind_, rd_kafka_name(rk), reason, rd_kafka_err2name(code));
    return false;
  }
  absl::Status kept;
  {
    std::lock_guard lock(mu_);
    if (!failure_.ok()) return false;  // librdkafka reports it again on every reconnect
    failure_ = AuthenticationFailed(context_, reason);
    kept = failure_;
  }
  spdlog::critical("{} {}: {}", kind_, rd_kafka_name(rk), kept.message());
  return true;
}

absl::Status AuthFailureLatch::status() const {
  std::lock_guard lock(mu_);
  return failure_;
}

absl::Status AwaitAuthentication(rd_kafka_t* rk, const std::function<absl::Status()>& auth_failure,
                                 absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (auto s = auth_failure(); !s.ok()) return s;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    // Short rounds: an authentication failure is reported through `auth_failure`, not
    // through this request, which just waits for a usable broker.
    const int wait_ms = static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(left), 1, 500));
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk, 0, nullptr, &md, wait_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(md);
      return auth_failure();
    }
  }
  spdlog::warn("kafka: {} has not reached a broker in {}; retrying in the background", rd_kafka_name(rk),
               absl::FormatDuration(timeout));
  return absl::OkStatus();
}

absl::Status QueryWatermarks(rd_kafka_t* rk, const std::string& topic, int32_t partition, int64_t& low, int64_t& high,
                             absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, 5000);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
    const bool transient = e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                           e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                           e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__TIMED_OUT;
    if (!transient || absl::Now() >= deadline)
      return KafkaStatus(e, common::Cat("watermarks of ", topic, "[", partition, "]"));
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::Status KafkaStatus(rd_kafka_resp_err_t err, std::string_view context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  std::string msg = common::Cat(context, ": ", rd_kafka_err2str(err), " (", rd_kafka_err2name(err), ")");
  switch (err) {
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS: return absl::UnavailableError(msg);
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR__INVALID_ARG: return absl::InvalidArgumentError(msg);
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: return absl::NotFoundError(msg);
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED: return absl::PermissionDeniedError(msg);
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS: return absl::AlreadyExistsError(msg);
    case RD_KAFKA_RESP_ERR__AUTHENTICATION: return absl::UnauthenticatedError(msg);
    default: return absl::InternalError(msg);
  }
}

int32_t Murmur2(std::string_view key) {
  constexpr uint32_t kSeed = 0x9747b28c;
  constexpr uint32_t m = 0x5bd1e995;
  constexpr int r = 24;
  const auto* data = reinterpret_cast<const uint8_t*>(key.data());
  const uint32_t length = static_cast<uint32_t>(key.size());
  uint32_t h = kSeed ^ length;
  const uint32_t blocks = length / 4;
  for (uint32_t i = 0; i < blocks; ++i) {
    const uint8_t* p = data + 4 * i;
    uint32_t k = uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const uint8_t* tail = data + 4 * blocks;
  switch (length & 3) {
    case 3: h ^= uint32_t(tail[2]) << 16; [[fallthrough]];
    case 2: h ^= uint32_t(tail[1]) << 8; [[fallthrough]];
    case 1: h ^= uint32_t(tail[0]); h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

int32_t PartitionForKey(std::string_view key, int32_t partitions) {
  return static_cast<int32_t>((static_cast<uint32_t>(Murmur2(key)) & 0x7fffffffu) % static_cast<uint32_t>(partitions));
}

}  // namespace sluice::kafka
