#pragma once

#include <string>
#include <string_view>

namespace sluice::common {

// Value of environment variable `name`, or `fallback` when unset or empty.
std::string EnvOr(const char* name, std::string_view fallback);

// Kafka bootstrap servers of the local stack (SLUICE_KAFKA_BOOTSTRAP, default 127.0.0.1:19092).
std::string DefaultKafkaBootstrap();

// libpq connection string of the local stack (SLUICE_PG_DSN).
std::string DefaultPgDsn();

}  // namespace sluice::common
