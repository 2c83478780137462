// Bytes -> gateway::TokenStore::Parse (the gateway's --tokens file). A store it accepts
// answers Authenticate for any header without crashing, and only with Unauthenticated
// or one of its principals.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/auth.h"
#include "tests/fuzz/fuzz_util.h"

using namespace sluice;  // NOLINT: a fuzz entry point, not a header

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietProtobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto store = gateway::TokenStore::Parse(text);
  if (!store.ok()) {
    if (store.status().code() != absl::StatusCode::kInvalidArgument)
      fuzz::Fail("Parse returned " + store.status().ToString());
    return 0;
  }
  // The input's last line as a bearer token: sometimes one whose hash the file holds.
  const size_t nl = text.rfind('\n');
  const std::string_view token = nl == std::string_view::npos ? text : text.substr(nl + 1);
  for (const std::string& header :
       {std::string(), std::string("Bearer "), "Bearer " + std::string(token), std::string(token)}) {
    auto p = store->Authenticate(header);
    if (!p.ok() && p.status().code() != absl::StatusCode::kUnauthenticated)
      fuzz::Fail("Authenticate returned " + p.status().ToString());
    if (p.ok() && *p == nullptr) fuzz::Fail("Authenticate returned no principal");
  }
  return 0;
}
