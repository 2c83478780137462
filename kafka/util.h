#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/handle.h"

namespace sluice::kafka {

using KafkaHandle = common::Handle<rd_kafka_t, rd_kafka_destroy>;
using ConfHandle = common::Handle<rd_kafka_conf_t, rd_kafka_conf_destroy>;
using PartitionListHandle = common::Handle<rd_kafka_topic_partition_list_t, rd_kafka_topic_partition_list_destroy>;

// A librdkafka configuration from `settings` applied in order (later keys win);
// InvalidArgument naming the key when librdkafka refuses one (secret values, such as
// sasl.password, are left out of the message). librdkafka's own log
// lines go to the process logger (spdlog) with matching levels.
absl::StatusOr<ConfHandle> MakeConf(const std::map<std::string, std::string>& settings);

// True when `settings` make the client authenticate (security.protocol other than
// plaintext): only then can a broker refuse its credentials.
bool UsesAuthentication(const std::map<std::string, std::string>& settings);

// True for the errors librdkafka reports when the broker refuses the client's credentials
// (SASL) or certificate (a TLS alert), or the broker's certificate fails verification;
// `reason` is librdkafka's error string. librdkafka treats them as transient and reconnects
// forever; Sluice's clients treat them as fatal, since retrying a wrong password or
// certificate only hides the misconfiguration. A connection or handshake merely cut short
// (a broker restarting) is not one of them.
bool IsAuthenticationError(rd_kafka_resp_err_t err, std::string_view reason);

// The Status of such an error: kUnauthenticated, "kafka authentication failed (<context>): <reason>".
absl::Status AuthenticationFailed(std::string_view context, std::string_view reason);

// The first authentication failure librdkafka reports through a client's error callback
// (rd_kafka_conf_set_error_cb), kept for the client's owner: librdkafka would retry the same
// credentials forever, Sluice's clients stop instead. `kind` ("producer", "consumer") starts
// the log lines, `context` ("consumer group g") the Status (AuthenticationFailed). Thread-safe:
// error callbacks run on librdkafka's threads or the polling one.
class AuthFailureLatch {
 public:
  AuthFailureLatch(std::string kind, std::string context) : kind_(std::move(kind)), context_(std::move(context)) {}

  // For the error callback. An authentication error (IsAuthenticationError) is kept and
  // logged critical, the first one only (librdkafka reports it again on every reconnect);
  // any other error is logged as librdkafka would have without a callback. True when this
  // call kept the failure.
  bool OnError(rd_kafka_t* rk, int err, const char* reason);
  // The kept failure (kUnauthenticated), or OK.
  absl::Status status() const;

 private:
  const std::string kind_;
  const std::string context_;
  mutable std::mutex mu_;
  absl::Status failure_;
};

// Waits until `rk` has fetched cluster metadata (a broker accepted the connection) or
// `auth_failure` returns an error (returned as is), for at most `timeout`. Timing out is OK:
// an unreachable broker is retried by librdkafka as before; only refused credentials fail.
absl::Status AwaitAuthentication(rd_kafka_t* rk, const std::function<absl::Status()>& auth_failure,
                                 absl::Duration timeout);

// Maps a librdkafka error to a Status: broker/transport/timeout/purge errors are
// kUnavailable (retryable), size and record errors kInvalidArgument, missing topics
// kNotFound, authorization kPermissionDenied, a failed authentication kUnauthenticated,
// fatal errors kInternal.
absl::Status KafkaStatus(rd_kafka_resp_err_t err, std::string_view context);

// The low and high watermark of a partition. Retries for up to `timeout` while the
// partition has no leader yet (a topic just created, a leader moving).
absl::Status QueryWatermarks(rd_kafka_t* rk, const std::string& topic, int32_t partition, int64_t& low, int64_t& high,
                             absl::Duration timeout = absl::Seconds(15));

// Java's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), which librdkafka's
// murmur2_random partitioner also uses.
int32_t Murmur2(std::string_view key);

// The partition Kafka's default partitioner (and librdkafka's murmur2_random) picks
// for a non-empty key: (murmur2(key) & 0x7fffffff) % partitions.
int32_t PartitionForKey(std::string_view key, int32_t partitions);

}  // namespace sluice::kafka
