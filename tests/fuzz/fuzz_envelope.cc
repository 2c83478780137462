// Wire bytes -> v1::Envelope -> contracts::Validate: what the gateway and every consumer
// do with untrusted input. Properties beyond "no crash, no sanitizer report":
// - a rejection is InvalidArgument naming a field (fuzz_util.h);
// - an accepted envelope re-encodes deterministically: encode(decode(encode(x))) ==
//   encode(x), and the decoded copy validates too (Kafka values and golden vectors rely
//   on this);
// - an accepted payload renders as JSON, and AppendJson agrees with ToJson byte for byte
//   (sluice-audit stores every accepted event as that JSON).
#include <cstddef>
#include <cstdint>
#include <string>

#include "contracts/envelope.h"
#include "contracts/fast_json.h"
#include "contracts/json.h"
#include "contracts/validate.h"
#include "tests/fuzz/fuzz_util.h"

using namespace sluice;  // NOLINT: a fuzz entry point, not a header

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietProtobuf();
  (void)contracts::Catalog::Default();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  v1::Envelope env;
  if (!env.ParseFromArray(data, static_cast<int>(size))) return 0;
  // A fixed "now" (an hour after the golden vectors' time), so a saved input replays the same.
  const absl::Time now = absl::FromUnixSeconds(1764583200 + 3600);
  const absl::Status valid = contracts::Validate(env, contracts::Catalog::Default(), now);
  if (!valid.ok()) {
    fuzz::CheckRejection(valid);
    return 0;
  }

  const std::string once = contracts::SerializeDeterministic(env);
  v1::Envelope back;
  if (!back.ParseFromString(once)) fuzz::Fail("a valid envelope's encoding does not decode");
  if (contracts::SerializeDeterministic(back) != once) fuzz::Fail("re-encoding a decoded envelope changed its bytes");
  if (auto s = contracts::Validate(back, contracts::Catalog::Default(), now); !s.ok())
    fuzz::Fail("a valid envelope fails Validate after a round trip: " + s.ToString());

  const auto* oneof = v1::Envelope::descriptor()->FindOneofByName("payload");
  const auto* field = env.GetReflection()->GetOneofFieldDescriptor(env, oneof);
  const google::protobuf::Message& payload = env.GetReflection()->GetMessage(env, field);
  auto slow = contracts::ToJson(payload);
  if (!slow.ok()) fuzz::Fail("a valid payload has no JSON form: " + slow.status().ToString());
  std::string fast;
  if (auto s = contracts::AppendJson(fast, payload); !s.ok()) fuzz::Fail("AppendJson failed: " + s.ToString());
  if (fast != *slow) fuzz::Fail("AppendJson differs from ToJson:\n  " + fast + "\n  " + *slow);
  return 0;
}
