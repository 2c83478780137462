#include "contracts/json.h"

#include <google/protobuf/util/json_util.h>

#include "common/strings.h"
#include "contracts/spellings.h"

namespace sluice::contracts {

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& msg, bool pretty) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = pretty;
  opts.preserve_proto_field_names = false;
  std::string out;
  auto s = google::protobuf::util::MessageToJsonString(msg, &out, opts);
  if (!s.ok()) return absl::InternalError(common::Cat("to JSON: ", s.message().as_string()));
  return out;
}

absl::Status FromJson(std::string_view json, google::protobuf::Message& msg) {
  msg.Clear();
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto s =
      google::protobuf::util::JsonStringToMessage(google::protobuf::StringPiece(json.data(), json.size()), &msg, opts);
  if (s.ok()) return absl::OkStatus();
  // Closed sets may be spelled the short way (tier1, A, high): contracts/spellings.h.
  auto normalized = NormalizeEnumSpellings(json, *msg.GetDescriptor());
  if (normalized.ok() && *normalized != json) {
    msg.Clear();
    if (google::protobuf::util::JsonStringToMessage(*normalized, &msg, opts).ok()) return absl::OkStatus();
    msg.Clear();
  }
  return absl::InvalidArgumentError(common::Cat("JSON: ", s.message().as_string()));
}

}  // namespace sluice::contracts
