#pragma once

// Kafka client settings shared by every Sluice service: a properties file of librdkafka
// settings (--kafka-config) plus a fixed set of environment overrides for the security
// settings, so that a deployment can keep the certificates and the password out of the
// file (a Kubernetes Secret as environment, say). Parsed once at start; no Kafka here.

#include <absl/status/statusor.h>

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::common {

using KafkaSettings = std::map<std::string, std::string>;

// The environment variables that override one librdkafka setting each. An empty
// variable counts as unset.
struct KafkaEnvOverride {
  const char* env;
  const char* key;
};
inline constexpr std::array<KafkaEnvOverride, 7> kKafkaEnvOverrides = {{
    {"SLUICE_KAFKA_SECURITY_PROTOCOL", "security.protocol"},
    {"SLUICE_KAFKA_SSL_CA_LOCATION", "ssl.ca.location"},
    {"SLUICE_KAFKA_SSL_CERTIFICATE_LOCATION", "ssl.certificate.location"},
    {"SLUICE_KAFKA_SSL_KEY_LOCATION", "ssl.key.location"},
    {"SLUICE_KAFKA_SASL_MECHANISM", "sasl.mechanism"},
    {"SLUICE_KAFKA_SASL_USERNAME", "sasl.username"},
    {"SLUICE_KAFKA_SASL_PASSWORD", "sasl.password"},
}};

// Java-style properties text: `key=value` lines (whitespace around both trimmed), `#` or
// `!` comment lines and blank lines. Anything else (no `=`, an empty key, a key with
// whitespace, a `\` line continuation) is InvalidArgument naming `origin:line`, never the
// line itself, which may hold a password. A repeated key: the last one wins.
absl::StatusOr<KafkaSettings> ParseKafkaProperties(std::string_view text, std::string_view origin);

// The settings a service hands to its Kafka clients: `path`'s (none when empty), then
// each kKafkaEnvOverrides variable that `getenv` finds set and non-empty. bootstrap.servers
// is refused in the file: --bootstrap (SLUICE_KAFKA_BOOTSTRAP) sets it.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
absl::StatusOr<KafkaSettings> LoadKafkaSettings(const std::string& path, const EnvLookup& getenv);
// The same with the process environment.
absl::StatusOr<KafkaSettings> LoadKafkaSettings(const std::string& path);

// True for settings whose value is a secret (passwords, private keys, tokens): their values
// are never logged or put in an error message.
bool IsSecretKafkaSetting(std::string_view key);

// "key=value, ..." for a log line, secret values shown as "(set)".
std::string DescribeKafkaSettings(const KafkaSettings& settings);

}  // namespace sluice::common
