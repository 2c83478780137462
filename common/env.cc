#include "common/env.h"

#include <cstdlib>

namespace sluice::common {

std::string EnvOr(const char* name, std::string_view fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::string(fallback);
  return v;
}

std::string DefaultKafkaBootstrap() { return EnvOr("SLUICE_KAFKA_BOOTSTRAP", "127.0.0.1:19092"); }

std::string DefaultPgDsn() { return EnvOr("SLUICE_PG_DSN", "host=127.0.0.1 port=15432 dbname=sluice user=postgres"); }

}  // namespace sluice::common
