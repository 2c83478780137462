#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <google/protobuf/repeated_ptr_field.h>

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "contracts/catalog.h"
#include "sluice/v1/common.pb.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::contracts {

// Which role decides an approval, by entity type and tier. Fixed by the operator's
// configuration, never by the requester.
class ApprovalPolicy {
 public:
  // KPI: "kpi_owner"; metadata, glossary terms and business rules: "metadata_steward";
  // the same at every tier.
  static ApprovalPolicy Default();
  // From JSON: {"METADATA": "metadata_steward", "METADATA/TIER_1": "kernel_architect", ...}.
  // Keys are an entity type name (ENTITY_TYPE_ prefix optional), optionally "/<tier>"
  // (TIER_1..TIER_5, or tier1..tier5); the most specific key wins; unnamed types keep the
  // defaults. InvalidArgument naming the key when one is malformed.
  static absl::StatusOr<ApprovalPolicy> FromJson(std::string_view json);

  // The role that decides approvals of `type` at `tier`; empty for types nobody approves.
  std::string RoleFor(v1::EntityType type, v1::Tier tier) const;

 private:
  std::map<v1::EntityType, std::string> by_type_;
  std::map<std::pair<v1::EntityType, v1::Tier>, std::string> by_type_tier_;
};

// The one authorization decision point. Every gateway RPC and every consumer asks it; no
// other code decides who may do what. Immutable after construction; thread-safe. Holds
// a reference to the catalog, which must outlive it.
//
// Decisions return OK or PermissionDenied whose message starts with the request field
// that was refused (e.g. "type: ...", "tenant_id: ...").
class Authorizer {
 public:
  explicit Authorizer(const Catalog& catalog, ApprovalPolicy policy = ApprovalPolicy::Default())
      : catalog_(catalog), policy_(std::move(policy)) {}

  // --- tenants ---
  // `who` may act for `tenant`: one of its tenants, or "*". `field` names the request field.
  absl::Status MayActFor(const v1::Principal& who, std::string_view tenant, std::string_view field = "tenant_id") const;
  // The tenants `who` reads among `requested` (each checked, InvalidArgument for a bad
  // id, PermissionDenied naming `field[i]`); none requested: the principal's own, or an
  // empty set meaning every tenant for a "*" principal.
  absl::StatusOr<std::set<std::string>> ReadableTenants(
      const v1::Principal& who, const google::protobuf::RepeatedPtrField<std::string>& requested,
      std::string_view field) const;
  // True for a principal holding "*" (sees cluster-wide figures such as consumer lag).
  static bool SeesAllTenants(const v1::Principal& who);
  static bool HasRole(const v1::Principal& who, std::string_view role);

  // --- publishing through a gateway ---
  // `who` may publish `envelope` (already validated): its tenant; its source among the
  // principal's sources (every non-outbox source when none are listed); the source among
  // the catalog's producers of the type; and never an outbox-only type or source.
  absl::Status MayPublish(const v1::Principal& who, const v1::Envelope& envelope) const;

  // --- consuming ---
  // An event read from Kafka may be acted on: its source is one of the catalog's
  // producers of its type. PermissionDenied naming "source" otherwise (the consumer skips
  // it: someone wrote to the topic around the gateway and the outbox).
  absl::Status SourceMayEmit(const v1::Envelope& envelope) const;

  // --- approvals ---
  std::string RequiredRole(v1::EntityType type, v1::Tier tier) const { return policy_.RoleFor(type, tier); }
  // `who` may decide (approve or reject) an approval of `tenant` whose requester is
  // `requested_by` and whose policy role is `required_role`: holds the tenant and the
  // role, and is not the requester.
  absl::Status MayDecide(const v1::Principal& who, std::string_view tenant, std::string_view requested_by,
                         std::string_view required_role) const;
  // Only the requester cancels.
  absl::Status MayCancel(const v1::Principal& who, std::string_view requested_by) const;

  // --- triggers ---
  // The role that may create, change, pause and delete a tenant's triggers ("operator"
  // may too); reading them needs only the tenant.
  static constexpr char kTriggerAdminRole[] = "trigger_admin";
  absl::Status MayManageTriggers(const v1::Principal& who, std::string_view tenant) const;

  // --- operator actions ---
  // Re-publishing replayed events into `target` needs the "operator" role, and never
  // into Kafka's internal topics ("__" prefix).
  absl::Status MayRepublish(const v1::Principal& who, std::string_view target) const;
  // Replay and Subscribe read catalog topics only (never __consumer_offsets or another
  // application's topics).
  absl::Status MayReadTopic(std::string_view topic, std::string_view field = "topics") const;

  const Catalog& catalog() const { return catalog_; }

 private:
  const Catalog& catalog_;
  const ApprovalPolicy policy_;
};

}  // namespace sluice::contracts
