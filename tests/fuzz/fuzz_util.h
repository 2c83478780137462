#pragma once

// Shared by the fuzz targets: quiet protobuf logging and a loud failure for a broken
// property (libFuzzer saves the input that reaches it as crash-<sha1>).

#include <absl/status/status.h>
#include <google/protobuf/stubs/logging.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "contracts/validate.h"

namespace sluice::fuzz {

// Protobuf logs every malformed input (invalid UTF-8, text-format errors) at ERROR:
// millions of lines and a slower fuzzer, for inputs that are simply rejected.
inline void QuietProtobuf() { google::protobuf::SetLogHandler(nullptr); }

[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz property broken: %s\n", what.c_str());
  std::abort();
}

// Every Validate rejection is InvalidArgument naming its field first.
inline void CheckRejection(const absl::Status& s) {
  if (s.code() != absl::StatusCode::kInvalidArgument) Fail("Validate returned " + s.ToString());
  auto path = contracts::FieldPathOf(s);
  if (!path.has_value() || path->empty()) Fail("Validate error without a field path: " + s.ToString());
  if (std::string(s.message()).rfind(*path + ": ", 0) != 0)
    Fail("Validate message does not start with its path: " + s.ToString());
}

}  // namespace sluice::fuzz
