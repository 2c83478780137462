#pragma once

// The raw librdkafka baseline of the publishing benchmarks uses the gateway producer's
// settings (kafka/producer.cc; linger from gateway/server.cc), so the ratios compare the
// gateway with librdkafka configured the same way.

#include <map>
#include <string>

#include "kafka/util.h"

namespace sluice::bench {

inline std::map<std::string, std::string> GatewayProducerSettings(const std::string& bootstrap) {
  return {{"bootstrap.servers", bootstrap}, {"enable.idempotence", "true"},   {"acks", "all"}, {"linger.ms", "1"},
          {"compression.type", "lz4"},      {"partitioner", "murmur2_random"}};
}

}  // namespace sluice::bench
