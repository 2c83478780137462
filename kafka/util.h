#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/handle.h"

namespace sluice::kafka {

using KafkaHandle = common::Handle<rd_kafka_t, rd_kafka_destroy>;
using ConfHandle = common::Handle<rd_kafka_conf_t, rd_kafka_conf_destroy>;
using PartitionListHandle = common::Handle<rd_kafka_topic_partition_list_t, rd_kafka_topic_partition_list_destroy>;

// A librdkafka configuration from `settings` applied in order (later keys win);
// InvalidArgument naming the key when librdkafka refuses one. librdkafka's own log
// lines go to the process logger (spdlog) with matching levels.
absl::StatusOr<ConfHandle> MakeConf(const std::map<std::string, std::string>& settings);

// Maps a librdkafka error to a Status: broker/transport/timeout/purge errors are
// kUnavailable (retryable), size and record errors kInvalidArgument, missing topics
// kNotFound, authorization kPermissionDenied, fatal errors kInternal.
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
