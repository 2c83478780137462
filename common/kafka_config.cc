#include "common/kafka_config.h"

#include <cstdlib>

#include "common/file.h"
#include "common/strings.h"

namespace sluice::common {
namespace {

std::string_view Trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

absl::StatusOr<KafkaSettings> ParseKafkaProperties(std::string_view text, std::string_view origin) {
  KafkaSettings out;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#' || line.front() == '!') continue;
    const auto bad = [&](std::string_view why) {
      // The line is not quoted: it may be a password with a typo in its key.
      return absl::InvalidArgumentError(Cat(origin, ":", line_no, ": ", why));
    };
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) return bad("expected key=value");
    const std::string_view key = Trim(line.substr(0, eq));
    const std::string_view value = Trim(line.substr(eq + 1));
    if (key.empty()) return bad("empty key before '='");
    if (key.find_first_of(" \t:") != std::string_view::npos) return bad("a key has no whitespace or ':'");
    if (value.ends_with('\\')) return bad("line continuations ('\\' at the end) are not supported");
    out[std::string(key)] = std::string(value);
  }
  return out;
}

absl::StatusOr<KafkaSettings> LoadKafkaSettings(const std::string& path, const EnvLookup& getenv) {
  KafkaSettings settings;
  if (!path.empty()) {
    auto text = ReadFile(path);
    if (!text.ok()) return text.status();
    auto parsed = ParseKafkaProperties(*text, path);
    if (!parsed.ok()) return parsed.status();
    if (parsed->contains("bootstrap.servers"))
      return absl::InvalidArgumentError(
          Cat(path, ": bootstrap.servers is set by --bootstrap (SLUICE_KAFKA_BOOTSTRAP), not here"));
    settings = *std::move(parsed);
  }
  for (const auto& o : kKafkaEnvOverrides) {
    auto v = getenv(o.env);
    if (v && !v->empty()) settings[o.key] = *v;
  }
  return settings;
}

absl::StatusOr<KafkaSettings> LoadKafkaSettings(const std::string& path) {
  return LoadKafkaSettings(path, [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  });
}

bool IsSecretKafkaSetting(std::string_view key) {
  for (std::string_view word : {"password", "secret", "pem", "jaas", "oauthbearer.config", "token"})
    if (key.find(word) != std::string_view::npos) return true;
  return false;
}

std::string DescribeKafkaSettings(const KafkaSettings& settings) {
  std::string out;
  for (const auto& [k, v] : settings) {
    if (!out.empty()) out += ", ";
    out += Cat(k, "=", IsSecretKafkaSetting(k) ? std::string("(set)") : v);
  }
  return out;
}

}  // namespace sluice::common
