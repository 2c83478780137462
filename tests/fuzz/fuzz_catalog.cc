// Bytes -> contracts::Catalog::Parse (a catalog file given with --catalog). A catalog it
// accepts must index what it holds: every route found by its type and payload field,
// and a topic prefix applied to every route.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "contracts/catalog.h"
#include "tests/fuzz/fuzz_util.h"

using namespace sluice;  // NOLINT: a fuzz entry point, not a header

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietProtobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto catalog = contracts::Catalog::Parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!catalog.ok()) return 0;
  for (const contracts::Route& r : catalog->routes()) {
    const contracts::Route* by_type = catalog->Find(r.type);
    if (by_type == nullptr || by_type->type != r.type) fuzz::Fail("route not found by its type: " + r.type);
    const contracts::Route* by_field = catalog->FindByPayloadField(r.payload_field);
    if (by_field == nullptr || by_field->payload_field != r.payload_field)
      fuzz::Fail("route not found by its payload field: " + r.payload_field);
    (void)catalog->TypesOnTopic(r.topic);
  }
  const contracts::Catalog prefixed = catalog->WithTopicPrefix("fuzz.");
  for (const contracts::Route& r : prefixed.routes())
    if (r.topic.rfind("fuzz.", 0) != 0) fuzz::Fail("topic prefix not applied: " + r.topic);
  return 0;
}
