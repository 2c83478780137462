// Bytes -> contracts::FromJson into an Envelope (sluicectl validate/publish read JSON),
// then the fast JSON writer against protobuf's: for the envelope and its payload,
// AppendJson must print exactly ToJson's bytes, or fail exactly as ToJson does, leaving
// its output untouched (the contract in contracts/fast_json.h). Validate runs too, and
// a rejection must name a field.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "contracts/fast_json.h"
#include "contracts/json.h"
#include "contracts/validate.h"
#include "tests/fuzz/fuzz_util.h"

using namespace sluice;  // NOLINT: a fuzz entry point, not a header

namespace {

void SameAsToJson(const google::protobuf::Message& m) {
  const std::string prefix = "prefix:";
  std::string fast = prefix;
  const absl::Status s = contracts::AppendJson(fast, m);
  const auto slow = contracts::ToJson(m);
  if (!slow.ok() || !s.ok()) {
    if (s.ok() || slow.ok() || s != slow.status() || fast != prefix)
      fuzz::Fail("AppendJson and ToJson disagree on failure: ToJson " + slow.status().ToString() + ", AppendJson " +
                 s.ToString() + " " + fast);
    return;
  }
  if (fast != prefix + *slow)
    fuzz::Fail("AppendJson differs from ToJson:\n  " + fast.substr(prefix.size()) + "\n  " + *slow);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietProtobuf();
  (void)contracts::Catalog::Default();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  v1::Envelope env;
  if (!contracts::FromJson(std::string_view(reinterpret_cast<const char*>(data), size), env).ok()) return 0;
  SameAsToJson(env);
  const auto* oneof = v1::Envelope::descriptor()->FindOneofByName("payload");
  if (const auto* field = env.GetReflection()->GetOneofFieldDescriptor(env, oneof))
    SameAsToJson(env.GetReflection()->GetMessage(env, field));
  const absl::Status valid = contracts::Validate(env, contracts::Catalog::Default(), absl::FromUnixSeconds(1764586800));
  if (!valid.ok()) fuzz::CheckRejection(valid);
  return 0;
}
