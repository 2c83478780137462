#include "gateway/approval_payload.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cctype>

#include "common/strings.h"
#include "contracts/json.h"
#include "contracts/validate.h"

namespace sluice::gateway {
namespace {

using common::Cat;
using google::protobuf::Struct;

absl::Status Invalid(std::string_view field, std::string_view what) { return contracts::InvalidField(field, what); }

std::string SnakeCase(const std::string& camel) {
  std::string out;
  for (char c : camel) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      out.push_back('_');
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string StringField(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it != s.fields().end() && it->second.has_string_value() ? it->second.string_value() : "";
}

absl::Status ValidatePayload(v1::EntityType type, const Struct& p) {
  std::vector<const char*> required;
  switch (type) {
    case v1::ENTITY_TYPE_METADATA: required = {"label"}; break;
    case v1::ENTITY_TYPE_KPI: required = {"name"}; break;
    case v1::ENTITY_TYPE_GLOSSARY: required = {"term", "definition"}; break;
    case v1::ENTITY_TYPE_BUSINESS_RULE: required = {"name", "expression"}; break;
    default: return Invalid("entity_type", "must be METADATA, KPI, GLOSSARY or BUSINESS_RULE");
  }
  for (const char* k : required)
    if (StringField(p, k).empty()) return Invalid(Cat("payload.", k), "required (a non-empty string)");
  auto status = StringField(p, "status");
  if (!status.empty() && status != "active" && status != "draft" && status != "deprecated")
    return Invalid("payload.status", "must be active, draft or deprecated");
  if (auto b = p.fields().find("binding"); b != p.fields().end()) {
    const auto& bs = b->second.struct_value();
    if (StringField(bs, "schema").empty() || StringField(bs, "table").empty())
      return Invalid("payload.binding", "needs schema and table");
  }
  return absl::OkStatus();
}

std::vector<std::string> ChangedFields(const Struct& payload, const std::string& prior_json) {
  Struct prior;
  bool have_prior = !prior_json.empty() && contracts::FromJson(prior_json, prior).ok();
  std::vector<std::string> out;
  for (const auto& [k, v] : payload.fields()) {
    if (k == "canonicalKey" || k == "tenantId") continue;
    auto it = have_prior ? prior.fields().find(SnakeCase(k)) : prior.fields().end();
    if (it == prior.fields().end() || !google::protobuf::util::MessageDifferencer::Equals(it->second, v))
      out.push_back(k);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sluice::gateway
