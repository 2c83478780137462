// Bytes -> gateway::DecodeCursor under a fixed filter, twice: the bytes as the cursor
// text a client sends, and the bytes base64url-encoded (so the fuzzer also works on the
// "<micros>:<id>:<digest>" text inside without having to keep base64 intact). A cursor
// that decodes re-encodes to one that decodes to the same value, and never decodes
// under another filter; a refusal is InvalidArgument naming "cursor".
#include <absl/strings/escaping.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "contracts/envelope.h"
#include "gateway/list_request.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/list_fixtures.h"

using namespace sluice;  // NOLINT: a fuzz entry point, not a header

namespace {

const v1::EventFilter& Filter() {
  static const v1::EventFilter f = fuzz::CursorFilter();
  return f;
}

const v1::EventFilter& Other() {
  static const v1::EventFilter f = fuzz::OtherFilter();
  return f;
}

void CheckRefusal(const absl::Status& s) {
  if (s.code() != absl::StatusCode::kInvalidArgument) fuzz::Fail("DecodeCursor returned " + s.ToString());
  if (contracts::FieldPathOf(s) != "cursor") fuzz::Fail("DecodeCursor refusal not naming cursor: " + s.ToString());
}

void Check(const std::string& text) {
  auto c = gateway::DecodeCursor(text, Filter());
  if (!c.ok()) {
    CheckRefusal(c.status());
    return;
  }
  if (!contracts::IsUuid(c->id)) fuzz::Fail("decoded cursor id is not a UUID: " + c->id);
  const std::string again = gateway::EncodeCursor(c->micros, c->id, Filter());
  auto d = gateway::DecodeCursor(again, Filter());
  if (!d.ok()) fuzz::Fail("re-encoded cursor does not decode: " + d.status().ToString());
  if (!(*d == *c)) fuzz::Fail("re-encoded cursor decodes to another value: " + again);
  // The digest ties a cursor to its filter.
  auto o = gateway::DecodeCursor(text, Other());
  if (o.ok()) fuzz::Fail("cursor decodes under another filter: " + text);
  CheckRefusal(o.status());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietProtobuf();
  if (gateway::FilterDigest(Filter()) == gateway::FilterDigest(Other())) fuzz::Fail("fixture filters share a digest");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  Check(bytes);
  Check(absl::WebSafeBase64Escape(bytes));
  return 0;
}
