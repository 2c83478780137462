#include "contracts/envelope.h"

#include <absl/strings/ascii.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/time_util.h>

#include <array>
#include <cstdint>
#include <random>

#include "contracts/validate.h"

namespace sluice::contracts {

namespace {
// The calling thread's generator, seeded with 256 bits from the system's entropy source.
std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device rd;
    std::seed_seq seed{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seed);
  }();
  return rng;
}
}  // namespace

std::string NewUuidV7(absl::Time now) {
  std::mt19937_64& rng = Rng();
  const uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(now)) & 0xFFFFFFFFFFFFULL;
  const uint64_t r1 = rng();
  const uint64_t r2 = rng();
  std::array<uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  b[6] = static_cast<uint8_t>(0x70 | ((r1 >> 8) & 0x0F));  // version 7 + rand_a
  b[7] = static_cast<uint8_t>(r1 & 0xFF);
  b[8] = static_cast<uint8_t>(0x80 | ((r2 >> 56) & 0x3F));  // variant 10 + rand_b
  for (int i = 9; i < 16; ++i) b[i] = static_cast<uint8_t>(r2 >> (8 * (15 - i)));

  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0x0F]);
  }
  return out;
}

namespace {
// 16 lower-case hex digits of a random non-zero 64-bit value (all-zero ids are invalid).
void AppendRandomHex64(std::string& out) {
  uint64_t v = 0;
  while (v == 0) v = Rng()();
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(v >> shift) & 0xF]);
}
}  // namespace

std::string ChildTraceparent(std::string_view parent) {
  if (!IsValidTraceparent(parent)) return "";
  std::string out(parent.substr(0, 36));  // "00-<trace id>-"
  AppendRandomHex64(out);
  out.append(parent.substr(52));  // "-<flags>"
  return out;
}

std::string NewTraceparent() {
  std::string out = "00-";
  AppendRandomHex64(out);
  AppendRandomHex64(out);
  out.push_back('-');
  AppendRandomHex64(out);
  out.append("-01");
  return out;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!absl::ascii_isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

std::string CanonicalEventId(std::string_view id) {
  std::string out(id);
  if (IsUuid(id)) absl::AsciiStrToLower(&out);
  return out;
}

std::string_view PayloadField(const v1::Envelope& env) {
  static const auto* const oneof = v1::Envelope::descriptor()->FindOneofByName("payload");
  const auto* field = env.GetReflection()->GetOneofFieldDescriptor(env, oneof);
  return field == nullptr ? std::string_view() : std::string_view(field->name());
}

std::string SerializeDeterministic(const google::protobuf::Message& msg) {
  std::string out;
  out.reserve(msg.ByteSizeLong());
  {
    google::protobuf::io::StringOutputStream sos(&out);
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    msg.SerializeWithCachedSizes(&cos);
  }
  return out;
}

void FillDefaults(v1::Envelope& env, const Catalog& catalog, absl::Time now) {
  if (env.id().empty()) {
    env.set_id(NewUuidV7(now));
  } else if (IsUuid(env.id())) {
    absl::AsciiStrToLower(env.mutable_id());  // in place: no allocation for the usual lower-case id
  }
  if (!env.has_occurred_at()) {
    *env.mutable_occurred_at() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(now));
  }
  if (const Route* r = catalog.FindByPayloadField(PayloadField(env))) {
    if (env.type().empty()) env.set_type(r->type);
    if (env.version().empty()) env.set_version(r->version);
  } else if (const Route* by_type = env.version().empty() ? catalog.Find(env.type()) : nullptr) {
    // No payload (or an unknown one): the version still follows the type, so Validate
    // reports the payload that is missing rather than a version nobody was asked for.
    env.set_version(by_type->version);
  }
}

}  // namespace sluice::contracts
