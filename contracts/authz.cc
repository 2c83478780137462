#include "contracts/authz.h"

#include <absl/strings/ascii.h>
#include <google/protobuf/struct.pb.h>

#include <algorithm>

#include "common/strings.h"
#include "contracts/json.h"
#include "contracts/validate.h"

namespace sluice::contracts {
namespace {

using common::Cat;

absl::Status Denied(std::string_view field, std::string_view what) {
  return absl::PermissionDeniedError(Cat(field, ": ", what));
}

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

std::optional<v1::EntityType> ParseEntityType(std::string name) {
  name = absl::AsciiStrToUpper(name);
  if (name.rfind("ENTITY_TYPE_", 0) != 0) name = "ENTITY_TYPE_" + name;
  v1::EntityType t;
  if (!v1::EntityType_Parse(name, &t) || t == v1::ENTITY_TYPE_UNSPECIFIED) return std::nullopt;
  return t;
}

std::optional<v1::Tier> ParseTier(std::string name) {
  name = absl::AsciiStrToUpper(name);
  if (name.size() == 5 && name.rfind("TIER", 0) == 0) name = "TIER_" + name.substr(4);
  v1::Tier t;
  if (!v1::Tier_Parse(name, &t) || t == v1::TIER_UNSPECIFIED) return std::nullopt;
  return t;
}

}  // namespace

ApprovalPolicy ApprovalPolicy::Default() {
  ApprovalPolicy p;
  p.by_type_[v1::ENTITY_TYPE_METADATA] = "metadata_steward";
  p.by_type_[v1::ENTITY_TYPE_KPI] = "kpi_owner";
  p.by_type_[v1::ENTITY_TYPE_GLOSSARY] = "metadata_steward";
  p.by_type_[v1::ENTITY_TYPE_BUSINESS_RULE] = "metadata_steward";
  return p;
}

absl::StatusOr<ApprovalPolicy> ApprovalPolicy::FromJson(std::string_view json) {
  google::protobuf::Struct s;
  if (auto st = contracts::FromJson(json, s); !st.ok())
    return absl::InvalidArgumentError(Cat("approval roles: not a JSON object: ", st.message()));
  ApprovalPolicy p = Default();
  for (const auto& [key, value] : s.fields()) {
    const std::string at = Cat("approval roles[\"", key, "\"]");
    if (!value.has_string_value() || value.string_value().empty() || value.string_value().size() > 64)
      return absl::InvalidArgumentError(Cat(at, ": the role must be a string of 1-64 characters"));
    const size_t slash = key.find('/');
    auto type = ParseEntityType(key.substr(0, slash));
    if (!type) return absl::InvalidArgumentError(Cat(at, ": unknown entity type"));
    if (slash == std::string::npos) {
      p.by_type_[*type] = value.string_value();
      continue;
    }
    auto tier = ParseTier(key.substr(slash + 1));
    if (!tier) return absl::InvalidArgumentError(Cat(at, ": unknown tier (TIER_1..TIER_5)"));
    p.by_type_tier_[{*type, *tier}] = value.string_value();
  }
  return p;
}

std::string ApprovalPolicy::RoleFor(v1::EntityType type, v1::Tier tier) const {
  if (auto it = by_type_tier_.find({type, tier}); it != by_type_tier_.end()) return it->second;
  if (auto it = by_type_.find(type); it != by_type_.end()) return it->second;
  return {};
}

absl::Status Authorizer::MayActFor(const v1::Principal& who, std::string_view tenant, std::string_view field) const {
  for (const auto& t : who.tenants())
    if (t == "*" || t == tenant) return absl::OkStatus();
  return Denied(field, Cat(who.name(), " may not act for tenant \"", tenant, "\""));
}

absl::Status Authorizer::MayManageTriggers(const v1::Principal& who, std::string_view tenant) const {
  if (auto s = MayActFor(who, tenant); !s.ok()) return s;
  if (!HasRole(who, kTriggerAdminRole) && !HasRole(who, "operator"))
    return absl::PermissionDeniedError(
        Cat(who.name(), " may read triggers but not change them (needs the role ", kTriggerAdminRole, ")"));
  return absl::OkStatus();
}

absl::StatusOr<std::set<std::string>> Authorizer::ReadableTenants(
    const v1::Principal& who, const google::protobuf::RepeatedPtrField<std::string>& requested,
    std::string_view field) const {
  std::set<std::string> out;
  for (int i = 0; i < requested.size(); ++i) {
    const std::string& t = requested.Get(i);
    const std::string at = Cat(field, "[", i, "]");
    if (!IsValidTenantId(t)) return WithFieldPath(absl::InvalidArgumentError(Cat(at, ": not a valid tenant id")), at);
    if (auto s = MayActFor(who, t, at); !s.ok()) return s;
    out.insert(t);
  }
  if (!out.empty()) return out;
  for (const auto& t : who.tenants()) {
    if (t == "*") return std::set<std::string>();
    out.insert(t);
  }
  return out;
}

bool Authorizer::SeesAllTenants(const v1::Principal& who) { return Contains(who.tenants(), "*"); }

bool Authorizer::HasRole(const v1::Principal& who, std::string_view role) { return Contains(who.roles(), role); }

absl::Status Authorizer::MayPublish(const v1::Principal& who, const v1::Envelope& e) const {
  if (auto s = MayActFor(who, e.tenant_id()); !s.ok()) return s;
  const Route* route = catalog_.Find(e.type());
  if (route == nullptr) return Denied("type", Cat("unknown event type \"", e.type(), "\""));
  if (route->outbox_only)
    return Denied("type", Cat(e.type(), " is written only by the approval workflow (outbox), not through a gateway"));
  if (catalog_.IsOutboxOnlySource(e.source()))
    return Denied("source", Cat("\"", e.source(), "\" is a service identity; no caller may publish as it"));
  if (who.sources_size() > 0 && !Contains(who.sources(), e.source()))
    return Denied("source", Cat(who.name(), " may not publish as \"", e.source(), "\""));
  return SourceMayEmit(e);
}

absl::Status Authorizer::SourceMayEmit(const v1::Envelope& e) const {
  const Route* route = catalog_.Find(e.type());
  if (route == nullptr) return Denied("type", Cat("unknown event type \"", e.type(), "\""));
  if (std::find(route->producers.begin(), route->producers.end(), e.source()) == route->producers.end())
    return Denied("source", Cat("\"", e.source(), "\" is not a producer of ", e.type(), " in the catalog"));
  return absl::OkStatus();
}

absl::Status Authorizer::MayDecide(const v1::Principal& who, std::string_view tenant, std::string_view requested_by,
                                   std::string_view required_role) const {
  if (auto s = MayActFor(who, tenant); !s.ok()) return s;
  if (required_role.empty() || !HasRole(who, required_role))
    return absl::PermissionDeniedError(Cat(who.name(), " lacks the role \"", required_role, "\" this approval needs"));
  if (who.name() == requested_by)
    return absl::PermissionDeniedError(Cat(who.name(), " requested this approval and may not decide it"));
  return absl::OkStatus();
}

absl::Status Authorizer::MayCancel(const v1::Principal& who, std::string_view requested_by) const {
  if (who.name() != requested_by)
    return absl::PermissionDeniedError(Cat("only the requester (", requested_by, ") may cancel"));
  return absl::OkStatus();
}

absl::Status Authorizer::MayRepublish(const v1::Principal& who, std::string_view target) const {
  if (!HasRole(who, "operator"))
    return Denied("target_topic", Cat("re-publishing needs the \"operator\" role, which ", who.name(), " lacks"));
  if (target.substr(0, 2) == "__") return Denied("target_topic", Cat("\"", target, "\" is internal to Kafka"));
  return absl::OkStatus();
}

absl::Status Authorizer::MayReadTopic(std::string_view topic, std::string_view field) const {
  for (const auto& t : catalog_.topics())
    if (t.name() == topic) return absl::OkStatus();
  return Denied(field, Cat("\"", topic, "\" is not a catalog topic"));
}

}  // namespace sluice::contracts
