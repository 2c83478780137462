#include "cli/envelope_io.h"

#include <google/protobuf/text_format.h>

#include <sstream>

#include "common/strings.h"
#include "contracts/json.h"

namespace sluice::cli {

absl::StatusOr<std::vector<v1::Envelope>> ParseEnvelopes(const std::string& text) {
  std::vector<v1::Envelope> out;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return out;
  if (text[first] != '{') {
    v1::Envelope e;
    if (!google::protobuf::TextFormat::ParseFromString(text, &e))
      return absl::InvalidArgumentError("input is neither JSON nor a sluice.v1.Envelope in text format");
    out.push_back(std::move(e));
    return out;
  }
  // A single (possibly multi-line) JSON object first; otherwise JSON lines.
  v1::Envelope whole;
  if (contracts::FromJson(text, whole).ok()) {
    out.push_back(std::move(whole));
    return out;
  }
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    v1::Envelope e;
    if (auto s = contracts::FromJson(line, e); !s.ok())
      return absl::InvalidArgumentError(common::Cat("line ", n, ": ", s.message()));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace sluice::cli
